"""The worker's services over all partitions: notifications and SLA figures.

Both need the whole of their topics at once: the notification policy groups alerts across
fingerprints (`ioc.alerts` is partitioned by fingerprint), and the SLA figures are over every
alert. Every worker runs a `ClusterRunner`; all of them join the group `<worker.app_id>.cluster`
with `SingleOwnerAssignor`, so one worker owns every partition and the others stand by, ready to
take over from its last checkpoint.

In: `ioc.alerts` (alert transitions and escalations), `ioc.alert-state` and `ioc.sla` (the SLA
runner's state and outcome records), `ioc.silences` (run-time silences: ioc.sla.silences). Out:

* notifications (ioc.sla.notify.NotificationPolicy, `notify:` settings) → `<prefix>notifications`
  keyed by group key (docs/notifications.md);
* every `sla.snapshot_s`, the figures (ioc.sla.figures.SlaFigures) → `<prefix>sla` keyed
  `snapshot:<scope>:<window>`, and the `ioc_sla_*` gauges; each new outcome is observed once in
  the `ioc_sla_*_seconds` histograms (docs/sla-figures.md).

The clock (`sla.clock`) is the SLA runner's: `wall`, or `event`, the latest alert time read
(escalations excepted). Within a fetched batch, alerts go to the policy in time order, so that
the interleaving of partitions matters less; one earlier than the policy's clock counts at the
clock (the policy's rule).

Checkpoint: the policy, the figures, the event clock and the next offset of every partition, on
`ioc.state` as shard `cluster`, every `worker.checkpoint_s` when something changed, on
revocation and at shutdown. A new owner restores it and reads on from its offsets: what is read
again gives the same notifications again, with the same group keys (at least once).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Counter, Gauge

from ioc.config import Settings
from ioc.kafka.publish import OutRecord, fit_json
from ioc.kafka.topics import alert_state_topic
from ioc.runtime.runner import WorkerParts
from ioc.sla.exceptions import SnapshotError
from ioc.sla.figures import SlaFigures
from ioc.sla.notify import Notification, NotificationPolicy, NotifyRecordError
from ioc.sla.silences import SilenceRecordError, relative
from ioc.sla.silences import apply as apply_silence
from ioc.sla.sla_metrics import SlaMetrics
from ioc.sla.wire import unwire, wire
from ioc.timeutil import parse_ts
from streams.group_service import GroupService
from streams.single_owner import SingleOwnerAssignor
from streams.sla_runner import alert_time

__all__ = ["CHECKPOINT_KEY", "ClusterRunner", "ClusterState", "NotifyMetrics"]

log = logging.getLogger(__name__)

# A fetched record as the state takes it: topic, partition, offset, value.
Row = tuple[str, int, int, bytes | None]

CHECKPOINT_KEY = "cluster"
CHECKPOINT_VERSION = 1
TICK_S = 1.0
CHECKPOINT_S = 30.0
HOLD_S = 5.0   # longest an alert waits for the other partitions (ClusterState)
RETRY_S = 5.0  # between attempts to take over after one failed


class NotifyMetrics:
    """`ioc_notifications_total{status,reason}`, `ioc_cluster_records_skipped_total{topic}`,
    `ioc_cluster_owner` and `ioc_notification_backlog`: bounded labels (two statuses, four
    reasons, three topics: alerts, sla, silences)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("ioc_notifications", "Notifications published, by status and reason",
                            ["status", "reason"], registry=registry)
        self.skipped = Counter("ioc_cluster_records_skipped",
                               "Records the notification policy or the SLA figures could not read, by topic",
                               ["topic"], registry=registry)
        self.owner = Gauge("ioc_cluster_owner",
                           "1 on the worker that runs the notification policy and the SLA figures now, else 0",
                           registry=registry)
        self.backlog = Gauge("ioc_notification_backlog",
                             "Alert records the notification policy has not applied yet (not read, or held)",
                             registry=registry)


def _policy_time(record: Mapping[str, Any]) -> float:
    """When the policy applies an alert record (ends_at for a resolution), for ordering a batch;
    an unreadable one sorts first (the policy rejects it anyway)."""
    for name in (("ends_at", "starts_at") if record.get("status") == "resolved" else ("starts_at",)):
        value = record.get(name)
        if value is not None:
            try:
                return parse_ts(value)
            except (TypeError, ValueError):
                return float("-inf")
    return float("-inf")


