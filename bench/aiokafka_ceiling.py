"""Ceiling: a plain aiokafka consumer loop over the raw topics (run by bench/runtime.py).

    python bench/aiokafka_ceiling.py '{"bootstrap": "127.0.0.1:9092", "topics": [...], "group": "g", "total": 1000}'

`getmany` with a 10 ms fetch wait, `orjson.loads` of every value, the benchmark's threshold
rule; matches are only counted. Protocol with the harness: bench/_child.py.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from _child import Job, Progress, matches
from aiokafka import AIOKafkaConsumer


async def consume(job: Job) -> None:
    consumer = AIOKafkaConsumer(
        *job.topics,
        bootstrap_servers=job.bootstrap,
        group_id=job.group,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
        session_timeout_ms=job.session_timeout_ms,
        heartbeat_interval_ms=job.session_timeout_ms // 3,
    )
    progress = Progress(job.total)
    await consumer.start()
    try:
        while not progress.finished:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                matched = sum(matches(orjson.loads(record.value), job.threshold) for record in records)
                progress.add(len(records), matched)
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(consume(Job.from_argv(sys.argv[1:])))
