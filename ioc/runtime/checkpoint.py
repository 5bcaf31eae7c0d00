"""Checkpoints: a shard's snapshot as compact, versioned bytes, and back.

>>> decode_checkpoint(encode_checkpoint({"shard": "raw.cyber/0", "offset": 12}))["offset"]
12

Format: the magic `IOC1`, then zlib-compressed JSON (orjson). The JSON holds the shard's
snapshot (see ioc.runtime.shards): its engine state, the input offset it covers, and for a
re-keyed shard its sources and buffer. A snapshot of another format version is refused, so
that a worker never restores state it does not understand (it replays from the start instead).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson

from ioc.exceptions import IocError

__all__ = ["CheckpointError", "encode_checkpoint", "encode_checkpoint_async", "decode_checkpoint", "MAGIC"]

MAGIC = b"IOC1"


class CheckpointError(IocError):
    """A checkpoint cannot be read."""


def _serialise(snapshot: dict[str, Any]) -> bytes:
    return orjson.dumps(snapshot, option=orjson.OPT_NON_STR_KEYS)


def _compress(raw: bytes) -> bytes:
    return MAGIC + zlib.compress(raw, 1)


def encode_checkpoint(snapshot: dict[str, Any]) -> bytes:
    return _compress(_serialise(snapshot))


async def encode_checkpoint_async(snapshot: dict[str, Any]) -> bytes:
    """`encode_checkpoint`, compressing in a thread: the snapshot is serialised at once (it holds
    the live state), the slower compression leaves the event loop free."""
    return await asyncio.get_running_loop().run_in_executor(None, _compress, _serialise(snapshot))


def decode_checkpoint(raw: bytes) -> dict[str, Any]:
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"not a checkpoint of this version (starts with {raw[:4]!r}, expected {MAGIC!r})")
    try:
        data = orjson.loads(zlib.decompress(raw[len(MAGIC):]))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint is damaged: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError("checkpoint is not a mapping")
    return data