def _json(value: bytes | None) -> Any:
    try:
        return orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None


@dataclass(slots=True)
class _Held:
    at: float           # when the policy applies it (_policy_time)
    partition: int
    offset: int
    topic: str
    record: Mapping[str, Any]
    since: float        # monotonic time it was read


@dataclass
class ClusterState:
    """What the owner holds: policy, figures, event clock, offsets, alerts held back. No I/O: the
    runner feeds it fetched records and publishes what it returns (functional tests drive it).

    Alerts of several partitions reach the policy merged in time order: an alert read is held
    while a partition still `behind` its end (more to fetch) has not been read up to its time;
    never longer than HOLD_S. Caught up (live), nothing waits; reading a backlog (a new owner, a
    replay), the policy sees the alerts as they happened, whatever the fetch interleaving."""

    policy: NotificationPolicy
    figures: SlaFigures = field(default_factory=SlaFigures)
    event_clock: float | None = None
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)   # next offset to read
    held: list[_Held] = field(default_factory=list)
    silences_waiting: list[Row] = field(default_factory=list)         # "now" before the policy has a clock
    read_time: dict[int, float] = field(default_factory=dict)          # latest alert time read, by partition
    changed: bool = False

    def on_alerts(self, messages: Sequence[Row], behind: Collection[int] = (),
                  now: float = 0.0) -> tuple[list[Notification], int]:
        """Alert records as (topic, partition, offset, value), each partition in offset order;
        `behind`: the partitions not read to their end; `now`: monotonic seconds. Returns the
        notifications due and the number of records skipped."""
        skipped = 0
        for topic, partition, offset, value in self._unread(messages):
            record = _json(value)
            if not isinstance(record, Mapping):
                skipped += 1
                continue
            at = _policy_time(record)
            self.read_time[partition] = max(self.read_time.get(partition, at), at)
            self.held.append(_Held(at, partition, offset, topic, record, now))
        out, refused = self.release(behind, now)
        return out, skipped + refused

    def _unread(self, messages: Sequence[Row]) -> list[Row]:
        """The rows not read yet, and the next offsets moved past them. A batch fetched before a
        rebalance can be handed over after it, when the partition has been sought back to its
        checkpoint: those rows come again, and are taken once."""
        fresh = []
        for row in messages:
            topic, partition, offset, _ = row
            if offset < self.offsets.get((topic, partition), 0):
                continue
            self.offsets[(topic, partition)] = offset + 1
            self.changed = True
            fresh.append(row)
        return fresh

    def release(self, behind: Collection[int] = (), now: float = 0.0) -> tuple[list[Notification], int]:
        """Apply the held alerts that no partition `behind` can precede (see the class docstring)."""
        if not self.held:
            return [], 0
        cutoff = min((self.read_time.get(p, -math.inf) for p in behind), default=math.inf)
        overdue = [h.at for h in self.held if now - h.since >= HOLD_S]
        if overdue:
            cutoff = max(cutoff, max(overdue))
        self.held.sort(key=lambda h: (h.at, h.partition, h.offset))
        count = bisect.bisect_right([h.at for h in self.held], cutoff)
        out: list[Notification] = []
        refused = 0
        for held in self.held[:count]:
            seen = alert_time(held.record)
            if seen is not None:
                self.event_clock = seen if self.event_clock is None else max(self.event_clock, seen)
            try:
                out.extend(self.policy.on_alert(held.record))
            except NotifyRecordError:
                refused += 1
        del self.held[:count]
        return out, refused

    def on_sla_records(self, messages: Sequence[Row]) -> tuple[list[dict[str, Any]], int]:
        """State records (`ioc.alert-state`) and outcome records (`ioc.sla`; its snapshots and
        rejections are passed over); returns the outcomes new to the figures and the number of
        records skipped."""
        new: list[dict[str, Any]] = []
        skipped = 0
        for _, _, _, value in self._unread(messages):
            record = _json(value)
            if value is None:
                continue  # a compaction tombstone
            if not isinstance(record, Mapping):
                skipped += 1
                continue
            kind = record.get("type")
            if kind not in ("alert_state", "outcome"):
                continue
            try:
                epoch = unwire(record)
                if kind == "alert_state":
                    self.figures.on_state(epoch)
                elif self.figures.on_outcome(epoch):
                    new.append(epoch)
            except (KeyError, TypeError, ValueError):
                skipped += 1
        return new, skipped

    def resume_offsets(self) -> dict[tuple[str, int], int]:
        """Where a new owner reads on: the next offset, or the first alert or silence still held."""
        offsets = dict(self.offsets)
        waiting = [(h.topic, h.partition, h.offset) for h in self.held]
        waiting += [(topic, partition, offset) for topic, partition, offset, _ in self.silences_waiting]
        for topic, partition, offset in waiting:
            offsets[(topic, partition)] = min(offsets.get((topic, partition), offset), offset)
        return offsets

    def on_silences(self, messages: Sequence[Row]) -> tuple[list[str], int]:
        """Records of `ioc.silences` (ioc.sla.silences) in offset order; returns what each did
        ('added', 'known', 'expired', 'unknown') and the number of records refused. One whose
        times are "now" waits (in order with those after it) until the policy has a clock."""
        for row in self._unread(messages):
            if row[3] is not None:
                self.silences_waiting.append(row)
        return self.apply_silences()

    def apply_silences(self) -> tuple[list[str], int]:
        """Apply the silence records waiting, as far as the policy's clock allows."""
        done: list[str] = []
        refused = 0
        while self.silences_waiting:
            record = _json(self.silences_waiting[0][3])
            if isinstance(record, Mapping) and relative(record) and not math.isfinite(self.policy.clock):
                break
            self.silences_waiting.pop(0)
            if not isinstance(record, Mapping):
                refused += 1
                continue
            try:
                done.append(apply_silence(self.policy, record))
            except SilenceRecordError as exc:
                log.warning("silence record refused: %s", exc)
                refused += 1
        return done, refused

    def checkpoint(self) -> bytes:
        offsets: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in self.resume_offsets().items():
            offsets.setdefault(topic, {})[str(partition)] = offset
        return orjson.dumps({"version": CHECKPOINT_VERSION, "policy": self.policy.snapshot(),
                             "figures": self.figures.snapshot(), "clock": self.event_clock, "offsets": offsets})

    def restore(self, data: bytes) -> None:
        loaded = orjson.loads(data)
        if not isinstance(loaded, dict) or loaded.get("version") != CHECKPOINT_VERSION:
            raise SnapshotError(f"not a cluster checkpoint of version {CHECKPOINT_VERSION}")
        self.policy.restore(loaded["policy"])
        self.figures.restore(loaded["figures"])
        self.event_clock = None if loaded.get("clock") is None else float(loaded["clock"])
        self.offsets = {(topic, int(p)): int(offset) for topic, partitions in loaded["offsets"].items()
                        for p, offset in partitions.items()}


