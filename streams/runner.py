"""The worker's consumer: whole fetched batches to the shard host, its output to the broker.

A Faust service (started and stopped with the app) that owns an aiokafka consumer in the
worker's consumer group and a producer. Each round: fetch (waiting at most
`worker.fetch_wait_ms` for records), hand every partition's records to its shard, publish
alerts, dead letters and re-keyed frames, wait until the broker has them all, and only then
count the records as done. Every `worker.checkpoint_s` each shard's state and the input
offset it covers go to `ioc.state`, and that offset is committed. A partition's shard is
restored from its checkpoint when assigned (its input read again from the checkpoint's
offset: alert ids are deterministic, so what was published before comes out the same),
and checkpointed and dropped when revoked or at shutdown.

>>> runner = ShardRunner(app, settings, url, parts)                     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from ioc.alerts import Alert
from ioc.config import Settings
from ioc.events import STREAMS
from ioc.exceptions import IocError
from ioc.kafka.clients import bootstrap_servers, client_options
from ioc.kafka.outage import BrokerWatch, QuietClientLogs, topic_prober
from ioc.kafka.publish import OutRecord, Publisher, fit_json
from ioc.kafka.state import CheckpointStore
from ioc.kafka.topics import TopicSpec, catalogue, ensure_topics, raw_topic, rekey_topic
from ioc.runtime.checkpoint import CheckpointError, decode_checkpoint, encode_checkpoint_async
from ioc.runtime.host import Output, ShardHost, ShardKey
from ioc.runtime.pipeline import RawRecord
from ioc.runtime.plan import plan_rules
from ioc.runtime.reload import ReloadOutcome, RuleReloader
from ioc.runtime.runner import WorkerParts
from ioc.runtime.shards import shard_id
from streams import clients as kafka_clients
from streams.group_service import RebalanceListener

__all__ = ["AlertListener", "ShardRunner"]

log = logging.getLogger(__name__)

AlertListener = Callable[[Sequence[Alert]], None]
TICK_S = 0.1
ADOPT_S = 2.0  # how often the loop checks that every assigned partition has its shard
WATCH_S = 1.0  # how often the broker is probed (ioc.kafka.outage)
# How often the consumer refreshes its metadata (aiokafka's default is 5 minutes): topics
# recreated after a broker restart, and new partitions, are seen within this.
METADATA_S = 5
# Shutdown stays well within 10 s whatever the broker does: the round in hand, the final
# checkpoints, then the clients (their leave-group and flush), each with its own bound.
STOP_ROUND_S = 2.0
STOP_CHECKPOINT_S = 3.0
STOP_CLIENTS_S = 2.0
CHECKPOINT_S = 15.0  # one shard's checkpoint save, in normal running
COMMIT_S = 5.0       # aiokafka retries a commit for ever while a topic is missing


class CheckpointAbandoned(IocError):
    """A checkpoint save was given up: timed out, or the broker lost the topics it covered."""


class ShardRunner(mode.Service):
    """Consume, evaluate, publish, checkpoint (see the module docstring)."""

    def __init__(
        self, settings: Settings, broker_url: str, parts: WorkerParts, *,
        listeners: list[AlertListener] | None = None, reloader: RuleReloader | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.broker_url = broker_url
        self.parts = parts
        self.listeners = listeners if listeners is not None else []
        self.reloader = reloader
        self.host = ShardHost(parts.plan, parts.pipeline, {}, settings=parts.host_settings)
        self._lock = asyncio.Lock()
        self._stopping = False
        self._reload_task: asyncio.Future[None] | None = None
        self._reload_again = False  # a SIGHUP came while a reload was running
        # Set while a round's shards have moved on but its output is not yet on the broker.
        self._dirty = False
        self._last_adopt = 0.0
        # Between a revocation and the next assignment the consumer's assignment is the old one.
        self._rebalancing = False
        self._loop_task: asyncio.Task[None] | None = None
        self._saved: dict[ShardKey, tuple[int | None, float]] = {}
        self._resetting = False  # between the broker losing topics and their recreation
        self._epoch = 0  # how many times the broker lost our topics: offsets of an older epoch mean nothing
        # When each shard's next checkpoint is due: spread over the interval, one shard a round,
        # so that no round stops for all of them at once.
        self._due: dict[ShardKey, float] = {}
        self._last_tick = 0.0
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.publisher: Publisher | None = None
        self.store: CheckpointStore | None = None
        self.prefix = settings.topics.prefix
        self.quiet = QuietClientLogs()
        self.watch = self._make_watch()
        self._watch_task: asyncio.Task[None] | None = None
        # Checkpoint saves in flight: cancelled when the broker loses its topics (what they
        # cover is gone with them, and their offsets would be wrong on the recreated topics).
        self._saving: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def on_start(self) -> None:
        settings = self.settings
        app_id = settings.worker.app_id
        self.producer = kafka_clients.producer(settings, self.broker_url, f"{app_id}-producer")
        await self.producer.start()
        self.publisher = Publisher(
            self.producer, record_bytes=settings.limits.record_bytes, metrics=self.parts.metrics,
            prefix=self.prefix, stopping=lambda: self._stopping, quiet=lambda: self.watch.outage,
        )
        self.store = kafka_clients.checkpoint_store(settings, self.broker_url, self.producer, f"{app_id}-state")
        self.consumer = kafka_clients.group_consumer(
            settings, self.broker_url, app_id, f"{app_id}-consumer", fetch_wait_ms=settings.worker.fetch_wait_ms,
            max_poll_interval_ms=300_000, metadata_max_age_ms=METADATA_S * 1000,
        )
        await self.consumer.start()
        self.consumer.subscribe(self._topics(), listener=RebalanceListener(self))
        self.quiet.install()
        self._loop_task = asyncio.ensure_future(self._run())
        self._loop_task.add_done_callback(self._loop_ended)
        self._watch_task = asyncio.ensure_future(self.watch.run(WATCH_S))

    def _make_watch(self) -> BrokerWatch:
        """The outage watch: probes the broker, recreates lost topics (see ioc.kafka.outage)."""
        settings = self.settings
        secured = bool(settings.broker.ssl_cafile or settings.broker.ssl_certfile or settings.broker.sasl_mechanism)

        def expected() -> list[TopicSpec]:
            return catalogue(settings, self.host.plan.spaces)

        def recreate(specs: list[TopicSpec]) -> list[str]:
            return ensure_topics(self.broker_url, specs, settings.topics.replication, client_options(settings))

        def admin_topics() -> set[str]:
            # TLS/SASL: a plaintext probe cannot reach the broker; the admin client can.
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(self.broker_url), client_id="ioc-watch",
                                     request_timeout_ms=3000, **client_options(settings))
            try:
                return set(admin.list_topics())
            finally:
                admin.close()

        return BrokerWatch(self.broker_url, admin_topics if secured else topic_prober(self.broker_url), expected,
                           recreate, metrics=self.parts.metrics, on_lost=self._topics_lost,
                           on_recreated=self._topics_recreated, quiet=self.quiet)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The consume loop must not die quietly: a worker that stops consuming stops the worker."""
        if task.cancelled():
            return
        error = task.exception()
        if self._stopping:
            return
        if error is not None:
            log.critical("the consume loop failed: %s: %s; stopping the worker", type(error).__name__, error,
                         exc_info=error)
            asyncio.ensure_future(self.crash(error))

    async def on_stop(self) -> None:
        """Finish the round in hand, checkpoint every shard, leave the group: each step bounded,
        so that SIGTERM stops the worker within seconds even when the broker is away or a send
        keeps failing (what is not checkpointed is read again by the next owner)."""
        self._stopping = True
        started = time.monotonic()
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self._reload_task is not None:
            self._reload_task.cancel()
        if self._loop_task is not None:
            await kafka_clients.finish_loop(self._loop_task, STOP_ROUND_S, log)
        try:
            await asyncio.wait_for(self._lock.acquire(), STOP_ROUND_S)
        except TimeoutError:
            log.warning("a rebalance is still in hand: stopping without a final checkpoint")
        else:
            try:
                await self._final_checkpoint()
            finally:
                self._lock.release()
        self.host.shards.clear()
        clients = [client.stop() for client in (self.consumer, self.producer) if client is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), STOP_CLIENTS_S)
        except TimeoutError:
            log.warning("the Kafka clients did not close within %.0f s (broker away?): leaving anyway",
                        STOP_CLIENTS_S)
        self.quiet.uninstall()
        log.info("shard runner stopped in %.1f s", time.monotonic() - started)

    async def _final_checkpoint(self) -> None:
        if self._dirty:
            # A round was evaluated but its output never reached the broker: checkpointing now
            # would skip it. The last checkpoints stand; the next owner reads it again.
            log.warning("stopping with a round unpublished: no final checkpoint, the next owner replays it")
        elif self.watch.outage:
            log.warning("stopping while the broker is away: no final checkpoint, the next owner replays "
                        "from the previous one")
        else:
            try:
                await asyncio.wait_for(self._checkpoint(list(self.host.shards), force=True), STOP_CHECKPOINT_S)
            except Exception as exc:  # noqa: BLE001 - a failed final checkpoint means a longer replay, not a loss
                log.warning("final checkpoint not taken (%s); the next owner replays from the previous one",
                            type(exc).__name__ if isinstance(exc, TimeoutError) else exc)

    def _topics(self) -> list[str]:
        raw = [raw_topic(self.settings, stream) for stream in STREAMS]
        return raw + [rekey_topic(self.settings, space) for space in sorted(self.host.plan.spaces)]

    def _suffix(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        max_records = self.settings.worker.max_batch
        while not self._stopping:
            batches = await consumer.getmany(timeout_ms=int(TICK_S * 1000), max_records=max_records)
            async with self._lock:
                if self._stopping and not batches:
                    break
                self._dirty = True
                out = self.host.wake(self._caught_up)
                for tp, messages in batches.items():
                    records = [RawRecord(tp.topic, m.partition, m.offset, m.key, m.value, m.timestamp / 1000.0)
                               for m in messages]
                    out.extend(self.host.handle(self._suffix(tp.topic), tp.partition, records))
                now = time.monotonic()
                if now - self._last_tick >= TICK_S:
                    self._last_tick = now
                    out.extend(self.host.tick(self._caught_up))
                    self._gauges()
                await self.publish(out)
                self._dirty = False
                if now - self._last_adopt >= ADOPT_S:
                    self._last_adopt = now
                    await self._adopt()
                due = min(self._due.items(), key=lambda item: item[1], default=None)
                if due is not None and due[1] <= now and not self.watch.outage:
                    key = due[0]
                    self._due[key] = now + self.settings.worker.checkpoint_s
                    shard = self.host.shards.get(key)
                    if shard is not None:
                        # Shards forget keys at event-time moments of their own (Engine.sweep);
                        # this only reports how many went since the last checkpoint.
                        forgotten = shard.engine.sweep()
                        if forgotten:
                            log.debug("shard %s/%d forgot %d keys since its last checkpoint", *key, forgotten)
                        try:
                            await self._checkpoint([key])
                        except CheckpointAbandoned as exc:
                            log.warning("%s; trying again in %.0f s", exc, self.settings.worker.checkpoint_s)

    def _gauges(self) -> None:
        """Shards, keys and timers held (set here, in the loop: the scrape runs in another thread)."""
        metrics = self.parts.metrics
        for kind in ("raw", "rekey"):
            metrics.shards.labels(kind=kind).set(self.host.count(kind))
        metrics.state_keys.set(self.host.state_keys())
        metrics.timers.set(self.host.timers())
        lag: dict[str, int] = {}
        consumer = self.consumer
        for (suffix, partition), shard in self.host.shards.items():
            if consumer is None or not suffix.startswith("raw."):
                continue
            highwater = consumer.highwater(TopicPartition(self.prefix + suffix, partition))
            stream = suffix.removeprefix("raw.")
            lag[stream] = lag.get(stream, 0) + max(0, (highwater or 0) - (shard.offset or 0))
        for stream in STREAMS:
            metrics.consumer_lag.labels(stream=stream).set(lag.get(stream, 0))

    def _caught_up(self, key: ShardKey) -> bool:
        """Whether the consumer has read all there is of a partition (as far as it can tell)."""
        consumer = self.consumer
        shard = self.host.shards.get(key)
        if consumer is None or shard is None:
            return False
        partition = TopicPartition(self.prefix + key[0], key[1])
        if partition not in consumer.assignment():
            return False  # being revoked: its shard goes when the rebalance listener runs
        highwater = consumer.highwater(partition)
        return highwater is not None and (shard.offset or 0) >= highwater

    async def publish(self, out: Output) -> None:
        """Send everything in `out` and wait until the broker has it; then account and notify.
        A record that can never be written is given up once (see ioc.kafka.publish)."""
        if not out:
            return
        publisher = self.publisher
        assert publisher is not None
        await publisher.publish(self._records(out), "records")
        if out.alerts:
            self.parts.pipeline.published(out.alerts)
            for listener in self.listeners:
                try:
                    listener(out.alerts)
                except Exception:  # a display problem must never stop the worker
                    log.exception("alert listener failed")

    def _records(self, out: Output) -> list[OutRecord]:
        """A round's frames, dead letters and alerts as records; an alert larger than
        `limits.record_bytes` has its longest texts cut (the last guard: templates are bounded
        at load), rather than being lost."""
        limit = self.settings.limits.record_bytes
        alerts_topic = self.settings.topic("alerts")
        dead_topic = self.settings.topic("deadletter")
        records = [OutRecord(self.prefix + topic, value, None, partition, f"a frame for {topic}/{partition}")
                   for topic, partition, value in out.frames]
        records += [OutRecord(dead_topic, letter.value, letter.key, None, "a dead letter")
                    for letter in out.dead_letters]
        for alert in out.alerts:
            key = alert.fingerprint.encode()
            value = fit_json(alert.to_json(), limit - len(key))
            records.append(OutRecord(alerts_topic, value, key, None, f"alert {alert.alert_id} (rule {alert.rule_id})"))
        return records

    # -- checkpoints and rebalances -----------------------------------------------------------

    async def _checkpoint(self, keys: list[ShardKey], *, force: bool = False) -> None:
        """Save the shards that moved since their last checkpoint, then commit their offsets."""
        store, consumer = self.store, self.consumer
        assert store is not None and consumer is not None
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for key in keys:
            shard = self.host.shards.get(key)
            if shard is None:
                continue
            mark = (shard.offset, shard.watermark)
            if not force and self._saved.get(key) == mark:
                self.parts.metrics.checkpoints.confirm("shards", shard.id)
                continue
            epoch = self._epoch
            data = await encode_checkpoint_async(shard.snapshot())
            if epoch != self._epoch:
                # The broker lost its topics while this was encoded: its offset is of the old ones.
                raise CheckpointAbandoned(f"checkpoint of {shard.id} given up: the broker lost its topics")
            await self._save(shard.id, data)
            self._saved[key] = mark
            self.parts.metrics.checkpoints.saved("shards", shard.id, len(data))
            if shard.offset is not None:
                offsets[TopicPartition(self.prefix + key[0], key[1])] = OffsetAndMetadata(shard.offset, "")
        await self._commit(offsets)

    async def _save(self, shard: str, data: bytes) -> None:
        """One checkpoint save, bounded, and given up if the broker loses its topics meanwhile
        (CheckpointAbandoned): the shard keeps its previous checkpoint, saved again later."""
        store = self.store
        assert store is not None
        task = asyncio.ensure_future(store.save(shard, data))
        self._saving.add(task)
        try:
            await asyncio.wait_for(asyncio.shield(task), CHECKPOINT_S)
        except TimeoutError:
            task.cancel()
            raise CheckpointAbandoned(f"checkpoint of {shard} not acknowledged within {CHECKPOINT_S:g} s") from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current is not None and current.cancelling()):
                raise CheckpointAbandoned(f"checkpoint of {shard} given up: the broker lost its topics") from None
            task.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: the previous checkpoint stands
            raise CheckpointAbandoned(f"checkpoint of {shard} failed ({type(exc).__name__}: {exc})") from None
        finally:
            self._saving.discard(task)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets or self.consumer is None:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), COMMIT_S)
        except Exception as exc:  # noqa: BLE001 - checkpoints, not commits, are what recovery reads
            if not self.watch.outage:
                log.warning("committing offsets failed (%s: %s); the checkpoints hold them",
                            type(exc).__name__, exc)

    # -- the broker lost topics ---------------------------------------------------------------

    async def _topics_lost(self, names: list[str]) -> None:
        """Topics we use are missing (a broker with memory storage restarted): offsets held on
        them mean nothing on the topics about to be recreated, which start again at 0. Shards
        reading them keep their engine state and read the new topics from the start; checkpoint
        saves in flight are given up (they would carry the old offsets)."""
        lost = set(names)
        self._epoch += 1
        for task in list(self._saving):
            task.cancel()
        for key, shard in self.host.shards.items():
            if self.prefix + key[0] in lost:
                shard.offset = None
            self._saved.pop(key, None)  # saved again on the recreated state topic
        self._resetting = True

    async def _topics_recreated(self, names: list[str]) -> None:
        """The consumer sees the recreated topics at its next metadata refresh (every
        METADATA_S), and its group (gone with the broker's memory) forms again on them.
        (Subscribing anew instead would race aiokafka's coordinator while it rejoins.)"""
        self._resetting = False

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and drop the shards of revoked partitions (before the rebalance completes)."""
        async with self._lock:
            self._rebalancing = True
            keys = [(self._suffix(tp.topic), tp.partition) for tp in revoked]
            try:
                await self._checkpoint([key for key in keys if key in self.host.shards], force=True)
            except CheckpointAbandoned as exc:
                log.warning("%s; the next owner replays from the previous checkpoint", exc)
            finally:
                # Whatever happened, nothing of a revoked shard stays: its next owner has it now.
                for key in keys:
                    self.host.close(*key)
                    self._saved.pop(key, None)
                    self._due.pop(key, None)
                    self.parts.metrics.checkpoints.forget("shards", shard_id(*key))
            self._gauges()
            log.info("revoked %d partitions", len(revoked))

    async def assign(self, assigned: list[TopicPartition]) -> None:
        """Open the shards of assigned partitions from their checkpoints, and seek to them."""
        async with self._lock:
            try:
                await self._open(assigned)
            except Exception:  # noqa: BLE001 - aiokafka would swallow it; the loop adopts what is missing
                log.exception("opening %d assigned partitions failed; retrying from the consume loop", len(assigned))
            finally:
                self._rebalancing = False

    async def _adopt(self) -> None:
        """Open shards for assigned partitions that have none (an assignment that failed half-way),
        and learn where a shard without a checkpoint starts reading."""
        consumer = self.consumer
        if consumer is None or self._rebalancing or self._resetting or self.watch.outage:
            return
        assigned = consumer.assignment()
        owned = {(self._suffix(tp.topic), tp.partition) for tp in assigned}
        for key in [key for key in self.host.shards if key not in owned]:
            # Not ours (a revocation that failed half-way): its owner has it; it must not linger.
            log.warning("dropping shard %s: its partition is no longer assigned here", shard_id(*key))
            self.host.close(*key)
            self._saved.pop(key, None)
            self._due.pop(key, None)
            self.parts.metrics.checkpoints.forget("shards", shard_id(*key))
        missing = [tp for tp in assigned if (self._suffix(tp.topic), tp.partition) not in self.host.shards]
        if missing:
            try:
                await self._open(missing)
            except Exception:  # noqa: BLE001 - tried again a little later
                log.exception("opening %d assigned partitions failed; trying again", len(missing))
        for tp in assigned:
            shard = self.host.shards.get((self._suffix(tp.topic), tp.partition))
            if shard is not None and shard.offset is None:
                # Nothing read yet: where reading starts is where "read everything" is measured from.
                try:
                    shard.offset = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
                except Exception as exc:  # noqa: BLE001 - a timeout too: known on a later round
                    log.debug("position of %s unknown yet: %s", tp, exc)

    async def _open(self, assigned: list[TopicPartition]) -> None:
        """Restore the shards of `assigned` from their checkpoints and seek each to its offset."""
        consumer, store = self.consumer, self.store
        assert consumer is not None and store is not None
        self.host.partitions.update(self._partition_counts())
        keys = [(self._suffix(tp.topic), tp.partition) for tp in assigned]
        ids = {shard_id(*key): key for key in keys}
        saved = await store.load(ids)
        for tp, key in zip(assigned, keys, strict=True):
            snapshot = None
            raw = saved.get(shard_id(*key))
            if raw is not None:
                try:
                    snapshot = decode_checkpoint(raw)
                except CheckpointError as exc:
                    log.error("checkpoint of %s unusable (%s): starting it afresh", shard_id(*key), exc)
            shard = self.host.open(key[0], key[1], snapshot)
            if shard.offset is not None:
                consumer.seek(tp, shard.offset)
            self._saved[key] = (shard.offset, shard.watermark)
            if raw is not None and snapshot is not None:
                self.parts.metrics.checkpoints.saved("shards", shard_id(*key), len(raw))  # current as restored
            # Spread the shards' checkpoints over the interval.
            self._due[key] = time.monotonic() + self.settings.worker.checkpoint_s * (1 + len(self._due) % 10 / 10)
        self._gauges()
        log.info("assigned %d partitions (%d from checkpoints)", len(assigned), len(saved))

    def _partition_counts(self) -> dict[str, int]:
        consumer = self.consumer
        assert consumer is not None
        counts = {}
        for topic in self._topics():
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                counts[self._suffix(topic)] = len(partitions)
        return counts

    # -- rules --------------------------------------------------------------------------------

    def request_reload(self, why: str) -> None:
        """Reload the rules in a task of their own: a timer tick or SIGHUP never waits on a round
        (a round may be held up while the broker is away). A SIGHUP during a reload is done after it."""
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = self._reload_again or why == "SIGHUP"
            return
        self._reload_task = asyncio.ensure_future(self._reloads(why))

    async def _reloads(self, why: str) -> None:
        try:
            await self.reload_rules(why)
            while self._reload_again and not self._stopping:
                self._reload_again = False
                await self.reload_rules("SIGHUP")
        except Exception:  # noqa: BLE001 - a reload must never take the worker down
            log.exception("reloading the rules failed unexpectedly; the running rules stay")

    async def reload_rules(self, why: str) -> None:
        """Load the rules off the event loop (within limits.rule_load_s), then swap them in
        between two rounds; on SIGHUP always, otherwise only when a watched file changed."""
        reloader = self.reloader
        if reloader is None or (why != "SIGHUP" and (reloader.loading or not reloader.changed())):
            return  # nothing changed, or a late load still runs: the change waits for it
        loaded = await reloader.load_async(why)
        if isinstance(loaded, ReloadOutcome):
            return  # rejected: logged and counted, the running rules stay
        spaces = plan_rules(loaded).spaces
        if set(spaces) != set(self.host.plan.spaces):
            # The new key spaces' topics exist before the plan names them: the outage watch
            # would otherwise take them for topics the broker lost.
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, ensure_topics, self.broker_url, catalogue(self.settings, spaces),
                    self.settings.topics.replication, client_options(self.settings))
            except Exception as exc:  # noqa: BLE001 - the broker is away: the running rules stay
                reloader.retry_later()
                log.error("rule reload (%s) postponed: the topics of its new key spaces could not be created "
                          "(%s: %s); the running rules stay, the reload is tried again", why, type(exc).__name__, exc)
                return
        async with self._lock:
            # Until its resolves are on the broker the swap is a round not yet published: a
            # checkpoint taken meanwhile (at SIGTERM) would lose them.
            self._dirty = True
            outcome = reloader.swap(why, loaded)
            await self.publish(Output(alerts=outcome.resolved))
            self._dirty = False
        consumer = self.consumer
        if outcome.ok and consumer is not None and sorted(self._topics()) != sorted(consumer.subscription()):
            log.warning("the key spaces changed with the rules: subscribing anew (a rebalance follows)")
            consumer.subscribe(self._topics(), listener=RebalanceListener(self))

    def apply_rules(self, ruleset: Any) -> tuple[list[Alert], list[str]]:
        resolved, changed, _ = self.host.apply_rules(ruleset)
        return resolved, changed
