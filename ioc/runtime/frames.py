"""Frames: what a raw shard sends a partition of a key space (`ioc.rekey.<space>`).

A frame carries the events of one source partition for one space partition, in the
source's order, with the source's watermark after them and whether the source is idle.
A frame without events is a watermark marker. The space partition's watermark is the
minimum over its sources (see ioc.runtime.shards.RekeyShard), so each source keeps every
partition of the spaces it feeds informed, events or not.

>>> frame = Frame("cyber", 2, 1761526800.0, False, [{"ts": 1761526800.0, "_off": 7}])
>>> decode_frame(encode_frame(frame)) == frame
True

Events are the validated event dicts (plus `_off`, the source offset); the encoding is
JSON (orjson), which gives back exactly the values it was given (numbers, text, lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ioc.events.exceptions import InvalidEvent

__all__ = ["Frame", "encode_frame", "decode_frame", "FRAME_VERSION"]

FRAME_VERSION = 1
NO_WATERMARK = float("-inf")


@dataclass
class Frame:
    stream: str
    partition: int
    watermark: float           # -inf: the source has no watermark yet
    idle: bool
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> tuple[str, int]:
        return (self.stream, self.partition)


def encode_frame(frame: Frame) -> bytes:
    watermark = None if frame.watermark == NO_WATERMARK else frame.watermark
    return orjson.dumps({"v": FRAME_VERSION, "s": frame.stream, "p": frame.partition, "w": watermark,
                         "i": frame.idle, "e": frame.events})


def decode_frame(raw: bytes) -> Frame:
    """The frame in `raw`; InvalidEvent if it is not one (a record written by someone else)."""
    try:
        data = orjson.loads(raw)
        if data.get("v") != FRAME_VERSION:
            raise InvalidEvent(f"frame version {data.get('v')!r} is not {FRAME_VERSION}", "bad_frame")
        watermark = data["w"]
        return Frame(str(data["s"]), int(data["p"]), NO_WATERMARK if watermark is None else float(watermark),
                     bool(data["i"]), list(data["e"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"not a re-key frame: {type(exc).__name__}: {exc}", "bad_frame") from None