class ClusterRunner(GroupService):
    """Notifications and SLA figures over all partitions, on the one worker that owns them."""

    role = "cluster"
    what = "the cluster runner (notifications, SLA figures)"

    def __init__(self, settings: Settings, broker_url: str, parts: WorkerParts, sla_metrics: SlaMetrics,
                 **kwargs: Any) -> None:
        super().__init__(settings, broker_url, parts, **kwargs)
        self.sla_metrics = sla_metrics
        self.metrics = NotifyMetrics(parts.registry)
        self.alerts_topic = settings.topic("alerts")
        self.sla_topic = settings.topic("sla")
        self.alert_state_topic = alert_state_topic(settings)
        self.notifications_topic = settings.topic("notifications")
        self.silences_topic = settings.topic("silences")
        self.owned: ClusterState | None = None   # None: standing by (another worker owns it all)
        self._last_tick = 0.0
        self._last_snapshot = time.monotonic()
        self._next_checkpoint = time.monotonic() + settings.worker.checkpoint_s
        self._retry_at: float | None = None   # after a failed takeover: when to try again

    @property
    def owner(self) -> bool:
        """Whether this worker holds the notifications and figures now (else it stands by)."""
        return self.owned is not None

    async def on_start(self) -> None:
        await self._start([self.alerts_topic, self.alert_state_topic, self.sla_topic, self.silences_topic],
                          SingleOwnerAssignor)

    async def _final_checkpoint(self) -> None:
        await self._checkpoint(force=True)

    def _expected_offset(self, tp: TopicPartition) -> int | None:
        return None if self.owned is None else self.owned.offsets.get((tp.topic, tp.partition))

    # -- the loop -----------------------------------------------------------------------------

    def now(self) -> float | None:
        if self.settings.sla.clock == "wall":
            return time.time()
        return self.owned.event_clock if self.owned is not None else None

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        while not self._stopping:
            generation, batches = await self._fetch()
            async with self._lock:
                if self._retry_at is not None and time.monotonic() >= self._retry_at:
                    await self._take_over(list(consumer.assignment()))  # a takeover that failed: again
                    continue  # the batch in hand predates the seek to the checkpoint
                if self.owned is None:
                    continue  # standing by
                if generation != self._generation:
                    await self._rewind(batches)  # fetched across a rebalance: fetched again
                    continue
                notifications = self.handle(batches)
                if batches or time.monotonic() - self._last_tick >= TICK_S:
                    notifications += self.advance()
                    self._last_tick = time.monotonic()
                await self.publish(notifications)
                if time.monotonic() - self._last_snapshot >= self.settings.sla.snapshot_s:
                    self._last_snapshot = time.monotonic()
                    await self.publish_snapshot()
                if time.monotonic() >= self._next_checkpoint:
                    self._next_checkpoint = time.monotonic() + self.settings.worker.checkpoint_s
                    try:
                        await self._checkpoint()
                    except Exception as exc:  # noqa: BLE001 - tried again at the next interval
                        log.warning("cluster checkpoint failed (%s: %s); trying again in %.0f s",
                                    type(exc).__name__, exc, self.settings.worker.checkpoint_s)

    def handle(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> list[Notification]:
        """Feed a fetched batch: the SLA runner's records to the figures, then the alerts to the policy."""
        state = self.owned
        assert state is not None
        alerts: list[Row] = []
        sla: list[Row] = []
        silences: list[Row] = []
        for tp, messages in sorted(batches.items(), key=lambda item: (item[0].topic, item[0].partition)):
            rows = [(tp.topic, tp.partition, m.offset, m.value) for m in messages]
            {self.alerts_topic: alerts, self.silences_topic: silences}.get(tp.topic, sla).extend(rows)
        done, refused = state.on_silences(silences)
        if done:
            log.info("silences: %s", ", ".join(done))
        if refused:
            self.metrics.skipped.labels(topic="silences").inc(refused)
        outcomes, skipped_sla = state.on_sla_records(sla)
        for outcome in outcomes:
            self.sla_metrics.observe_outcome(outcome)
        notifications, skipped_alerts = state.on_alerts(alerts, self._behind(), time.monotonic())
        if skipped_sla:
            self.metrics.skipped.labels(topic="sla").inc(skipped_sla)
        if skipped_alerts:
            self.metrics.skipped.labels(topic="alerts").inc(skipped_alerts)
        return notifications

    def _behind(self) -> list[int]:
        """The alerts partitions with more to fetch (or not known yet)."""
        consumer, state = self.consumer, self.owned
        assert consumer is not None and state is not None
        behind = []
        for tp in consumer.assignment():
            if tp.topic != self.alerts_topic:
                continue
            highwater, position = consumer.highwater(tp), state.offsets.get((tp.topic, tp.partition))
            if highwater is None or (position if position is not None else 0) < highwater:
                behind.append(tp.partition)
        return behind

    def _backlog(self) -> int:
        consumer, state = self.consumer, self.owned
        if consumer is None or state is None:
            return 0
        unread = 0
        for tp in consumer.assignment():
            if tp.topic == self.alerts_topic:
                highwater = consumer.highwater(tp)
                unread += max(0, (highwater or 0) - state.offsets.get((tp.topic, tp.partition), 0))
        return unread + len(state.held)

    def advance(self) -> list[Notification]:
        """Alerts held back that may go now, then the policy's ticks due at the clock."""
        state = self.owned
        if state is None:
            return []
        self.metrics.backlog.set(self._backlog())
        released, refused = state.release(self._behind(), time.monotonic())
        if refused:
            self.metrics.skipped.labels(topic="alerts").inc(refused)
        now = self.now()
        out = released if now is None else released + state.policy.advance(now)
        done, refused = state.apply_silences()
        if done:
            log.info("silences: %s", ", ".join(done))
        if refused:
            self.metrics.skipped.labels(topic="silences").inc(refused)
        if out:
            state.changed = True  # what was sent is in the next checkpoint, not sent again after a crash
        return out

    def records(self, notifications: Sequence[Notification]) -> list[OutRecord]:
        limit = self.settings.limits.record_bytes
        out = []
        for notification in notifications:
            key = notification.group_key.encode()
            body = fit_json(orjson.dumps(wire(notification.to_record())), limit - len(key))
            out.append(OutRecord(self.notifications_topic, body, key, None,
                                 f"notification ({notification.reason}) of group {notification.group_key}"))
        return out

    async def publish(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        publisher = self.publisher
        assert publisher is not None
        await publisher.publish(self.records(notifications), "notifications")
        for notification in notifications:
            self.metrics.sent.labels(status=notification.status, reason=notification.reason).inc()

    def snapshot_records(self) -> list[dict[str, Any]]:
        now = self.now()
        if now is None or self.owned is None:
            return []
        return self.owned.figures.snapshot_records(now)

    async def publish_snapshot(self) -> None:
        records = self.snapshot_records()
        if not records:
            return
        self.sla_metrics.set_snapshot(records)
        publisher = self.publisher
        assert publisher is not None
        await publisher.publish([OutRecord(self.sla_topic, orjson.dumps(wire(r)),
                                           f"snapshot:{r['scope']}:{r['window']}".encode(), None, "an SLA snapshot")
                                 for r in records], "SLA snapshots")

    # -- checkpoints and rebalances -----------------------------------------------------------

    async def _checkpoint(self, *, force: bool = False) -> None:
        state, store, consumer = self.owned, self.store, self.consumer
        if state is None:
            return
        if not (state.changed or force):
            self.parts.metrics.checkpoints.confirm("cluster", CHECKPOINT_KEY)
            return
        assert store is not None and consumer is not None
        data = state.checkpoint()
        state.changed = False
        try:
            await asyncio.wait_for(store.save(CHECKPOINT_KEY, data), CHECKPOINT_S)
        except BaseException:
            state.changed = True
            raise
        self.parts.metrics.checkpoints.saved("cluster", CHECKPOINT_KEY, len(data))
        offsets = {TopicPartition(topic, partition): OffsetAndMetadata(offset, "")
                   for (topic, partition), offset in state.resume_offsets().items()}
        await self._commit(offsets)

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            self._retry_at = None
            if self.owned is None or not revoked:
                return
            try:
                await self._checkpoint(force=True)
            except Exception as exc:  # noqa: BLE001 - the next owner replays from the previous one
                log.warning("cluster checkpoint at revocation failed (%s: %s)", type(exc).__name__, exc)
            finally:
                self.owned = None
                self.metrics.owner.set(0)
                self.metrics.backlog.set(0)
                self.parts.metrics.checkpoints.forget("cluster", CHECKPOINT_KEY)
                if not self._stopping:  # a rebalance: another worker publishes the figures now
                    self.sla_metrics.set_snapshot([])

    async def assign(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            await self._take_over(assigned)

    async def _take_over(self, assigned: list[TopicPartition]) -> None:
        """Open the assignment; on failure (a checkpoint that cannot be read now) stay standing by,
        reading nothing into the state, and try again RETRY_S later from the loop."""
        try:
            await self._open(assigned)
        except Exception:  # noqa: BLE001 - aiokafka would swallow it
            self.owned = None
            self._retry_at = time.monotonic() + RETRY_S if assigned else None
            log.exception("taking over notifications and SLA figures failed; trying again in %.0f s", RETRY_S)
        else:
            self._retry_at = None
            self._last_snapshot = 0.0  # the figures (and gauges) at once, not a snapshot period later
            self.metrics.owner.set(1 if self.owned is not None else 0)

    async def _open(self, assigned: list[TopicPartition]) -> None:
        consumer, store = self.consumer, self.store
        assert consumer is not None and store is not None
        if not assigned:
            self.owned = None  # another member owns everything now
            return
        if self.owned is None:
            state = ClusterState(NotificationPolicy(self.settings.notify))
            saved = (await store.load([CHECKPOINT_KEY])).get(CHECKPOINT_KEY)
            if saved is not None:
                try:
                    state.restore(saved)
                    self.parts.metrics.checkpoints.saved("cluster", CHECKPOINT_KEY, len(saved))
                except (SnapshotError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.error("cluster checkpoint unusable (%s): notifications and figures start afresh", exc)
                    state = ClusterState(NotificationPolicy(self.settings.notify))
            self.owned = state
            log.info("notifications and SLA figures: this worker owns them (%s)",
                     "from a checkpoint" if saved is not None else "from the beginning")
        for tp in assigned:
            offset = self.owned.offsets.get((tp.topic, tp.partition))
            if offset is not None:
                consumer.seek(tp, offset)
            else:
                await consumer.seek_to_beginning(tp)
