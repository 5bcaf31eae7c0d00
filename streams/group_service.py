"""What the worker's SLA runner and cluster runner share: a service with its own producer,
checkpoint store and group consumer, one consume loop, a lock between the loop and rebalances,
a rebalance generation (a batch fetched before a rebalance is not handled after it), and a
bounded stop (finish the round, a final checkpoint, close the clients).

A subclass sets `role` (client ids, group `<app_id>.<role>`, log lines), implements `_run`,
`revoke`, `_open` (or `assign`), `_final_checkpoint` and `_expected_offset`, and calls
`_start(topics, assignor)` from `on_start`; its loop gets batches from `_fetch()` and handles
what `_in_hand()` keeps of them (a batch whose generation is not the current one is rewound
by `_rewind()` instead).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from ioc.config import Settings
from ioc.kafka.publish import Publisher
from ioc.kafka.state import CheckpointStore
from ioc.runtime.runner import WorkerParts
from streams import clients as kafka_clients

__all__ = ["GroupService", "RebalanceListener"]

log = logging.getLogger(__name__)

FETCH_MS = 200
STOP_ROUND_S = 2.0
STOP_CHECKPOINT_S = 5.0
STOP_CLIENTS_S = 2.0
COMMIT_S = 5.0


class Rebalanced(Protocol):
    async def revoke(self, revoked: list[TopicPartition]) -> None: ...

    async def assign(self, assigned: list[TopicPartition]) -> None: ...


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands a group's rebalance to a runner's `revoke` and `assign` (all three runners use it)."""

    def __init__(self, service: Rebalanced) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.service.revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.service.assign(list(assigned))


class GroupService(mode.Service):
    """The Kafka plumbing and lifecycle of a worker service in a consumer group of its own."""

    role = "service"         # group `<app_id>.<role>`, client ids `<app_id>-<role>-...`
    what = "the service"     # for log lines: "the SLA runner"

    def __init__(self, settings: Settings, broker_url: str, parts: WorkerParts, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.broker_url = broker_url
        self.parts = parts
        self._lock = asyncio.Lock()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._generation = 0  # rebalances so far: a batch fetched in an earlier one is dropped
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.publisher: Publisher | None = None
        self.store: CheckpointStore | None = None

    async def _start(self, topics: list[str], assignor: Any) -> None:
        settings = self.settings
        app_id = settings.worker.app_id
        self.producer = kafka_clients.producer(settings, self.broker_url, f"{app_id}-{self.role}-producer")
        await self.producer.start()
        self.publisher = Publisher(self.producer, record_bytes=settings.limits.record_bytes, metrics=self.parts.metrics,
                                   prefix=settings.topics.prefix, stopping=lambda: self._stopping)
        self.store = kafka_clients.checkpoint_store(settings, self.broker_url, self.producer,
                                                    f"{app_id}-{self.role}-state")
        self.consumer = kafka_clients.group_consumer(
            settings, self.broker_url, f"{app_id}.{self.role}", f"{app_id}-{self.role}-consumer",
            fetch_wait_ms=FETCH_MS, metadata_max_age_ms=5000, partition_assignment_strategy=(assignor,),
        )
        await self.consumer.start()
        self.consumer.subscribe(topics, listener=RebalanceListener(self))
        self._loop_task = asyncio.ensure_future(self._run())
        self._loop_task.add_done_callback(self._loop_ended)

    async def _fetch(self) -> tuple[int, Any]:
        """The next batch and the rebalance generation it was fetched in."""
        consumer = self.consumer
        assert consumer is not None
        generation = self._generation
        batches = await consumer.getmany(timeout_ms=FETCH_MS, max_records=self.settings.worker.max_batch)
        return generation, batches

    async def _rewind(self, batches: Any) -> None:
        """A batch fetched across a rebalance is not handled (some of it may predate the seek to a
        checkpoint): its partitions still assigned go back to the next offset the service expects,
        so that every record of it is fetched again after the seek."""
        consumer = self.consumer
        assert consumer is not None
        assigned = consumer.assignment()
        for tp in batches:
            if tp not in assigned:
                continue
            expected = self._expected_offset(tp)
            if expected is not None:
                consumer.seek(tp, expected)
            else:
                await consumer.seek_to_beginning(tp)

    async def _in_hand(self, generation: int, batches: Any) -> Any:
        """The batch to handle now (under the lock): nothing when it was fetched in an earlier
        rebalance generation; then it is rewound, to be fetched again."""
        if generation == self._generation:
            return batches
        await self._rewind(batches)
        return {}

    async def _commit(self, offsets: dict[TopicPartition, Any]) -> bool:
        """Commit what a saved checkpoint covers (a failure only delays the group's view of it);
        whether the offsets were committed."""
        consumer = self.consumer
        if not offsets or consumer is None:
            return not offsets
        try:
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_S)
        except Exception as exc:  # noqa: BLE001 - the checkpoints hold the offsets
            log.warning("committing the offsets of %s failed (%s: %s)", self.what, type(exc).__name__, exc)
            return False
        return True

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is not None:
            log.critical("the loop of %s failed: %s: %s; stopping the worker", self.what, type(error).__name__,
                         error, exc_info=error)
            asyncio.ensure_future(self.crash(error))

    async def on_stop(self) -> None:
        """Finish the round in hand, take a final checkpoint, leave: each step bounded."""
        self._stopping = True
        if self._loop_task is not None:
            await kafka_clients.finish_loop(self._loop_task, STOP_ROUND_S, log)
        try:
            await asyncio.wait_for(self._lock.acquire(), STOP_ROUND_S)
        except TimeoutError:
            log.warning("a rebalance is still in hand: stopping %s without a final checkpoint", self.what)
        else:
            try:
                await asyncio.wait_for(self._final_checkpoint(), STOP_CHECKPOINT_S)
            except Exception as exc:  # noqa: BLE001 - a longer replay, not a loss
                log.warning("the final checkpoint of %s was not taken (%s); the next owner replays from the "
                            "previous one", self.what, type(exc).__name__)
            finally:
                self._lock.release()
        self._release_state()
        clients = [client.stop() for client in (self.consumer, self.producer) if client is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), STOP_CLIENTS_S)
        except TimeoutError:
            log.warning("the Kafka clients of %s did not close within %.0f s", self.what, STOP_CLIENTS_S)

    # -- for subclasses -------------------------------------------------------------------------

    async def _run(self) -> None:
        raise NotImplementedError

    async def revoke(self, revoked: list[TopicPartition]) -> None:
        raise NotImplementedError

    async def assign(self, assigned: list[TopicPartition]) -> None:
        """A new rebalance generation; `_open` restores what was assigned and seeks to it."""
        async with self._lock:
            self._generation += 1
            try:
                await self._open(assigned)
            except Exception:  # noqa: BLE001 - aiokafka would swallow it
                log.exception("opening %d partitions of %s failed", len(assigned), self.what)

    async def _open(self, assigned: list[TopicPartition]) -> None:
        raise NotImplementedError

    async def _final_checkpoint(self) -> None:
        raise NotImplementedError

    def _expected_offset(self, tp: TopicPartition) -> int | None:
        """The next offset the service's state expects of `tp` (None: from the beginning)."""
        raise NotImplementedError

    def _release_state(self) -> None:
        """After the final checkpoint, before the clients close (drop what is held)."""
