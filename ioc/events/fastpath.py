"""The decoder's fast path: bytes to a validated event in one msgspec pass, or "ask pydantic".

The pydantic models of ioc.events.schemas say what an event is, and their errors are the
dead-letter reasons users read. Parsing JSON into a dict, building a model from it and copying
the model back into a dict cost most of the decoding time, so the decoder first decodes the
bytes with a msgspec struct derived from the same model (`fast_decoder`): types, ranges and
choices are checked in C while parsing, and the few checks left (`ts`, the trimmed
`source_id`, IP addresses) are cheap. It answers None, having decided nothing, whenever it is
not sure: an event it cannot read (bad JSON, a wrong type, a value out of range, a field it
does not know, a `ts` in another form). The decoder then parses the bytes with orjson and
validates the dict with pydantic, which gives the verdict and the reason exactly as before.

So the fast path never decides that an event is bad, and never accepts one the model would
reject or makes a different event from it: tests/unit/events/test_fastpath.py checks that over
random payloads, good and bad.

>>> decode = fast_decoder("reservoir")
>>> decode(b'{"source_id": "kim-long", "ts": "2025-10-27T08:00:00+07:00", "level_m": 2}')["level_m"]
2.0
>>> decode(b'{"source_id": "kim-long", "ts": 1, "level_m": 1001.0}') is None   # the model decides
True
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
from annotated_types import Ge, Le
from pydantic import BaseModel

from ioc.events.schemas import _IP_CACHED_CHARS, MAX_TS, SCHEMAS, _is_ip, base_type, field_bounds
from ioc.timeutil import parse_ts

__all__ = ["fast_decoder", "fast_ts", "EXTRAS"]

# Fields outside the models that events commonly carry (the simulators name their stream). Any
# other extra field sends the event through the model, which keeps it as sent.
EXTRAS: tuple[str, ...] = ("stream",)

# Integers the fast path takes: int64, within what orjson returns as int (past -2**63 and
# 2**64 - 1 it makes a float, which the model refuses); a larger one goes to the model.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1

# The schema's validators the fast path knows (`_verify` refuses a model with any other).
_KNOWN_VALIDATORS = {"_parse_ts", "_check_ip", "_null_topics"}

Decode = Callable[[bytes | bytearray | memoryview], "dict[str, Any] | None"]
_fromisoformat = datetime.fromisoformat


def fast_ts(value: object) -> float | None:
    """Epoch seconds of a `ts` as sensors send it, exactly as parse_ts gives them, or None
    (then parse_ts decides): RFC 3339 text with `T`, ending in `Z` or `±hh:mm`, and numbers.

    >>> fast_ts("2025-10-26T17:00:00.845Z"), fast_ts("2025-10-27T08:00:00+07:00"), fast_ts("2025-10-27 08:00:00Z")
    (1761498000.845, 1761526800.0, None)
    """
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        # parse_ts strips blanks, swaps Z for +00:00 and calls fromisoformat, which (3.11) reads
        # `Z` itself: text with no blanks around it (it starts with a digit of the year and ends
        # in Z or a digit of the offset) gives the same datetime.
        if len(text) < 20 or text[10] != "T" or not ("0" <= text[0] <= "9"):
            return None
        if text[-1] != "Z" and text[-6] not in "+-":
            return None
        try:
            moment = _fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp()
    elif kind is float or kind is int:
        try:
            seconds = parse_ts(value)
        except (ValueError, OverflowError):
            return None
    else:
        return None
    return seconds if 0.0 <= seconds <= MAX_TS else None


def _struct_type(stream: str, name: str, info: Any, bounds: tuple[float | None, float | None] | None) -> Any:
    """The msgspec type of one model field: what it accepts unchanged, checked while parsing."""
    base, optional = base_type(info.annotation)
    lo, hi = bounds if bounds is not None else (None, None)
    kind: Any
    if name == "ts":
        kind = str | int | float  # read by fast_ts
    elif base is float:
        kind = Annotated[float, msgspec.Meta(ge=lo, le=hi)] if bounds else float
    elif base is int:
        lo = _INT_MIN if lo is None else max(int(lo), _INT_MIN)
        hi = _INT_MAX if hi is None else min(int(hi), _INT_MAX)
        kind = Annotated[int, msgspec.Meta(ge=lo, le=hi)]
    elif name == "source_id":
        kind = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]  # trimmed: checked after
    elif base is str or base is bool or get_origin(base) is Literal:
        kind = base
    elif base == list[str]:
        kind = list[str] | None  # null: the model's default (checked after)
    else:  # pragma: no cover - _verify names it first
        raise TypeError(f"{stream}.{name}: no msgspec type for {info.annotation!r}")
    return kind | None if optional else kind


def _verify(stream: str, model: Any) -> None:
    """The fast path knows the schema's validators and constraints by name: a new one must be
    taught here (and to the differential test) before the fast path may run."""
    decorators = model.__pydantic_decorators__
    validators = set(decorators.field_validators)
    if validators - _KNOWN_VALIDATORS or decorators.model_validators or decorators.validators:
        unknown = sorted((validators - _KNOWN_VALIDATORS) | set(decorators.model_validators)
                         | set(decorators.validators))
        raise TypeError(f"{stream}: validators {unknown} have no fast check")
    for name, info in model.model_fields.items():
        for meta in [*info.metadata, *_nested_metadata(info.annotation)]:
            if isinstance(meta, (Ge, Le)):
                continue
            if type(meta).__name__ == "StringConstraints" and name == "source_id":
                continue
            raise TypeError(f"{stream}.{name}: constraint {meta!r} has no fast check")


def _nested_metadata(annotation: Any) -> list[Any]:
    """The Annotated metadata anywhere inside a type (`Annotated[float, Ge(0)] | None`: Ge(0))."""
    found: list[Any] = []
    if get_origin(annotation) is Annotated:
        found += list(getattr(annotation, "__metadata__", ()))
    for arg in get_args(annotation):
        found += _nested_metadata(arg)
    return found


@functools.cache
def fast_decoder(stream: str, model: type[BaseModel] | None = None) -> Decode:
    """The fast path of one stream (of `model`, its schema with declared fields, if given): JSON
    bytes to the validated event dict, or None."""
    model = SCHEMAS[stream] if model is None else model
    _verify(stream, model)
    bounds = field_bounds(model)
    fields: list[Any] = []
    for name, info in model.model_fields.items():
        kind = _struct_type(stream, name, info, bounds.get(name))
        if info.is_required():
            fields.append((name, kind))
        elif info.default_factory is not None:
            factory = typing.cast("Callable[[], Any]", info.default_factory)  # the models' take no data
            fields.append((name, kind, msgspec.field(default_factory=factory)))
        else:
            fields.append((name, kind, info.default))
    fields.extend((name, str, msgspec.UNSET) for name in EXTRAS if name not in model.model_fields)
    struct = msgspec.defstruct(f"{model.__name__}Fast", fields, forbid_unknown_fields=True, kw_only=True)
    decoder = msgspec.json.Decoder(struct)
    asdict = msgspec.structs.asdict
    unset = msgspec.UNSET
    extras = [name for name in EXTRAS if name not in model.model_fields]
    ips = ("src_ip", "dst_ip") if "_check_ip" in model.__pydantic_decorators__.field_validators else ()
    lists = [name for name, info in model.model_fields.items() if info.default_factory is list]

    def decode(raw: bytes | bytearray | memoryview) -> dict[str, Any] | None:
        try:
            event = asdict(decoder.decode(raw))
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
        seconds = fast_ts(event["ts"])
        source = event["source_id"]
        if seconds is None or source[0].isspace() or source[-1].isspace():
            return None  # the model trims source_id (and then checks its length again)
        event["ts"] = seconds
        for name in ips:
            value = event[name]
            if value is not None and (len(value) > _IP_CACHED_CHARS or not _is_ip(value)):
                return None
        for name in lists:
            if event[name] is None:
                event[name] = []
        for name in extras:
            if event[name] is unset:
                del event[name]
        return event

    return decode
