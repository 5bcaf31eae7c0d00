"""Publish simulated events to the raw topics at a bounded rate.

>>> publish(url, "ioc.raw.reservoir", events, rate=50)        # doctest: +SKIP
PublishStats(sent=2880, seconds=57.6)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PublishStats", "publish", "make_producer", "MAX_MESSAGE_BYTES"]

log = logging.getLogger(__name__)

# The largest message the simulators send. Their malformed messages include oversized ones on
# purpose (just over the worker's `limits.event_bytes`, 1 MB by default), which the embedded
# broker accepts; a producer with Kafka's default 1 MB limit would refuse them itself.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class PublishStats:
    sent: int = 0           # messages handed to the producer and not refused
    seconds: float = 0.0
    bad: int = 0            # of them, malformed on purpose (each must end up dead-lettered)
    failed: int = 0         # refused by the producer or the broker for good (counted, skipped)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class _RdKafkaProducer:
    """librdkafka (confluent-kafka) behind the small interface the simulators use: send, flush,
    close. About 30 times faster than kafka-python here, which the 20,000 events/s target needs.
    A message refused for good (too large, unknown topic...) is counted in `failed` and logged
    once per reason: one bad message must not end a simulation."""

    def __init__(self, url: str) -> None:
        from confluent_kafka import Producer

        from ioc.kafka.clients import bootstrap_servers

        self.failed = 0
        self._reasons: set[str] = set()
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers(url), "linger.ms": 5, "acks": 1,
            "enable.idempotence": False, "queue.buffering.max.messages": 1_000_000,
            "client.id": "ioc-simulate", "log_level": 3, "message.max.bytes": MAX_MESSAGE_BYTES,
            # Kafka's default (Java) partitioner, as aiokafka and kafka-python use and the backtest assumes.
            "partitioner": "murmur2_random",
        })

    def send(self, topic: str, *, key: bytes | None = None, value: bytes) -> bool:
        """Queue a message; False when the producer refuses it for good (counted in `failed`)."""
        from confluent_kafka import KafkaException

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.05)
            except KafkaException as exc:  # e.g. MSG_SIZE_TOO_LARGE: retrying cannot help
                self._failed(topic, len(value), str(exc.args[0] if exc.args else exc))
                return False
        self._producer.poll(0)
        return True

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed(message.topic(), len(message.value() or b""), str(error))

    def _failed(self, topic: str, size: int, reason: str) -> None:
        self.failed += 1
        name = reason.split(",")[0]
        if name not in self._reasons:
            self._reasons.add(name)
            log.warning("a %d-byte message to %s was refused (%s); counting such failures and going on",
                        size, topic, reason)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise RuntimeError(f"{remaining} messages were not delivered within {timeout:g} s")

    def close(self) -> None:
        self.flush()
        # librdkafka has no close(): dropping the last reference destroys the client, so it
        # does not keep reconnecting (and logging) after the broker has gone.
        del self._producer


class _KafkaPythonProducer:
    """kafka-python behind the same interface, where confluent-kafka is not installed."""

    def __init__(self, url: str) -> None:
        from kafka import KafkaProducer

        from ioc.kafka.clients import bootstrap_servers

        self.failed = 0
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers(url), linger_ms=5, acks=1, enable_idempotence=False,
            client_id="ioc-simulate", max_request_size=MAX_MESSAGE_BYTES,
        )

    def send(self, topic: str, *, key: bytes | None = None, value: bytes) -> bool:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(topic, key=key, value=value)
        except KafkaError as exc:
            self.failed += 1
            log.warning("a %d-byte message to %s was refused (%s); going on", len(value), topic, exc)
            return False
        future.add_errback(self._errback)
        return True

    def _errback(self, exc: BaseException) -> None:
        self.failed += 1

    def flush(self, timeout: float = 60.0) -> None:
        self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.close()


def make_producer(url: str) -> Any:
    """A producer for simulated events: librdkafka when installed, else kafka-python."""
    try:
        return _RdKafkaProducer(url)
    except ImportError:
        return _KafkaPythonProducer(url)


def publish(
    url: str,
    topic: str,
    events: Iterable[Mapping[str, Any] | bytes],
    *,
    rate: float | None = None,
    stop: threading.Event | None = None,
    producer: Any = None,
) -> PublishStats:
    """Send events keyed by `source_id`; `rate` events per second (None: as fast as possible)."""
    own = producer is None
    producer = producer if producer is not None else make_producer(url)
    stats = PublishStats()
    started = time.monotonic()
    try:
        for event in events:
            if stop is not None and stop.is_set():
                break
            if isinstance(event, bytes):
                value, key = event, None
                stats.bad += 1
            else:
                value = orjson.dumps(event)
                source = event.get("source_id")
                key = str(source).encode("utf-8") if source is not None else None
            producer.send(topic, key=key, value=value)
            stats.sent += 1
            if rate:
                # Sleep off any lead over the schedule, so bursts never exceed the rate.
                ahead = stats.sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    if stop is not None:
                        if stop.wait(ahead):
                            break
                    else:
                        time.sleep(ahead)
        producer.flush()
    finally:
        if own:
            producer.close()
        stats.seconds = time.monotonic() - started
        stats.failed = getattr(producer, "failed", 0)
    return stats
