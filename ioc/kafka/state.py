"""Checkpoints on `ioc.state`: save a shard's checkpoint, load the latest of some shards.

>>> store = CheckpointStore(producer, "ioc.state", consumer_factory)     # doctest: +SKIP
>>> await store.save("raw.cyber/2", data)
>>> await store.load(["raw.cyber/2"])
{'raw.cyber/2': b'IOC1...'}

Records (one partition, compacted):

* chunks of a checkpoint, key `<shard>@<seq>#<i>`, value up to 512 KB of it (Kafka's default
  record limit is 1 MB; a shard's state may be larger);
* then its commit, key `<shard>`, value `{"seq", "chunks", "bytes", "at"}`: a checkpoint
  counts only once committed, so a crash while writing one leaves the previous in force;
* tombstones for the previous checkpoint's chunks (compaction then drops them);
* fences, key `!fence`: a load writes one and reads up to it. That is how it knows it has
  read everything written before it, without trusting the broker's end offset (the
  embedded broker reports the first offset of the last record batch + 1, so a reader that
  stops there misses the tail of the last batch).

A revoked shard is saved before the rebalance completes, and Kafka calls every member's
revocation before any member's assignment, so a new owner's fence comes after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from ioc.exceptions import IocError

__all__ = ["CheckpointStore", "StateError", "CHUNK_BYTES"]

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
FENCE = b"!fence"


class StateError(IocError):
    """Checkpoints cannot be read or written."""


class CheckpointStore:
    """Save and load shard checkpoints on one partition of a compacted topic.

    `producer`: an aiokafka producer (started); `reader`: makes a started aiokafka consumer
    assigned to partition 0 of `topic`, positioned at its beginning (closed by the store)."""

    def __init__(
        self, producer: Any, topic: str, reader: Callable[[], Awaitable[Any]], *, timeout_s: float = 60.0,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.reader = reader
        self.timeout_s = timeout_s
        # Chunks stay under the worker's record limit (limits.record_bytes) whatever it is.
        self.chunk_bytes = max(1024, min(CHUNK_BYTES, chunk_bytes))
        self._chunks: dict[str, tuple[str, int]] = {}  # shard -> (seq, chunks) of its saved checkpoint

    async def save(self, shard: str, data: bytes) -> None:
        """Write a checkpoint and wait until the broker has all of it."""
        seq = f"{time.time_ns():x}{uuid.uuid4().hex[:6]}"
        size = self.chunk_bytes
        parts = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        sends = [await self._send(f"{shard}@{seq}#{i}", part) for i, part in enumerate(parts)]
        await asyncio.gather(*sends)
        commit = orjson.dumps({"seq": seq, "chunks": len(parts), "bytes": len(data), "at": time.time()})
        await (await self._send(shard, commit))
        previous = self._chunks.get(shard)
        self._chunks[shard] = (seq, len(parts))
        if previous is not None:
            old_seq, old_count = previous
            await asyncio.gather(*[await self._send(f"{shard}@{old_seq}#{i}", None) for i in range(old_count)])

    async def _send(self, key: str, value: bytes | None) -> Any:
        return await self.producer.send(self.topic, key=key.encode("utf-8"), value=value, partition=0)

    async def load(self, shards: Iterable[str]) -> dict[str, bytes]:
        """The latest committed checkpoint of each of `shards` that has one."""
        wanted = set(shards)
        if not wanted:
            return {}
        token = uuid.uuid4().hex.encode()
        deadline = time.monotonic() + self.timeout_s
        await self._fence(token, deadline)
        pending: dict[str, dict[str, dict[int, bytes]]] = {}
        committed: dict[str, tuple[str, int, dict[int, bytes]]] = {}
        consumer = await self.reader()
        try:
            found = False
            while not found:
                if time.monotonic() > deadline:
                    raise StateError(f"could not read {self.topic} up to a fence within {self.timeout_s:g} s")
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.key == FENCE:
                            found = found or record.value == token
                            continue
                        if not found:
                            self._take(record.key.decode("utf-8"), record.value, wanted, pending, committed)
        finally:
            await consumer.stop()
        out = {}
        for shard, (seq, count, parts) in committed.items():
            if len(parts) != count:
                log.error("checkpoint %s of %s lacks %d of its %d chunks: starting it afresh",
                          seq, shard, count - len(parts), count)
                continue
            out[shard] = b"".join(parts[i] for i in range(count))
            self._chunks[shard] = (seq, count)
        return out

    async def _fence(self, token: bytes, deadline: float) -> None:
        """Write the fence, trying again quickly until `deadline`. An embedded broker restarted
        under the worker refuses the first writes to a recreated topic with an unknown error (it
        kept the records the producer retried into the topic before it was recreated, and
        counts past them one refused write at a time), so a few quick retries get through."""
        while True:
            try:
                await (await self.producer.send(self.topic, key=FENCE, value=token, partition=0))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried until the deadline, then said
                if time.monotonic() > deadline:
                    raise StateError(f"could not write a fence to {self.topic} within {self.timeout_s:g} s "
                                     f"({type(exc).__name__}: {exc})") from None
                await asyncio.sleep(0.1)

    @staticmethod
    def _take(
        key: str, value: bytes | None, wanted: set[str],
        pending: dict[str, dict[str, dict[int, bytes]]], committed: dict[str, tuple[str, int, dict[int, bytes]]],
    ) -> None:
        if "@" in key:
            shard, rest = key.split("@", 1)
            if shard not in wanted or value is None:
                return
            seq, _, index = rest.partition("#")
            pending.setdefault(shard, {}).setdefault(seq, {})[int(index)] = value
            return
        if key not in wanted:
            return
        if value is None:
            committed.pop(key, None)
            return
        commit = orjson.loads(value)
        seq = commit["seq"]
        parts = pending.get(key, {}).pop(seq, {})
        pending.pop(key, None)
        committed[key] = (seq, int(commit["chunks"]), parts)
