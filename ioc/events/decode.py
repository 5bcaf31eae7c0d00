"""Turn raw event payloads into validated plain dicts, or raise InvalidEvent.

The returned dict has every declared field of the stream (None when absent), the
unknown extra fields as sent, and `ts` as float epoch seconds.

JSON bytes are first decoded in one msgspec pass (ioc.events.fastpath); whatever that pass is
not sure of, text and dicts are parsed with orjson and validated by the pydantic models of
ioc.events.schemas, whose errors are the reasons below. Both give the same event.

>>> ev = decode("press", b'{"source_id": "huengaynay.vn", "ts": "2025-10-27T08:00:00+07:00"}')
>>> ev["ts"], ev["topics"], ev["sentiment"]
(1761526800.0, [], None)
>>> decode("press", b'{"source_id": "x", "ts": 1, "sentiment": 1.7}')
Traceback (most recent call last):
    ...
ioc.events.exceptions.InvalidEvent: field 'sentiment': 1.7 is above the maximum 1 (allowed: -1..1)
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from ioc.events.declared import EventSchemas
from ioc.events.exceptions import InvalidEvent
from ioc.events.fastpath import Decode, fast_decoder
from ioc.events.schemas import SCHEMAS, STREAMS, BaseEvent, field_bounds

__all__ = ["MAX_EVENT_BYTES", "decode", "decode_batch"]

MAX_EVENT_BYTES = 1_000_000

_Bounds = dict[str, tuple[float | None, float | None]]
_Validate = Callable[[Any], Any]
_BOUNDS: dict[str, _Bounds] = {name: field_bounds(model) for name, model in SCHEMAS.items()}

_MAX_SHOWN = 60
_repr = reprlib.Repr()
# reprlib bounds the work for huge containers; the final cut keeps reasons one line long.
_repr.maxstring = _MAX_SHOWN
_repr.maxother = _MAX_SHOWN
_repr.maxlist = _repr.maxdict = _repr.maxtuple = 8
_repr.maxlevel = 3

_TYPE_WORDS = {
    "float_type": "is not a number",
    "int_type": "is not an integer",
    "string_type": "is not a string",
    "bool_type": "is not true or false",
    "list_type": "is not a list",
    "finite_number": "is not a finite number",
    "ip_address": "is not an IPv4 or IPv6 address",
}

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _show(value: Any) -> str:
    """Short display of a bad value, JSON spelling for the JSON-only constants."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        # Cut before repr so a megabyte string is never copied whole.
        return repr(value) if len(value) <= _MAX_SHOWN - 2 else repr(value[: _MAX_SHOWN - 5]) + "..."
    text = _repr.repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _num(x: float) -> str:
    return str(int(x)) if x.is_integer() else str(x)


def _allowed(bounds: tuple[float | None, float | None] | None) -> str:
    if bounds is None:
        return ""
    lo, hi = bounds
    if lo is not None and hi is not None:
        return f" (allowed: {_num(lo)}..{_num(hi)})"
    if lo is not None:
        return f" (allowed: >= {_num(lo)})"
    return f" (allowed: <= {_num(hi)})" if hi is not None else ""


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _explain(exc: ValidationError, bounds: _Bounds) -> InvalidEvent:
    """One sentence and code for the first error (pydantic reports them in field order)."""
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    loc = err["loc"]
    name = _field_name(loc)
    ctx = err.get("ctx") or {}
    shown = _show(err.get("input"))
    if kind == "missing":
        return InvalidEvent(f"missing required field '{name}'", "missing_field")
    if kind == "bad_ts":
        return InvalidEvent(f"field 'ts': {shown} {ctx.get('tail', 'is not a valid time')}", "bad_ts")
    if kind in ("greater_than_equal", "less_than_equal"):
        side, limit = ("below the minimum", ctx["ge"]) if "ge" in ctx else ("above the maximum", ctx["le"])
        allowed = _allowed(bounds.get(str(loc[0])) if loc else None)
        return InvalidEvent(
            f"field '{name}': {shown} is {side} {_num(float(limit))}{allowed}", "out_of_range"
        )
    if kind == "literal_error":
        return InvalidEvent(f"field '{name}': {shown} is not one of {ctx.get('expected')}", "out_of_range")
    if kind == "string_too_short":
        # A blank required string carries no information, the same as leaving it out.
        return InvalidEvent(f"field '{name}' is empty (a non-empty string is required)", "missing_field")
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return InvalidEvent(f"field '{name}': {shown} is longer than {limit} characters", "out_of_range")
    if kind == "invalid_key":
        return InvalidEvent(f"field name {shown} is not a string", "wrong_type")
    words = _TYPE_WORDS.get(kind)
    if words is None:
        words = f"is invalid ({err['msg']})"
    return InvalidEvent(f"field '{name}': {shown} {words}", "wrong_type")


