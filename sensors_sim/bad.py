"""Malformed messages for exercising the dead-letter path (`ioc simulate --bad-rate P`).

>>> rng = numpy.random.default_rng(1)
>>> payload, code = corrupt(rng, "reservoir", {"source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0})
>>> code in BAD_KINDS.values()
True

Each corruption says which dead-letter reason (`InvalidEvent.code`) the engine must give it,
so tests can check that every injected message is rejected for the right reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy
import orjson

from ioc.events import MAX_EVENT_BYTES

__all__ = ["BAD_KINDS", "corrupt", "inject_bad"]

# A number field per stream to damage, and a required field to drop.
_NUMBER_FIELD = {"reservoir": "level_m", "vessel": "lat", "camera": "score", "cyber": "dst_port", "press": "sentiment"}
_ABSURD = {"reservoir": ("inflow_m3s", 1e9), "vessel": ("lat", 123.0), "camera": ("score", 7.5),
           "cyber": ("dst_port", 70000), "press": ("sentiment", -9.0)}

# kind -> the dead-letter reason code the engine must give it
BAD_KINDS: dict[str, str] = {
    "broken_json": "bad_json",
    "not_object": "not_object",
    "missing_ts": "missing_field",
    "missing_source": "missing_field",
    "wrong_type": "wrong_type",
    "absurd_value": "out_of_range",
    "bad_ts": "bad_ts",
    "oversized": "too_large",
    "bad_encoding": "bad_encoding",
}


def _broken_json(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    # Cut characters, not bytes: a cut inside a UTF-8 sequence would be an encoding error.
    text = orjson.dumps(dict(event)).decode("utf-8")
    return text[: max(1, int(len(text) * rng.uniform(0.2, 0.9)))].encode("utf-8")


def _not_object(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    return orjson.dumps([dict(event)])


def _without(name: str) -> Callable[[str, Mapping[str, Any], numpy.random.Generator], bytes]:
    def drop(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
        return orjson.dumps({k: v for k, v in event.items() if k != name})

    return drop


def _wrong_type(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    return orjson.dumps({**event, _NUMBER_FIELD[stream]: "n/a"})


def _absurd(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    name, value = _ABSURD[stream]
    return orjson.dumps({**event, name: value})


def _bad_ts(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    return orjson.dumps({**event, "ts": "27/10/2025 08:00"})


def _oversized(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    # Just over the worker's default event limit, and well under what the simulators' producer
    # sends (sensors_sim.publish.MAX_MESSAGE_BYTES): the worker must dead-letter it, not choke.
    return orjson.dumps({**event, "padding": "x" * (MAX_EVENT_BYTES + 1)})


def _bad_encoding(stream: str, event: Mapping[str, Any], rng: numpy.random.Generator) -> bytes:
    # Windows-1258/latin-1 bytes for Vietnamese text: not UTF-8.
    return orjson.dumps(dict(event))[:-1] + b', "note": "' + "Huế lũ".encode("latin-1", "replace") + b'\xff"}'


_MAKERS: dict[str, Callable[[str, Mapping[str, Any], numpy.random.Generator], bytes]] = {
    "broken_json": _broken_json,
    "not_object": _not_object,
    "missing_ts": _without("ts"),
    "missing_source": _without("source_id"),
    "wrong_type": _wrong_type,
    "absurd_value": _absurd,
    "bad_ts": _bad_ts,
    "oversized": _oversized,
    "bad_encoding": _bad_encoding,
}
_KINDS = tuple(_MAKERS)


def corrupt(rng: numpy.random.Generator, stream: str, event: Mapping[str, Any]) -> tuple[bytes, str]:
    """A damaged copy of `event` as raw bytes, and the dead-letter reason it must get."""
    kind = _KINDS[int(rng.integers(len(_KINDS)))]
    return _MAKERS[kind](stream, event, rng), BAD_KINDS[kind]


def inject_bad(
    events: Iterable[Mapping[str, Any]], stream: str, rate: float, seed: int
) -> Iterator[Mapping[str, Any] | bytes]:
    """The events with, after each one, a malformed message with probability `rate` (0..1).
    Good events are yielded unchanged (dicts); bad ones as bytes."""
    if not 0 <= rate <= 1:
        raise ValueError(f"bad rate {rate!r} must be between 0 and 1")
    rng = numpy.random.default_rng(seed + 7919)  # its own stream of randomness: same good events
    for event in events:
        yield event
        if rate and rng.random() < rate:
            yield corrupt(rng, stream, event)[0]
