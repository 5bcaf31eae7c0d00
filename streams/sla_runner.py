"""The worker's SLA side: the alert tracker (ioc.sla.tracker) over `ioc.alerts` and `ioc.alert-actions`.

A service of the Faust app, next to the shard runner, with its own aiokafka consumer in group
`<worker.app_id>.sla` and its own producer. Alerts and actions are both keyed by fingerprint
and both topics have `topics.partitions` partitions; with the range assignor partition p of
both goes to the same member, which runs one `AlertTracker` for p, fed in offset order.

Out of it (docs/sla.md has the wire format, times as RFC 3339):

* state records → `<prefix>alert-state` (compacted), keyed by fingerprint;
* outcomes → `<prefix>sla` keyed `alert:<alert_id>`; rejections keyed `rejection:<alert_id|->`;
* escalation alert records → `<prefix>alerts` keyed by their fingerprint (the tracker ignores
  them when they come back), counted in `ioc_sla_escalations_total`.

The SLA figures over all partitions (snapshots, `ioc_sla_*` gauges and histograms) are the
cluster runner's (streams/cluster_runner.py): it reads what this runner publishes.

The clock (`sla.clock`): `wall` (time.time()) or `event` (the latest alert time seen across this
runner's partitions: actions do not move it); trackers advance after each batch and every second.

Checkpoints: each partition's tracker with the next offsets of both topics, on `ioc.state` as
shard `sla/<p>`, every `worker.checkpoint_s`, on revocation and at shutdown; the offsets are
committed only after the checkpoint is saved. An assigned partition is restored and both topics
are read again from the checkpoint's offsets (from the beginning without one). What is read
again after a crash gives the same output again (same keys: harmless). An action whose alert the
tracker does not know is held back (at most HOLD_S, HOLD_MAX of them) while the alerts partition
is not read up to its end, so that reading the two topics in another interleaving after a
restart does not turn a valid action into an "unknown alert_id" rejection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import OffsetAndMetadata

from ioc.config import Settings
from ioc.kafka.publish import OutRecord, fit_json
from ioc.kafka.topics import alert_state_topic
from ioc.runtime.runner import WorkerParts
from ioc.sla.actions import InvalidAction, parse_action
from ioc.sla.calendar import WorkingCalendar
from ioc.sla.exceptions import SnapshotError
from ioc.sla.sla_metrics import SlaMetrics
from ioc.sla.tracker import AlertTracker, Output
from ioc.sla.wire import wire
from ioc.timeutil import parse_ts
from streams.group_service import GroupService

__all__ = ["SlaRunner", "PartitionTracker", "CHECKPOINT_VERSION", "alert_time"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
TICK_S = 1.0
HOLD_S = 5.0       # longest an action for an unknown alert waits for the alerts partition
HOLD_MAX = 10_000  # most actions held back per partition
CHECKPOINT_S = 15.0
def alert_time(record: Any) -> float | None:
    """The latest time an alert record carries (starts_at/ends_at), None for escalations or junk:
    what the event clock (`sla.clock: event`) follows."""
    if not isinstance(record, Mapping) or (record.get("labels") or {}).get("escalation"):
        return None
    times = []
    for name in ("starts_at", "ends_at"):
        value = record.get(name)
        if value is None:
            continue
        try:
            times.append(parse_ts(value))
        except (TypeError, ValueError):
            continue
    return max(times, default=None)


def _decoded(value: bytes | None) -> Mapping[str, Any] | bytes:
    """An action record as the tracker takes it: the JSON object (its rejections then carry the
    alert id), or the bytes as they came (rejected as malformed)."""
    if value is None:
        return b"null"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return record if isinstance(record, dict) else value


@dataclass
class _Held:
    offset: int
    value: bytes | None
    since: float


@dataclass
class PartitionTracker:
    """One partition p of alerts and actions: its tracker, the next offsets read, held actions."""

    partition: int
    tracker: AlertTracker
    alerts_next: int | None = None
    actions_next: int | None = None
    held: list[_Held] = field(default_factory=list)
    changed: bool = False

    def checkpoint(self) -> bytes:
        actions_next = self.held[0].offset if self.held else self.actions_next
        return orjson.dumps({"version": CHECKPOINT_VERSION, "tracker": self.tracker.snapshot(),
                             "alerts": self.alerts_next, "actions": actions_next})

    def restore(self, data: bytes) -> float | None:
        """Take back a checkpoint; returns the tracker clock it was saved at."""
        loaded = orjson.loads(data)
        if not isinstance(loaded, dict) or loaded.get("version") != CHECKPOINT_VERSION:
            raise SnapshotError(f"not an SLA checkpoint of version {CHECKPOINT_VERSION}")
        self.tracker.restore(loaded["tracker"])
        self.alerts_next, self.actions_next = loaded.get("alerts"), loaded.get("actions")
        clock = loaded["tracker"].get("clock")
        return None if clock is None else float(clock)

    def on_alerts(self, messages: Sequence[Any]) -> tuple[Output, float | None]:
        """Alert records in offset order; returns the output and the latest event time seen."""
        out, latest = Output(), None
        for message in messages:
            if self.alerts_next is not None and message.offset < self.alerts_next:
                continue  # fetched before a rebalance sought the partition back: taken already
            try:
                record: Any = orjson.loads(message.value) if message.value is not None else None
            except orjson.JSONDecodeError:
                record = (message.value or b"").decode("utf-8", "replace")
            # Not a mapping (bad JSON, a list...): the tracker rejects it, it never raises.
            out.extend(self.tracker.on_alert(cast(Mapping[str, Any], record if record is not None else "null")))
            seen = alert_time(record)
            if seen is not None:
                latest = seen if latest is None else max(latest, seen)
            self.alerts_next = message.offset + 1
            self.changed = True
        return out, latest

    def on_actions(self, messages: Sequence[Any], caught_up_at: float | None,
                   now: float) -> tuple[Output, float | None]:
        """Actions in offset order; one for an alert the tracker does not know waits (with those
        after it) until the alerts partition is found read to its end by a poll later than the
        action was read (`caught_up_at`: the time of that poll, None when not caught up; a
        highwater polled earlier may not count the action's alert yet), at most HOLD_S. Times
        are wall-clock seconds (see the module docstring)."""
        after = self.held[-1].offset + 1 if self.held else self.actions_next
        # (rows fetched before a rebalance sought the partition back come again: taken once)
        self.held.extend(_Held(m.offset, m.value, now) for m in messages if after is None or m.offset >= after)
        out, latest = Output(), None
        while self.held:
            head = self.held[0]
            parsed = parse_action(head.value if head.value is not None else b"null")
            if (not isinstance(parsed, InvalidAction) and self.tracker.state(parsed.alert_id) is None
                    and (caught_up_at is None or caught_up_at <= head.since)
                    and now - head.since < HOLD_S and len(self.held) < HOLD_MAX):
                break
            self.held.pop(0)
            out.extend(self.tracker.on_action(_decoded(head.value)))
            if not isinstance(parsed, InvalidAction) and parsed.at is not None:
                latest = parsed.at if latest is None else max(latest, parsed.at)
            self.actions_next = head.offset + 1
            self.changed = True
        return out, latest


class SlaRunner(GroupService):
    """Track alerts, publish states/outcomes/rejections/escalations, checkpoint (module docstring)."""

    role = "sla"
    what = "the SLA runner"

    def __init__(self, settings: Settings, broker_url: str, parts: WorkerParts, metrics: SlaMetrics, *,
                 calendar: WorkingCalendar | None = None, **kwargs: Any) -> None:
        super().__init__(settings, broker_url, parts, **kwargs)
        self.sla = settings.sla
        self.calendar = calendar or WorkingCalendar.from_file(settings.resolve(self.sla.calendar),
                                                              self.sla.working_hours)
        self.alerts_topic = settings.topic("alerts")
        self.actions_topic = settings.topic("alert-actions")
        self.sla_topic = settings.topic("sla")
        self.state_topic = alert_state_topic(settings)
        self.partitions: dict[int, PartitionTracker] = {}
        self.metrics = metrics
        self.event_clock: float | None = None
        self.escalations = 0
        self._last_tick = 0.0
        self._next_checkpoint = time.monotonic() + settings.worker.checkpoint_s

    async def on_start(self) -> None:
        await self._start([self.alerts_topic, self.actions_topic], RangePartitionAssignor)

    async def _final_checkpoint(self) -> None:
        await self._checkpoint(list(self.partitions), force=True)

    def _expected_offset(self, tp: TopicPartition) -> int | None:
        tracked = self.partitions.get(tp.partition)
        if tracked is None:
            return None
        if tp.topic == self.alerts_topic:
            return tracked.alerts_next
        return tracked.held[-1].offset + 1 if tracked.held else tracked.actions_next

    def _release_state(self) -> None:
        self.partitions.clear()

    # -- the loop -----------------------------------------------------------------------------

    def now(self) -> float | None:
        """The tracker clock: wall time, or the latest event time seen (None before any)."""
        return time.time() if self.sla.clock == "wall" else self.event_clock

    def _caught_up(self, partition: int) -> float | None:
        """When the alerts partition was last polled (wall seconds), if read up to that poll's
        highwater; None otherwise."""
        consumer, tracked = self.consumer, self.partitions.get(partition)
        if consumer is None or tracked is None:
            return None
        tp = TopicPartition(self.alerts_topic, partition)
        highwater = consumer.highwater(tp)
        if highwater is None or (tracked.alerts_next or 0) < highwater:
            return None
        polled = consumer.last_poll_timestamp(tp)
        return None if polled is None else polled / 1000.0

    async def _run(self) -> None:
        while not self._stopping:
            generation, batches = await self._fetch()
            async with self._lock:
                batches = await self._in_hand(generation, batches)  # nothing if fetched across a rebalance
                out = self.handle(batches, time.time())
                tick = time.monotonic() - self._last_tick >= TICK_S
                if batches or tick:
                    out.extend(self.advance())
                    self._last_tick = time.monotonic()
                await self.publish(out)
                if time.monotonic() >= self._next_checkpoint:
                    self._next_checkpoint = time.monotonic() + self.settings.worker.checkpoint_s
                    try:
                        await self._checkpoint(list(self.partitions))
                    except Exception as exc:  # noqa: BLE001 - tried again at the next interval
                        log.warning("SLA checkpoint failed (%s: %s); trying again in %.0f s", type(exc).__name__,
                                    exc, self.settings.worker.checkpoint_s)

    def handle(self, batches: Mapping[TopicPartition, Sequence[Any]], now: float) -> Output:
        """Feed fetched records: each partition's alerts first, then its actions (and held ones)."""
        out = Output()
        latest: list[float] = []
        by_partition: dict[int, dict[str, Sequence[Any]]] = {}
        for tp, messages in batches.items():
            by_partition.setdefault(tp.partition, {})[tp.topic] = messages
        for partition in sorted(set(by_partition) | {p for p, t in self.partitions.items() if t.held}):
            tracked = self.partitions.get(partition)
            if tracked is None:
                continue  # revoked meanwhile: its next owner reads it
            topics = by_partition.get(partition, {})
            produced, seen = tracked.on_alerts(topics.get(self.alerts_topic, ()))
            out.extend(produced)
            latest += [seen] if seen is not None else []
            # Actions do not move the event clock: an operator's `at` is theirs to state (the demo's
            # simulated operators publish their future actions at once), the alerts' times are the
            # engine's event time.
            produced, _ = tracked.on_actions(topics.get(self.actions_topic, ()), self._caught_up(partition), now)
            out.extend(produced)
        if latest:
            self.event_clock = max([*latest, *([self.event_clock] if self.event_clock is not None else [])])
        return out

    def advance(self) -> Output:
        out = Output()
        now = self.now()
        if now is None:
            return out
        for tracked in self.partitions.values():
            produced = tracked.tracker.advance(now)
            if produced:
                tracked.changed = True
            out.extend(produced)
        return out

    def account(self, out: Output) -> None:
        """Count a round's escalations (before they are published)."""
        for escalation in out.escalations:
            self.metrics.escalated(escalation)
            self.escalations += 1

    def records(self, out: Output) -> list[OutRecord]:
        limit = self.settings.limits.record_bytes
        records = []
        for state in out.states:
            key = str(state["fingerprint"]).encode()
            records.append(OutRecord(self.state_topic, fit_json(orjson.dumps(wire(state)), limit - len(key)), key,
                                     None, f"state of alert {state['alert_id']}"))
        for outcome in out.outcomes:
            key = f"alert:{outcome['alert_id']}".encode()
            records.append(OutRecord(self.sla_topic, fit_json(orjson.dumps(wire(outcome)), limit - len(key)), key,
                                     None, f"outcome of alert {outcome['alert_id']}"))
        for rejection in out.rejections:
            key = f"rejection:{rejection.get('alert_id') or '-'}".encode()
            body = fit_json(orjson.dumps(wire(rejection), default=str), limit - len(key))
            records.append(OutRecord(self.sla_topic, body, key, None, f"rejection ({rejection['reason']})"))
        for escalation in out.escalations:
            key = str(escalation["fingerprint"]).encode()
            records.append(OutRecord(self.alerts_topic, fit_json(orjson.dumps(escalation), limit - len(key)), key,
                                     None, f"escalation {escalation['alert_id']}"))
        return records

    async def publish(self, out: Output) -> None:
        if not out:
            return
        self.account(out)
        publisher = self.publisher
        assert publisher is not None
        await publisher.publish(self.records(out), "SLA records")

    # -- checkpoints and rebalances -----------------------------------------------------------

    async def _checkpoint(self, partitions: list[int], *, force: bool = False) -> None:
        store, consumer = self.store, self.consumer
        assert store is not None and consumer is not None
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition in partitions:
            tracked = self.partitions.get(partition)
            if tracked is None:
                continue
            if not (tracked.changed or force):
                self.parts.metrics.checkpoints.confirm("sla", f"sla/{partition}")
                continue
            data = tracked.checkpoint()
            tracked.changed = False
            try:
                await asyncio.wait_for(store.save(f"sla/{partition}", data), CHECKPOINT_S)
            except BaseException:
                tracked.changed = True
                raise
            self.parts.metrics.checkpoints.saved("sla", f"sla/{partition}", len(data))
            saved = orjson.loads(data)
            for topic, name in ((self.alerts_topic, "alerts"), (self.actions_topic, "actions")):
                if saved[name] is not None:
                    offsets[TopicPartition(topic, partition)] = OffsetAndMetadata(saved[name], "")
        await self._commit(offsets)

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            partitions = sorted({tp.partition for tp in revoked} & set(self.partitions))
            try:
                await self._checkpoint(partitions, force=True)
            except Exception as exc:  # noqa: BLE001 - the next owner replays from the previous one
                log.warning("SLA checkpoint at revocation failed (%s: %s)", type(exc).__name__, exc)
            finally:
                for partition in partitions:
                    self.partitions.pop(partition, None)
                    self.parts.metrics.checkpoints.forget("sla", f"sla/{partition}")

    async def _open(self, assigned: list[TopicPartition]) -> None:
        consumer, store = self.consumer, self.store
        assert consumer is not None and store is not None
        new = sorted({tp.partition for tp in assigned} - set(self.partitions))
        saved = await store.load([f"sla/{p}" for p in new])
        for partition in new:
            tracked = PartitionTracker(partition, AlertTracker(self.sla, self.calendar))
            raw = saved.get(f"sla/{partition}")
            if raw is not None:
                try:
                    clock = tracked.restore(raw)
                    self.parts.metrics.checkpoints.saved("sla", f"sla/{partition}", len(raw))  # current as restored
                    if clock is not None and self.sla.clock == "event":
                        self.event_clock = clock if self.event_clock is None else max(self.event_clock, clock)
                except (SnapshotError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    log.error("SLA checkpoint of partition %d unusable (%s): starting it afresh", partition, exc)
                    tracked = PartitionTracker(partition, AlertTracker(self.sla, self.calendar))
            self.partitions[partition] = tracked
        for tp in assigned:
            owner = self.partitions.get(tp.partition)
            if owner is None or tp.partition not in new:
                continue
            offset = owner.alerts_next if tp.topic == self.alerts_topic else owner.actions_next
            if offset is not None:
                consumer.seek(tp, offset)
            else:
                await consumer.seek_to_beginning(tp)
        log.info("SLA: assigned partitions %s (%d from checkpoints)", new, len(saved))
