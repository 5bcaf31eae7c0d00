"""The benchmark's Kafka side: the embedded broker, topics, producing, reading alerts.

>>> broker = start_broker(Path(".ioc/bench/logs/broker.log"))      # doctest: +SKIP
>>> create_topics(bootstrap_servers(broker.url), ["b1a2b3c4.raw.camera"], partitions=4)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from ioc.kafka.broker import EmbeddedBroker
from ioc.kafka.clients import bootstrap_servers

__all__ = [
    "EmbeddedBroker",
    "alerts_consumer",
    "bootstrap_servers",
    "create_topics",
    "preload",
    "producer",
    "start_broker",
]

STREAMS = ("camera", "reservoir", "vessel", "cyber", "press")
RETENTION_MS = 7 * 86400 * 1000


def start_broker(log_path: Path) -> EmbeddedBroker:
    """An embedded Tansu broker on a free 127.0.0.1 port (stop it with `.stop()`)."""
    broker = EmbeddedBroker(log_path=log_path, startup_timeout_s=30.0)
    broker.start()
    return broker


def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create topics with explicit retention and cleanup policy (Tansu's DescribeConfigs
    returns only the configs set at creation, and some clients need them)."""
    configs = {"retention.ms": str(RETENTION_MS), "cleanup.policy": "delete"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ioc-bench-admin")
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs) for name in names])
    finally:
        admin.close()


def producer(bootstrap: str, linger_ms: int = 20) -> Producer:
    """A librdkafka producer that partitions keys as Java and aiokafka clients do."""
    return Producer({
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
    })


class _Delivery:
    def __init__(self) -> None:
        self.ok = 0
        self.failed: list[str] = []

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.ok += 1
        elif len(self.failed) < 5:
            self.failed.append(str(error))


def preload(bootstrap: str, files: dict[str, Path], topics: dict[str, str]) -> int:
    """Produce every line of each stream's JSONL file to its raw topic, keyed by source_id;
    returns the number of messages the broker acknowledged (raises if any failed)."""
    out = producer(bootstrap)
    delivery = _Delivery()
    sent = 0
    for stream, path in files.items():
        with path.open("rb") as lines:
            for line in lines:
                value = line.rstrip(b"\n")
                key = str(orjson.loads(value)["source_id"]).encode()
                while True:
                    try:
                        out.produce(topics[stream], value=value, key=key, on_delivery=delivery)
                        break
                    except BufferError:  # local queue full: let deliveries drain
                        out.poll(0.05)
                sent += 1
                if sent % 10_000 == 0:
                    out.poll(0)
    out.flush(120)
    if delivery.failed or delivery.ok != sent:
        raise RuntimeError(f"preload: {delivery.ok:,} of {sent:,} messages acknowledged; "
                           f"errors: {delivery.failed}")
    return delivery.ok


def alerts_consumer(bootstrap: str, topic: str, partitions: int) -> Consumer:
    """A consumer of `topic` from its beginning, assigned (no group join, which the embedded
    broker holds for session_timeout/2) and with a 10 ms fetch wait (Tansu answers a waiting
    fetch only when the wait is over, so the wait adds to every measured latency)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "ioc-bench-alerts",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer
