"""Kafka's default partitioner (murmur2, as the Java client, kafka-python and aiokafka use),
so that the runtime and the backtest agree with producers on which partition holds a key.

>>> partition_of(b"ta-trach", 4)
2

librdkafka (confluent-kafka) producers must set `partitioner: murmur2_random` to agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["murmur2", "partition_of", "key_bytes", "KeyPartitioner"]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (seed 0x9747b28c), as a signed 32-bit value like the Java client's."""
    length = len(data)
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def key_bytes(values: Sequence[Any]) -> bytes:
    """A re-keyed record's key: the text of a one-field key, else its values as JSON."""
    if len(values) == 1 and isinstance(values[0], str):
        return values[0].encode("utf-8")
    return orjson.dumps(list(values))


class KeyPartitioner:
    """`partition_of` with a bounded cache (keys repeat: sensors, addresses, outlets)."""

    __slots__ = ("partitions", "_cache", "_limit")

    def __init__(self, partitions: int, limit: int = 20_000) -> None:
        self.partitions = partitions
        self._cache: dict[Any, int] = {}
        self._limit = limit

    def __call__(self, values: tuple[Any, ...]) -> int:
        cached = self._cache.get(values)
        if cached is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            cached = self._cache[values] = partition_of(key_bytes(values), self.partitions)
        return cached