def _encoding_error(raw: bytes | bytearray | memoryview | str) -> InvalidEvent | None:
    """The bad_encoding error if the text is not valid UTF-8, else None (only on the error path)."""
    try:
        if isinstance(raw, str):
            raw.encode("utf-8")
        else:
            bytes(raw).decode("utf-8")
    except UnicodeEncodeError as exc:
        return InvalidEvent(
            f"not valid UTF-8: text has a lone surrogate at index {exc.start}", "bad_encoding"
        )
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start]
        return InvalidEvent(
            f"not valid UTF-8: byte {bad:#04x} at offset {exc.start} ({exc.reason})", "bad_encoding"
        )
    return None


def _too_large(size: int, limit: int) -> InvalidEvent:
    return InvalidEvent(f"event is {size} bytes, above the limit of {limit} bytes", "too_large")


def _parse(raw: object, limit: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """The JSON object in a payload (at most `limit` bytes), or InvalidEvent."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > limit:
            raise _too_large(len(raw), limit)
    elif isinstance(raw, str):
        # A char is 1..4 UTF-8 bytes, so only long-ish text needs an exact count.
        if len(raw) * 4 > limit:
            size = len(raw.encode("utf-8", "surrogatepass"))
            if size > limit:
                raise _too_large(size, limit)
    elif isinstance(raw, memoryview):
        if raw.nbytes > limit:
            raise _too_large(raw.nbytes, limit)
    else:
        raise InvalidEvent(
            f"not a JSON object: got a Python {type(raw).__name__}, expected JSON text or a dict",
            "not_object",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise (
            _encoding_error(raw)
            or InvalidEvent(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "bad_json")
        ) from None
    if not isinstance(obj, dict):
        kind = "null" if obj is None else _JSON_KINDS.get(type(obj), type(obj).__name__)
        raise InvalidEvent(f"not a JSON object: got {kind}", "not_object")
    return obj


def _resolve(stream: str, schemas: EventSchemas | None = None) -> tuple[_Validate, _Bounds, Decode]:
    models = SCHEMAS if schemas is None else schemas.models
    model = models.get(stream) if isinstance(stream, str) else None
    if model is None:
        raise InvalidEvent(f"unknown stream {stream!r} (known: {', '.join(STREAMS)})", "unknown_stream")
    if model is SCHEMAS[stream]:
        # The bound validate_python skips BaseModel.model_validate's per-call overhead.
        return model.__pydantic_validator__.validate_python, _BOUNDS[stream], fast_decoder(stream)
    # A model with declared fields (ioc.events.declared): its own bounds and fast path.
    return model.__pydantic_validator__.validate_python, _model_bounds(model), fast_decoder(stream, model)


@functools.cache
def _model_bounds(model: type[BaseEvent]) -> _Bounds:
    return field_bounds(model)


def _decode(validate: _Validate, bounds: _Bounds, fast: Decode, raw: object, max_bytes: int) -> dict[str, Any]:
    # Bytes go through the fast path first (ioc.events.fastpath); anything it is not sure of,
    # text and a caller's dict are parsed and validated by the model, which says why not.
    if type(raw) is bytes and len(raw) <= max_bytes:
        event = fast(raw)
        if event is not None:
            return event
    return _validate(validate, bounds, _parse(raw, max_bytes))


def _validate(validate: _Validate, bounds: _Bounds, obj: dict[str, Any]) -> dict[str, Any]:
    try:
        event = validate(obj)
    except ValidationError as exc:
        raise _explain(exc, bounds) from None
    # __dict__ holds exactly the declared fields; copying it beats model_dump() by ~10x.
    out = dict(event.__dict__)
    extra = event.__pydantic_extra__
    if extra:
        out.update(extra)
    return out


def decode(stream: str, raw: bytes | str | dict[str, Any], *, max_bytes: int = MAX_EVENT_BYTES,
           schemas: EventSchemas | None = None) -> dict[str, Any]:
    """Validated event dict of one payload (JSON bytes/text or an already parsed dict).

    Raises InvalidEvent (with `reason` and `code`) for any problem, including an unknown stream,
    and a payload over `max_bytes` (code `too_large`, not parsed). `schemas`: the streams' models
    with a deployment's declared fields (ioc.events.declared; default: the built-in ones).
    """
    validate, bounds, fast = _resolve(stream, schemas)
    return _decode(validate, bounds, fast, raw, max_bytes)


def decode_batch(
    stream: str, raws: Sequence[bytes | str | dict[str, Any]], *, max_bytes: int = MAX_EVENT_BYTES,
    schemas: EventSchemas | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, InvalidEvent]]]:
    """Decode many payloads of one stream: (good events in order, [(index, error), ...]).

    A bad event never stops the batch; only an unknown stream raises InvalidEvent,
    since then no event of the batch can be decoded. `max_bytes`: see `decode`
    (the worker passes `limits.event_bytes`), `schemas`: see `decode`.
    """
    validate, bounds, fast = _resolve(stream, schemas)
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, InvalidEvent]] = []
    append_good = good.append
    for index, raw in enumerate(raws):
        try:
            append_good(_decode(validate, bounds, fast, raw, max_bytes))
        except InvalidEvent as exc:
            bad.append((index, exc))
    return good, bad
