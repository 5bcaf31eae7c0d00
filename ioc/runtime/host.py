"""The shards one worker holds, and what they make of fetched records: no Kafka, no Faust.

The live runner (streams/) moves bytes: it fetches whole batches, hands each partition's
records to `ShardHost.handle`, publishes what comes back (alerts, dead letters, frames for
the key spaces), and only then commits. It opens a shard when its partition is assigned
(from its last checkpoint) and closes it when revoked (after checkpointing it): nothing of
a shard stays behind.

>>> host = ShardHost(plan, pipeline, partitions={"raw.reservoir": 4, ...})   # doctest: +SKIP
>>> host.open("raw.reservoir", 0, snapshot=None)
>>> out = host.handle("raw.reservoir", 0, records)
>>> out.alerts, out.dead_letters, out.frames

Idle: a raw partition that has delivered nothing for `idle_after_s` (wall time) while its
consumer has read all there is, is idle: it stops holding back the key spaces it feeds, and
(with `idle_clock`) its watermark follows the wall clock from then on, so that absence and
`for` timers fire when every sensor is silent. A partition that is merely behind is never idle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ioc.alerts import Alert
from ioc.engine import EngineStats, KeyLimits
from ioc.events import InvalidEvent
from ioc.rules.loader import RuleSet
from ioc.runtime.frames import NO_WATERMARK, Frame, decode_frame, encode_frame
from ioc.runtime.pipeline import DeadLetter, Pipeline, RawRecord
from ioc.runtime.plan import Plan, plan_rules
from ioc.runtime.shards import RawShard, RekeyShard, Shard

__all__ = ["HostSettings", "Output", "ShardHost", "ShardKey"]

log = logging.getLogger(__name__)

# (topic without its prefix, partition): ("raw.cyber", 2), ("rekey.cyber.src_ip", 0)
ShardKey = tuple[str, int]
# Frames stay well under the broker's default 1 MB record limit.
MAX_FRAME_BYTES = 512 * 1024


@dataclass(frozen=True)
class HostSettings:
    lateness_s: float = 0.0
    idle_after_s: float = 5.0        # 0: partitions are never idle
    idle_clock: bool = True          # idle raw partitions' watermarks follow the wall clock
    marker_interval_s: float = 0.1   # how often a raw shard tells every key space its watermark
    keys_per_rule: int = 100_000     # keys one rule may hold per shard (limits.keys_per_rule)
    key_idle_s: float = 0.0          # drop keys idle this long; 0: the rules' windows decide
    sweep_every_s: float = 60.0      # each shard forgets what it can at every such step of event time

    @property
    def limits(self) -> KeyLimits:
        """The state bounds of every shard's engine (the backtest uses the same: ioc.runtime.replay)."""
        return KeyLimits(self.keys_per_rule, self.key_idle_s, self.sweep_every_s)


@dataclass
class Output:
    """What to publish: alerts, dead letters, frames ((topic suffix, partition, value))."""

    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    frames: list[tuple[str, int, bytes]] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.alerts.extend(other.alerts)
        self.dead_letters.extend(other.dead_letters)
        self.frames.extend(other.frames)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.dead_letters or self.frames)


@dataclass
class _Arrival:
    """A raw shard's wall-clock bookkeeping (monotonic seconds)."""

    at: float                      # when records last came (or the shard opened)
    watermark: float               # its watermark then
    marked_at: float = float("-inf")
    marked: float = NO_WATERMARK   # the watermark last announced to every key space
    marked_idle: bool = False


