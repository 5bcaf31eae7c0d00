"""Shards: the engine state of one input partition, as the live worker and the backtest hold it.

* A `RawShard` owns a partition of a raw topic (`ioc.raw.<stream>`): the rules keyed by the
  topic key, one watermark (its largest `ts` minus the allowed lateness), and it hands the
  events that rules elsewhere need on to the partitions of their key spaces, as frames.
* A `RekeyShard` owns a partition of a key space (`ioc.rekey.<space>`). Its watermark is the
  minimum over its sources (every partition of every raw topic that feeds the space) of the
  watermarks their frames carry; a source that never had a watermark does not hold it back
  once it is idle, and when all are idle it is the largest of them. Events wait in a buffer
  until the watermark passes them, then are evaluated in event-time order (ties: stream,
  partition, offset), so a key's results depend neither on which worker or partition carried
  its events nor on how the partitions interleave.

>>> shard = RawShard("reservoir", 0, plan, partitions)                  # doctest: +SKIP
>>> alerts, exports = shard.process(events)

A shard's state is plain data: `snapshot()` gives it (with the input offset it covers), and
`restore()` takes it back; nothing else of a shard lives anywhere.

A shard's engine bounds its state (`limits`, ioc.engine.limits): keys per rule, idle TTL, and
sweeps of its own at every `sweep_every_s` of event time, so that what it forgets and which keys
a full rule refuses depend only on the shard's events, as in the backtest.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ioc.alerts import Alert
from ioc.engine import Engine, EngineStats, KeyLimits
from ioc.rules.kinds.base import Key
from ioc.runtime.frames import NO_WATERMARK, Frame
from ioc.runtime.partitioner import KeyPartitioner
from ioc.runtime.plan import Plan

__all__ = ["RawShard", "RekeyShard", "Shard", "SHARD_LIMITS", "shard_id"]

# A shard's engine sweeps itself every minute of event time (live and backtest alike).
SHARD_LIMITS = KeyLimits(sweep_every_s=60.0)

Exports = dict[tuple[str, int], list[dict[str, Any]]]


def shard_id(topic: str, partition: int) -> str:
    """A shard's name (its key on `ioc.state`): the topic without its prefix, and the partition,
    e.g. `raw.cyber/2`, `rekey.cyber.src_ip/0`."""
    return f"{topic}/{partition}"


class RawShard:
    """One partition of a raw topic (see the module docstring)."""

    kind = "raw"

    def __init__(
        self, stream: str, partition: int, plan: Plan, partitions: Mapping[str, int], *,
        lateness_s: float = 0.0, clock: Callable[[], float] = time.time, limits: KeyLimits = SHARD_LIMITS,
    ) -> None:
        self.stream = stream
        self.partition = partition
        self.lane = (stream, partition)
        self.id = shard_id(f"raw.{stream}", partition)
        self.offset: int | None = None       # the next input offset to read
        self.idle = False
        self._raw_partitions = partitions.get(f"raw.{stream}", 1)
        self._owner = KeyPartitioner(self._raw_partitions)
        self.engine = Engine(plan.local[stream], lateness_s=lateness_s, clock=clock,
                             exports={stream: plan.exports.get(stream, ())}, owner=self.owns, limits=limits)
        self._targets = {export.target: KeyPartitioner(partitions.get(f"rekey.{export.target}", 1))
                         for export in plan.exports.get(stream, ())}

    def owns(self, key: Key) -> bool:
        """Whether the topic key `key` (`(source_id,)`) lands in this partition."""
        return self._owner(key) == self.partition

    @property
    def watermark(self) -> float:
        return self.engine.watermarks.get(self.lane, NO_WATERMARK)

    def targets(self) -> list[tuple[str, int]]:
        """Every (space, partition) this shard informs of its watermark."""
        return [(space, q) for space, part in self._targets.items() for q in range(part.partitions)]

    def process(self, events: Sequence[dict[str, Any]]) -> tuple[list[Alert], Exports]:
        """Evaluate events of this partition (in offset order); also what goes to which space partition."""
        alerts = self.engine.process(self.stream, events, lane=self.lane)
        exports: Exports = {}
        for export, key, event in self.engine.last_exports:
            target = (export.target, self._targets[export.target](key))
            bucket = exports.get(target)
            if bucket is None:
                bucket = exports[target] = []
            bucket.append(event)
        return alerts, exports

    def advance(self, watermark: float) -> list[Alert]:
        return self.engine.advance(self.stream, watermark, lane=self.lane)

    def swap(self, plan: Plan, partitions: Mapping[str, int]) -> tuple[list[Alert], list[str]]:
        """Take a new rule set's plan: unchanged rules keep their state (see Engine.swap_rules)."""
        resolved, changed = self.engine.swap_rules(plan.local[self.stream])
        exports = plan.exports.get(self.stream, ())
        self.engine.exports = {self.stream: exports} if exports else {}
        self._targets = {export.target: KeyPartitioner(partitions.get(f"rekey.{export.target}", 1))
                         for export in exports}
        return resolved, changed

    def frame(self, events: list[dict[str, Any]] | None = None) -> Frame:
        return Frame(self.stream, self.partition, self.watermark, self.idle, events or [])

    def snapshot(self) -> dict[str, Any]:
        return {"kind": self.kind, "shard": self.id, "offset": self.offset, "engine": self.engine.snapshot()}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.offset = data.get("offset")
        self.engine.restore(data["engine"])


