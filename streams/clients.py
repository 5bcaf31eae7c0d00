"""The Kafka clients both runners of a worker use (ShardRunner, SlaRunner): an acks=all
producer, the checkpoint store on `ioc.state`, a group consumer without auto-commit, and the
bounded wait for a consume loop at stop. One place, so the two stay alike."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ioc.config import Settings
from ioc.kafka.clients import aiokafka_options, bootstrap_servers, producer_request_bytes
from ioc.kafka.publish import PublishAbandoned
from ioc.kafka.state import CheckpointStore
from ioc.kafka.topics import state_topic

__all__ = ["checkpoint_store", "finish_loop", "group_consumer", "producer"]


def producer(settings: Settings, broker_url: str, client_id: str) -> AIOKafkaProducer:
    """Every record acknowledged by all replicas, sent at once, up to `limits.record_bytes`."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=0, enable_idempotence=False,
        max_request_size=producer_request_bytes(settings), client_id=client_id, **aiokafka_options(settings),
    )


def checkpoint_store(settings: Settings, broker_url: str, out: AIOKafkaProducer, client_id: str) -> CheckpointStore:
    """Checkpoints on `ioc.state` (one partition), read back from its beginning on restore."""
    options = aiokafka_options(settings)
    servers = bootstrap_servers(broker_url)

    async def reader() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=50, client_id=client_id, **options)
        await consumer.start()
        partition = TopicPartition(state_topic(settings), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        return consumer

    return CheckpointStore(out, state_topic(settings), reader, chunk_bytes=settings.limits.record_bytes - 1024)


def group_consumer(settings: Settings, broker_url: str, group_id: str, client_id: str, *, fetch_wait_ms: int,
                   **extra: Any) -> AIOKafkaConsumer:
    """A consumer in `group_id` that commits only what a checkpoint covers (no auto-commit)."""
    session_ms = int(settings.worker.session_timeout_s * 1000)
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url), group_id=group_id, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_wait_ms,
        session_timeout_ms=session_ms, heartbeat_interval_ms=max(100, min(3000, session_ms // 3)),
        request_timeout_ms=max(40_000, session_ms * 2), client_id=client_id,
        **extra, **aiokafka_options(settings),
    )


async def finish_loop(task: asyncio.Task[None], timeout: float, log: logging.Logger) -> None:
    """Let a consume loop finish its round within `timeout` seconds, else cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, timeout=1.0)
    except PublishAbandoned as exc:
        log.warning("%s: the next owner reads that round again", exc)
    except asyncio.CancelledError:
        task.cancel()
    except Exception:  # noqa: BLE001 - already logged by the loop
        log.exception("the consumer loop failed")
