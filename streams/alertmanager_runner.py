"""The worker's Alertmanager sink (docs/alertmanager.md): alert transitions of `ioc.alerts` posted
to Alertmanager's v2 API, firing alerts sent again every `alertmanager.resend_s`.

A service of the Faust app, started only when `alertmanager.url` is set, with its own consumer
group `<worker.app_id>.alertmanager` (round robin: each worker posts its partitions' alerts).

* On assignment a partition is read from its beginning: records below the group's committed
  offset were posted by an earlier owner and only rebuild which alerts are firing (a week of
  alerts reads in seconds). Nothing of it is posted before it is read up to its end offset at
  assignment; then the latest state of each alert read since the committed offset is posted
  (never a firing that an earlier owner had already posted resolved), with every alert firing
  now, and from there on each transition. With no committed offset yet (the sink just switched
  on), the end offset is committed at once and what the partition held counts as posted: the
  alerts firing now are posted, not the history.
* Offsets are committed once Alertmanager took what they cover.
* Posts are made outside the lock that rebalances take: a rebalance does not wait for
  Alertmanager.
* While Alertmanager is away (no answer, timeouts, 5xx, 429), the same alerts are posted again
  after 1 s, 2 s, 4 s... up to `alertmanager.retry_max_s`, and the partitions are paused:
  Kafka keeps what follows. A post it refuses (other 4xx) is logged and not posted again.
* A partition whose opening failed (the group coordinator away) is opened again every 5 s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.structs import OffsetAndMetadata

from ioc.alertmanager.client import CHUNK, Result, post_alerts
from ioc.alertmanager.forwarder import Batch, Forwarder
from ioc.alertmanager.metrics import AlertmanagerMetrics
from ioc.alertmanager.payload import am_alert
from ioc.config import Settings
from ioc.rules.loader import RuleSet
from ioc.runtime.runner import WorkerParts
from streams.group_service import GroupService

__all__ = ["AlertmanagerRunner"]

log = logging.getLogger(__name__)

COMMIT_EVERY_S = 5.0
REOPEN_S = 5.0
FINAL_POST_S = 2.0  # the final post at a stop (the stop gives the final checkpoint 5 s)
VALID_RESENDS = 4  # a firing alert's endsAt: this many resend intervals ahead (Prometheus does the same)


def _json(value: bytes | None) -> Any:
    try:
        return orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None


class AlertmanagerRunner(GroupService):
    role = "alertmanager"
    what = "the Alertmanager sink"

    def __init__(self, settings: Settings, broker_url: str, parts: WorkerParts, metrics: AlertmanagerMetrics,
                 rules: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, broker_url, parts, **kwargs)
        self.am = settings.alertmanager
        self.topic = settings.topic("alerts")
        self.forwarder = Forwarder(self.am.resend_s)
        self.metrics = metrics
        self._rules = rules if rules is not None else (lambda: parts.ruleset)
        self._session: aiohttp.ClientSession | None = None
        self._retry_at = 0.0
        self._backoff = 1.0
        self._committed: dict[int, int] = {}
        self._next_commit = 0.0
        self._next_open = 0.0
        self._paused = False

    async def on_start(self) -> None:
        self._session = aiohttp.ClientSession()
        await self._start([self.topic], RoundRobinPartitionAssignor)
        log.info("Alertmanager sink: posting to %s", self.am.url)

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._session is not None:
            await self._session.close()

    def _expected_offset(self, tp: TopicPartition) -> int | None:
        return self.forwarder.expected(tp.partition)

    async def _final_checkpoint(self) -> None:
        """Commit what was posted, post what waits (briefly), commit again: within the stop's 5 s."""
        await self._commit_sent(force=True)
        if self.forwarder.pending() and time.monotonic() >= self._retry_at:
            await self.post(time.time(), timeout_s=min(self.am.timeout_s, FINAL_POST_S))
            await self._commit_sent(force=True)

    def _release_state(self) -> None:
        self.forwarder.partitions.clear()
        self.forwarder.outbox.clear()

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            generation, batches = await self._fetch()
            async with self._lock:
                batches = await self._in_hand(generation, batches)  # nothing if fetched across a rebalance
                self.handle(batches)
                await self._open_missing()
            # Posted without the lock: a rebalance need not wait for Alertmanager.
            await self.post(time.time())
            async with self._lock:
                await self._commit_sent()
                self._pause_while_away()

    def handle(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        for tp, messages in batches.items():
            skipped = self.forwarder.take(tp.partition, [(m.offset, _json(m.value)) for m in messages])
            if skipped:
                log.warning("Alertmanager sink: %d records of %s/%d are not alert records (skipped)",
                            skipped, tp.topic, tp.partition)
        self.metrics.pending.set(self.forwarder.pending())
        self.metrics.firing.set(self.forwarder.firing())

    def alerts(self, batch: Batch, now: float) -> list[dict[str, Any]]:
        ruleset: RuleSet = self._rules()
        out = []
        for record in batch.records:
            # Where the rule that decided was written (the record says it); records of before
            # that field: where the rule is now.
            source = record.get("rule_source")
            if not isinstance(source, str) or not source:
                rule = ruleset.by_id.get(str(record.get("rule_id")))
                source = rule.place if rule is not None else ""
            out.append(am_alert(record, now=now, valid_s=VALID_RESENDS * self.am.resend_s, rule_source=source,
                                runbook_url=self.am.runbook_url, generator_url=self.am.generator_url))
        return out

    async def post(self, now: float, timeout_s: float | None = None) -> Result | None:
        """Post what is due unless waiting to try again; None when nothing was posted."""
        if time.monotonic() < self._retry_at or not self.forwarder.due(now) or self._session is None:
            return None
        batch = self.forwarder.batch(now)
        alerts = self.alerts(batch, now)
        outcome: Result = "refused"
        for start in range(0, len(alerts), CHUNK):
            chunk = alerts[start:start + CHUNK]
            result, detail = await post_alerts(self._session, self.am.url, chunk, timeout_s or self.am.timeout_s)
            self.metrics.alerts.labels(result=result).inc(len(chunk))
            if result == "refused":
                log.error("Alertmanager refused a post of %d alerts (%s): they are not posted again",
                          len(chunk), detail)
            elif result == "retry":
                outcome = "retry"
                log.warning("Alertmanager at %s did not take a post of %d alerts (%s): trying again in %.0f s",
                            self.am.url, len(chunk), detail, self._backoff)
                break
            else:
                outcome = "sent"
        if outcome == "retry":
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.am.retry_max_s)
        else:
            self.forwarder.sent(batch, now)
            self._retry_at, self._backoff = 0.0, 1.0
            if outcome == "sent":
                self.metrics.last_sent.set(time.time())
        self.metrics.pending.set(self.forwarder.pending())
        return outcome

    def _pause_while_away(self) -> None:
        """Stop fetching while transitions wait for Alertmanager (Kafka keeps them meanwhile)."""
        consumer = self.consumer
        if consumer is None:
            return
        if not self.forwarder.pending():
            self._retry_at, self._backoff = 0.0, 1.0  # what waited was revoked meanwhile
        away = bool(self.forwarder.pending()) and self._retry_at > 0
        assigned = list(consumer.assignment())
        if away and assigned:
            consumer.pause(*assigned)
            self._paused = True
        elif self._paused:
            consumer.resume(*assigned)
            self._paused = False

    async def _commit_sent(self, *, force: bool = False, partitions: Sequence[int] | None = None) -> None:
        if not force and time.monotonic() < self._next_commit:
            return
        self._next_commit = time.monotonic() + COMMIT_EVERY_S
        offsets = {p: o for p, o in self.forwarder.committable().items()
                   if self._committed.get(p) != o and (partitions is None or p in partitions)}
        if offsets and await self._commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "")
                                           for p, o in offsets.items()}):
            self._committed.update(offsets)

    # -- rebalances -----------------------------------------------------------------------------

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            self._generation += 1
            partitions = sorted({tp.partition for tp in revoked} & set(self.forwarder.partitions))
            try:
                await self._commit_sent(force=True, partitions=partitions)
            finally:
                for partition in partitions:
                    self.forwarder.close(partition)
                    self._committed.pop(partition, None)

    async def _open(self, assigned: list[TopicPartition]) -> None:
        consumer = self.consumer
        assert consumer is not None
        new = [tp for tp in assigned if tp.partition not in self.forwarder.partitions]
        if not new:
            return
        ends = await consumer.end_offsets(new)
        for tp in new:
            committed = await consumer.committed(tp)
            if committed is None:
                # Just switched on: what the partition holds counts as posted (its firing alerts
                # are posted once it is read); said so to the group at once, so that a next owner
                # does not take what arrives meanwhile for history.
                committed = ends[tp]
                if not await self._commit({tp: OffsetAndMetadata(committed, "")}):
                    raise RuntimeError(f"could not commit the starting offset of {tp.topic}/{tp.partition}")
            self.forwarder.open(tp.partition, committed, ends[tp])
            self._committed[tp.partition] = committed
            await consumer.seek_to_beginning(tp)
        log.info("Alertmanager sink: assigned partitions %s", sorted(tp.partition for tp in new))

    async def _open_missing(self) -> None:
        """Open again, every few seconds, assigned partitions whose opening failed."""
        consumer = self.consumer
        if consumer is None or time.monotonic() < self._next_open:
            return
        missing = [tp for tp in consumer.assignment() if tp.partition not in self.forwarder.partitions]
        if not missing:
            return
        self._next_open = time.monotonic() + REOPEN_S
        try:
            await self._open(missing)
        except Exception as exc:  # noqa: BLE001 - tried again REOPEN_S later
            log.warning("opening Alertmanager sink partitions %s failed (%s: %s); trying again in %.0f s",
                        sorted(tp.partition for tp in missing), type(exc).__name__, exc, REOPEN_S)
