"""Ceiling: a plain confluent-kafka (librdkafka) consumer loop over the raw topics (run by
bench/runtime.py).

    python bench/confluent_ceiling.py '{"bootstrap": "127.0.0.1:9092", "topics": [...], "group": "g", "total": 1000}'

`Consumer.consume(num_messages=1000)` with a 10 ms fetch wait, `orjson.loads` of every value,
the benchmark's threshold rule; matches are only counted. Protocol: bench/_child.py.
"""

from __future__ import annotations

import sys

import orjson
from _child import Job, Progress, matches
from confluent_kafka import Consumer


def consume(job: Job) -> None:
    consumer = Consumer({
        "bootstrap.servers": job.bootstrap,
        "group.id": job.group,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
        "session.timeout.ms": job.session_timeout_ms,
        "heartbeat.interval.ms": job.session_timeout_ms // 3,
    })
    progress = Progress(job.total)
    consumer.subscribe(job.topics)
    try:
        while not progress.finished:
            messages = [m for m in consumer.consume(num_messages=1000, timeout=0.5) if m.error() is None]
            matched = sum(matches(orjson.loads(m.value() or b"null"), job.threshold) for m in messages)
            progress.add(len(messages), matched)
    finally:
        consumer.close()


if __name__ == "__main__":
    consume(Job.from_argv(sys.argv[1:]))