class ShardHost:
    """All shards of one worker (see the module docstring)."""

    def __init__(
        self, plan: Plan, pipeline: Pipeline, partitions: Mapping[str, int], *,
        settings: HostSettings | None = None, clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.pipeline = pipeline
        self.partitions = dict(partitions)
        self.settings = settings or HostSettings()
        self.clock = clock
        self.monotonic = monotonic
        self.shards: dict[ShardKey, Shard] = {}
        self._arrivals: dict[ShardKey, _Arrival] = {}

    # -- shards come and go -----------------------------------------------------------------

    def open(self, topic: str, partition: int, snapshot: Mapping[str, Any] | None = None) -> Shard:
        """The shard of a newly assigned partition, restored from `snapshot` when there is one."""
        shard: Shard
        if topic.startswith("raw."):
            shard = RawShard(topic.removeprefix("raw."), partition, self.plan, self.partitions,
                             lateness_s=self.settings.lateness_s, clock=self.clock, limits=self.settings.limits)
        elif topic.startswith("rekey."):
            shard = RekeyShard(topic.removeprefix("rekey."), partition, self.plan, self.partitions, clock=self.clock,
                               absent_delay_s=self.settings.idle_after_s, limits=self.settings.limits)
        else:
            raise ValueError(f"no shard for topic {topic!r}")
        if snapshot is not None:
            shard.restore(snapshot)
        key = (topic, partition)
        self.shards[key] = shard
        if isinstance(shard, RawShard):
            self._arrivals[key] = _Arrival(self.monotonic(), shard.watermark)
        return shard

    def close(self, topic: str, partition: int) -> dict[str, Any] | None:
        """Drop a revoked partition's shard; returns its last snapshot (to checkpoint)."""
        key = (topic, partition)
        shard = self.shards.pop(key, None)
        self._arrivals.pop(key, None)
        return shard.snapshot() if shard is not None else None

    def count(self, kind: str) -> int:
        """Shards held of a kind (`raw` or `rekey`)."""
        return sum(1 for shard in self.shards.values() if shard.kind == kind)

    def state_keys(self) -> int:
        """Rule keys with state, over every shard."""
        return sum(len(keys) for shard in self.shards.values() for keys in shard.engine.states.values())

    def timers(self) -> int:
        return sum(len(heap) for shard in self.shards.values() for heap in shard.engine.timers.values())

    def sweep(self) -> int:
        """Keys the shards forgot since the last call. Each shard's engine forgets by itself, at
        moments of event time (see Engine.sweep): a sweep at a wall-clock moment would make which
        new keys a full rule refuses depend on when it ran."""
        return sum(shard.engine.sweep() for shard in self.shards.values())

    def offsets(self) -> dict[ShardKey, int]:
        """The next offset to read of every shard that has read something."""
        return {key: shard.offset for key, shard in self.shards.items() if shard.offset is not None}

    # -- records ------------------------------------------------------------------------------

    def handle(self, topic: str, partition: int, records: Sequence[RawRecord]) -> Output:
        """One partition's fetched records (in offset order) through its shard."""
        out = Output()
        shard = self.shards.get((topic, partition))
        if shard is None or not records:
            return out  # revoked meanwhile: its next owner reads these again
        fresh = [r for r in records if shard.offset is None or r.offset >= shard.offset]
        if fresh:
            if isinstance(shard, RawShard):
                self._handle_raw(shard, fresh, out)
            else:
                self._handle_rekey(shard, fresh, out)
            shard.offset = fresh[-1].offset + 1
        return out

    def _handle_raw(self, shard: RawShard, records: Sequence[RawRecord], out: Output) -> None:
        key = (f"raw.{shard.stream}", shard.partition)
        arrival = self._arrivals[key]
        started = time.perf_counter()
        events, out.dead_letters = self.pipeline.decode(shard.stream, records)
        if shard.idle and events:
            shard.idle = False
            self._mark(shard, arrival, out)
        alerts, exports = shard.process(events)
        self.pipeline.evaluated(shard.stream, shard.engine.last_stats, events, time.perf_counter() - started)
        self._bounds(shard, shard.engine.last_stats)
        out.alerts.extend(alerts)
        for (space, target), batch in exports.items():
            out.frames.extend(self._frames(shard, space, target, batch))
        if events:
            # Only events tell time: a partition that receives nothing valid is as quiet as a silent one.
            arrival.at, arrival.watermark = self.monotonic(), shard.watermark
        self._mark(shard, arrival, out, sent=exports)

    def _handle_rekey(self, shard: RekeyShard, records: Sequence[RawRecord], out: Output) -> None:
        for record in records:
            try:
                shard.add(decode_frame(record.value or b""))
            except InvalidEvent as exc:
                log.error("skipped record %s: %s", record.position, exc.reason)
        started = time.perf_counter()
        out.alerts.extend(shard.release(self.monotonic()))
        elapsed = time.perf_counter() - started
        for stream, stats, events in shard.drain_stats():
            self.pipeline.evaluated(stream, stats, events, elapsed, received=False)
            self._bounds(shard, stats)
        if shard.late:
            # A repeat after a source's crash, or an event of a source that was idle and woke late.
            for stream, count in shard.late.items():
                self.pipeline.late(stream, count)
            shard.late = {}

    def _bounds(self, shard: Shard, stats: EngineStats) -> None:
        """Keys refused by full rules: counted in `ioc_rule_keys_refused_total`, and one warning per
        rule each time it becomes full in a shard (not one per event)."""
        if not stats.refused:
            return
        for rule_id, limit in stats.full:
            log.warning("rule %s holds its limit of %d keys in shard %s: events of new keys are not "
                        "evaluated by it until some of its keys are forgotten (ioc_rule_keys_refused_total "
                        "counts them; raise the rule's max_keys or limits.keys_per_rule, or set a key_ttl)",
                        rule_id, limit, shard.id)
        metrics = self.pipeline.metrics
        if metrics is not None:
            for rule_id, count in stats.refused.items():
                metrics.rule_keys_refused.labels(rule_id=rule_id).inc(count)

    # -- time ---------------------------------------------------------------------------------

    def wake(self, caught_up: Callable[[ShardKey], bool]) -> Output:
        """Idle raw partitions that have records queued or fetchable again are active again, and
        say so before anything else of this round reaches the key spaces: otherwise a space could
        pass their coming events while they still count as idle (call at the start of a round)."""
        out = Output()
        for key, shard in self.shards.items():
            if isinstance(shard, RawShard) and shard.idle and not caught_up(key):
                shard.idle = False
                self._mark(shard, self._arrivals[key], out)
        return out

    def tick(self, caught_up: Callable[[ShardKey], bool]) -> Output:
        """Idle partitions and watermark markers (call about every 100 ms)."""
        out = Output()
        now = self.monotonic()
        idle_after = self.settings.idle_after_s
        for key, shard in list(self.shards.items()):
            if not isinstance(shard, RawShard):
                # A watermark held back a while (see RekeyShard.frontier) may pass now.
                out.alerts.extend(shard.release(now))
                for stream, stats, events in shard.drain_stats():
                    self.pipeline.evaluated(stream, stats, events, 0.0, received=False)
                    self._bounds(shard, stats)
                continue
            arrival = self._arrivals[key]
            quiet = now - arrival.at
            if not shard.idle and idle_after > 0 and quiet >= idle_after and caught_up(key):
                shard.idle = True
            if shard.idle and self.settings.idle_clock and arrival.watermark != NO_WATERMARK:
                # Minus the grace: an event stamped just before the silence but delivered a little
                # late (jitter) must still be on time.
                alerts = shard.advance(arrival.watermark + quiet - idle_after)
                self.pipeline.evaluated("", shard.engine.last_stats, (), 0.0)
                out.alerts.extend(alerts)
            self._mark(shard, arrival, out)
        return out

    def _mark(self, shard: RawShard, arrival: _Arrival, out: Output, sent: Iterable[tuple[str, int]] = ()) -> None:
        """Tell every key-space partition this shard feeds its watermark, when it moved (at
        most every `marker_interval_s`) or its idleness changed."""
        watermark = shard.watermark
        changed_idle = shard.idle != arrival.marked_idle
        if not changed_idle and (watermark <= arrival.marked
                                 or self.monotonic() - arrival.marked_at < self.settings.marker_interval_s):
            return
        skip = set(sent) if not changed_idle else set()
        value = encode_frame(shard.frame())
        for space, target in shard.targets():
            if (space, target) not in skip:
                out.frames.append((f"rekey.{space}", target, value))
        arrival.marked, arrival.marked_idle, arrival.marked_at = watermark, shard.idle, self.monotonic()

    def _frames(
        self, shard: RawShard, space: str, target: int, events: list[dict[str, Any]],
        watermark: float | None = None,
    ) -> list[tuple[str, int, bytes]]:
        """Frames of `events` for one space partition, split to fit the record limit. Only the last
        piece carries the shard's watermark: an earlier one says no more than the smallest `ts` of
        the pieces after it, so that a space reading the first piece alone waits for the rest."""
        mark = shard.watermark if watermark is None else watermark
        value = encode_frame(Frame(shard.stream, shard.partition, mark, shard.idle, events))
        if len(value) <= MAX_FRAME_BYTES or len(events) == 1:
            return [(f"rekey.{space}", target, value)]
        half = len(events) // 2
        rest = events[half:]
        first_mark = min(mark, min(event["ts"] for event in rest))
        return (self._frames(shard, space, target, events[:half], first_mark)
                + self._frames(shard, space, target, rest, mark))

    # -- rules --------------------------------------------------------------------------------

    def apply_rules(self, ruleset: RuleSet) -> tuple[list[Alert], list[str], bool]:
        """Swap in a new rule set: (alerts resolved by the change, rule ids changed, whether the
        key spaces changed: then the runner must subscribe anew)."""
        plan = plan_rules(ruleset)
        relayout = plan.layout() != self.plan.layout()
        self.plan = plan
        resolved: list[Alert] = []
        changed: set[str] = set()
        for key, shard in list(self.shards.items()):
            if isinstance(shard, RawShard):
                found, ids = shard.swap(plan, self.partitions)
            elif shard.space in plan.spaces:
                found, ids = shard.swap(plan)
            else:
                self.close(*key)
                continue
            resolved.extend(found)
            changed.update(ids)
        return resolved, sorted(changed), relayout
