"""Small kafka-python helpers for integration tests: send raw records, read a topic whole."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from ioc.kafka.clients import bootstrap_servers


def send(url: str, topic: str, records: list[tuple[bytes | None, bytes]], *, max_bytes: int = 1048576,
         batched: bool = False) -> None:
    """Send (key, value) records in order, one at a time (each its own batch), or `batched` (the
    producer batches them; flushed at the end). `max_bytes`: the producer's request limit
    (Kafka's default 1 MB; the embedded broker takes larger messages)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers(url), acks=1, enable_idempotence=False,
                             max_request_size=max_bytes, linger_ms=5 if batched else 0)
    try:
        for key, value in records:
            future = producer.send(topic, key=key, value=value)
            if not batched:
                future.get(timeout=10)
        producer.flush(timeout=60)
    finally:
        producer.close()


def read(
    url: str, topic: str, *, expect: int, timeout: float = 60.0,
    until: Callable[[list[Any]], bool] | None = None, escalations: bool = False,
) -> list[Any]:
    """Every record on `topic` (JSON-decoded, in partition/offset order), waiting until there are
    `expect` of them (and `until(records)` holds, when given) or `timeout` passes. On an
    `alerts` topic the SLA tracker's escalation records (label `escalation`) are left out
    unless `escalations` is true: the engine's alerts are what most tests compare."""
    skip = topic.endswith("alerts") and not escalations
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(url),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    found: list[tuple[int, int, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        def done() -> bool:
            if len(found) < expect:
                return False
            return until is None or until([item for _, _, item in sorted(found, key=lambda f: (f[0], f[1]))])

        while not done() and time.monotonic() < deadline:
            for message in consumer:
                _take(found, message, skip)
        # A moment more, so that records beyond `expect` (which a test must see) arrive too.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            for message in consumer:
                _take(found, message, skip)
    finally:
        consumer.close()
    return [item for _, _, item in sorted(found, key=lambda f: (f[0], f[1]))]


def _take(found: list[tuple[int, int, Any]], message: Any, skip_escalations: bool) -> None:
    value = orjson.loads(message.value)
    if skip_escalations and isinstance(value, dict) and (value.get("labels") or {}).get("escalation"):
        return
    found.append((message.partition, message.offset, (message.key, value)))