class RekeyShard:
    """One partition of a key space (see the module docstring)."""

    kind = "rekey"

    def __init__(
        self, space: str, partition: int, plan: Plan, partitions: Mapping[str, int], *,
        clock: Callable[[], float] = time.time, absent_delay_s: float = 0.0, limits: KeyLimits = SHARD_LIMITS,
    ) -> None:
        self.space = space
        self.partition = partition
        self.lane = (f"rekey.{space}", partition)
        self.id = shard_id(f"rekey.{space}", partition)
        self.offset: int | None = None
        # Released events are in event-time order: nothing is late inside.
        self.engine = Engine(plan.space_rules[space], clock=clock, limits=limits)
        # (stream, partition) -> [watermark, idle] of every source partition feeding this space.
        self.sources: dict[tuple[str, int], list[Any]] = {
            (stream, p): [NO_WATERMARK, False]
            for stream in plan.sources(space) for p in range(partitions.get(f"raw.{stream}", 1))
        }
        self._heap: list[tuple[float, str, int, int, dict[str, Any]]] = []
        self._positions: set[tuple[str, int, int]] = set()
        self.released = NO_WATERMARK      # events before it (at it too, when `inclusive`) were evaluated
        self.inclusive = False
        # Per stream, events that came after the watermark had passed them (see `add`).
        self.late: dict[str, int] = {}
        self._stats: list[tuple[str, EngineStats, list[dict[str, Any]]]] = []
        self.absent_delay_s = absent_delay_s
        self._held: deque[tuple[float, float]] = deque()
        self._granted = NO_WATERMARK

    @property
    def watermark(self) -> float:
        return self.engine.watermarks.get(self.lane, NO_WATERMARK)

    @property
    def buffered(self) -> int:
        return len(self._heap)

    def add(self, frame: Frame) -> None:
        """Take a frame: its source's watermark and idleness, and its events into the buffer.

        An event the watermark has already passed was evaluated before (a source replaying
        after a crash repeats what it sent) or comes from a source that was idle: dropped and
        counted. An event already buffered (same source position) is a repeat: dropped."""
        source = self.sources.get(frame.source)
        if source is None:
            source = self.sources[frame.source] = [NO_WATERMARK, False]
        if frame.watermark > source[0]:
            source[0] = frame.watermark
        source[1] = frame.idle
        released, inclusive = self.released, self.inclusive
        for event in frame.events:
            ts = event["ts"]
            if ts < released or (inclusive and ts == released):
                self.late[frame.stream] = self.late.get(frame.stream, 0) + 1
                continue
            position = (frame.stream, frame.partition, int(event["_off"]))
            if position in self._positions:
                continue
            self._positions.add(position)
            heapq.heappush(self._heap, (ts, frame.stream, frame.partition, position[2], event))

    def frontier(self, now: float | None = None) -> tuple[float, bool]:
        """(watermark, inclusive): events before it (at it too when inclusive) may be evaluated.

        The minimum of the sources' watermarks; an idle source counts with its watermark (which
        follows the wall clock when the worker's `idle_clock` is on). A source that never had one
        does not count while it is idle, but only `absent_delay_s` (wall time, `now`) after the
        others moved on: the first records of partitions that start together do not reach the
        broker all at once. When every source is idle, there is nothing more to wait for: the
        largest watermark, inclusive."""
        marks = []
        active = absent = False
        for mark, idle in self.sources.values():
            if mark == NO_WATERMARK:
                if idle:
                    absent = True
                    continue
                return NO_WATERMARK, False
            marks.append(mark)
            active = active or not idle
        if not marks:
            return NO_WATERMARK, False
        if not active:
            return max(marks), True
        watermark = min(marks)
        if absent and now is not None and self.absent_delay_s > 0:
            return self._delayed(watermark, now), False
        self._held.clear()
        return watermark, False

    def _delayed(self, watermark: float, now: float) -> float:
        held = self._held
        if not held or held[-1][1] < watermark:
            held.append((now, watermark))
        while held and now - held[0][0] >= self.absent_delay_s:
            self._granted = max(self._granted, held.popleft()[1])
        return min(self._granted, watermark)

    def release(self, now: float | None = None) -> list[Alert]:
        """Evaluate, in event-time order, every buffered event the watermark has passed (`now`:
        wall-clock seconds, for `absent_delay_s`)."""
        watermark, inclusive = self.frontier(now)
        if watermark == NO_WATERMARK:
            return []
        out: list[Alert] = []
        heap = self._heap
        run: list[dict[str, Any]] = []
        run_stream = ""
        while heap and (heap[0][0] < watermark or (inclusive and heap[0][0] == watermark)):
            _, stream, partition, offset, event = heapq.heappop(heap)
            self._positions.discard((stream, partition, offset))
            if stream != run_stream and run:
                out.extend(self._evaluate(run_stream, run))
                run = []
            run_stream = stream
            run.append(event)
        if run:
            out.extend(self._evaluate(run_stream, run))
        if watermark > self.released or (watermark == self.released and inclusive):
            self.released, self.inclusive = watermark, inclusive
        out.extend(self.engine.advance("", watermark, lane=self.lane))
        self._stats.append(("", self.engine.last_stats, []))
        return out

    def _evaluate(self, stream: str, run: list[dict[str, Any]]) -> list[Alert]:
        alerts = self.engine.process(stream, run, lane=self.lane)
        self._stats.append((stream, self.engine.last_stats, run))
        return alerts

    def drain_stats(self) -> list[tuple[str, EngineStats, list[dict[str, Any]]]]:
        """(stream, the engine's stats, the events) of each evaluation since the last call."""
        stats, self._stats = self._stats, []
        return stats

    def swap(self, plan: Plan) -> tuple[list[Alert], list[str]]:
        return self.engine.swap_rules(plan.space_rules[self.space])

    def advance(self, watermark: float) -> list[Alert]:
        """Move the watermark on without events (the end of a backtest's `until`)."""
        return self.engine.advance("", watermark, lane=self.lane)

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "shard": self.id, "offset": self.offset, "engine": self.engine.snapshot(),
            "sources": [[s, p, None if w == NO_WATERMARK else w, idle] for (s, p), (w, idle) in self.sources.items()],
            # Sorted by (ts, stream, partition, offset): positions are unique, so tuples never
            # compare their events.
            "buffer": [[s, p, event] for _, s, p, _, event in sorted(self._heap)],
            "released": None if self.released == NO_WATERMARK else self.released,
            "inclusive": self.inclusive,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.offset = data.get("offset")
        self.engine.restore(data["engine"])
        for stream, partition, mark, idle in data["sources"]:
            self.sources[(stream, partition)] = [NO_WATERMARK if mark is None else mark, idle]
        self._heap.clear()
        self._positions.clear()
        for stream, partition, event in data["buffer"]:
            position = (stream, partition, int(event["_off"]))
            self._positions.add(position)
            self._heap.append((event["ts"], stream, partition, position[2], event))
        heapq.heapify(self._heap)
        released = data.get("released")
        self.released = NO_WATERMARK if released is None else released
        self.inclusive = bool(data.get("inclusive"))


Shard = RawShard | RekeyShard

