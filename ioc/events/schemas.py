"""Pydantic models of the five event streams (fields and ranges from docs/domain.md).

Every model shares `BaseEvent` (`source_id`, `ts`, `id`). Unknown fields are kept as
extras so analysts can use them in rules. Typing is strict: a number field takes JSON
numbers only (ints are fine for floats), never strings such as "12.5" or booleans.

>>> ev = ReservoirEvent.model_validate({"source_id": "kim-long", "ts": 1761526800, "level_m": 2.4})
>>> ev.ts, ev.level_m
(1761526800.0, 2.4)
>>> sorted(stream_fields("reservoir"))[:3]
['gates_open', 'id', 'inflow_m3s']

Ranges are physical plausibility limits, deliberately wider than the typical values in
docs/domain.md: an extreme but real reading must reach the rules, not the dead-letter topic.
"""

from __future__ import annotations

import functools
import ipaddress
import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from ioc.events.exceptions import InvalidEvent
from ioc.timeutil import parse_ts

__all__ = [
    "BaseEvent",
    "CameraEvent",
    "ReservoirEvent",
    "VesselEvent",
    "CyberEvent",
    "PressEvent",
    "STREAMS",
    "SCHEMAS",
    "CAMERA_EVENT_TYPES",
    "MAX_TS",
    "stream_fields",
    "field_bounds",
    "base_type",
]

# 9999-12-31T23:59:59Z: anything later cannot be formatted back by datetime, and a
# value that large is a unit mistake, not an event time.
MAX_TS = 253402300799.0

CAMERA_EVENT_TYPES: tuple[str, ...] = (
    "red_light",
    "no_helmet",
    "wrong_lane",
    "wrong_way",
    "illegal_parking",
    "speeding",
    "crowd",
    "fire_smoke",
    "road_flooding",
    "plate_watchlist",
    "heartbeat",
)

SourceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Lat = Annotated[float, Ge(-90), Le(90)]
Lon = Annotated[float, Ge(-180), Le(180)]
NonNegFloat = Annotated[float, Ge(0)]
NonNegInt = Annotated[int, Ge(0)]
CameraEventType = Literal[
    "red_light",
    "no_helmet",
    "wrong_lane",
    "wrong_way",
    "illegal_parking",
    "speeding",
    "crowd",
    "fire_smoke",
    "road_flooding",
    "plate_watchlist",
    "heartbeat",
]


def _ts_error(tail: str) -> PydanticCustomError:
    # A custom error type lets the decoder map every ts failure to the "bad_ts" code
    # and print the (truncated) value itself instead of parse_ts's full repr.
    return PydanticCustomError("bad_ts", "{tail}", {"tail": tail})


def _to_epoch(value: object) -> float:
    """Epoch seconds of a `ts` value, or a PydanticCustomError saying what is wrong."""
    try:
        seconds = parse_ts(value)
    except ValueError as exc:
        if isinstance(value, str):
            tail = (
                "has no UTC offset (add Z or +07:00)"
                if "offset" in str(exc)
                else "is not RFC 3339 time (e.g. 2025-10-27T08:00:00+07:00)"
            )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tail = "is not a valid epoch time (needs non-negative seconds or milliseconds)"
        else:
            tail = "is not a time (expected RFC 3339 text or epoch seconds/milliseconds)"
        raise _ts_error(tail) from None
    except OverflowError:
        # float() of a Python int beyond 1e308; only reachable with dict input.
        raise _ts_error("is not a valid epoch time (too large)") from None
    if not 0.0 <= seconds <= MAX_TS:
        raise _ts_error("is outside the years 1970..9999")
    return seconds


class BaseEvent(BaseModel):
    """Fields common to every stream."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    source_id: SourceId
    ts: float
    id: str | None = None

    @field_validator("ts", mode="plain")
    @classmethod
    def _parse_ts(cls, value: object) -> float:
        return _to_epoch(value)


class ReservoirEvent(BaseEvent):
    """Dam sensors and downstream gauges; gauges send `level_m` only. A dam's operator also
    reports its notices to downstream (`event_type: spill_notice`, with the level at the time:
    docs/domain.md §1, sirens and river bans before spilling); readings leave `event_type` out."""

    # Below-datum gauge readings exist, hence the small negative floor.
    level_m: Annotated[float, Ge(-10), Le(1000)]
    inflow_m3s: Annotated[float, Ge(0), Le(20000)] | None = None
    turbine_m3s: NonNegFloat | None = None
    spill_m3s: NonNegFloat | None = None
    gates_open: NonNegInt | None = None
    rain_mm_1h: Annotated[float, Ge(0), Le(500)] | None = None
    piezo_kpa: NonNegFloat | None = None
    seepage_lps: NonNegFloat | None = None
    turbidity_ntu: NonNegFloat | None = None
    event_type: Literal["spill_notice"] | None = None


class VesselEvent(BaseEvent):
    """VMS position of a fishing vessel; `source_id` is the registration number."""

    lat: Lat
    lon: Lon
    length_m: Annotated[float, Ge(0), Le(200)] | None = None
    mmsi: str | None = None
    sog_kn: Annotated[float, Ge(0), Le(60)] | None = None
    cog_deg: Annotated[float, Ge(0), Le(360)] | None = None
    device_status: str | None = None


class CameraEvent(BaseEvent):
    """AI camera detection or heartbeat."""

    event_type: CameraEventType
    plate: str | None = None
    vehicle_class: str | None = None
    speed_kmh: Annotated[float, Ge(0), Le(400)] | None = None
    score: Annotated[float, Ge(0), Le(1)] | None = None
    count: NonNegInt | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    district: str | None = None


_IP_CACHED_CHARS = 64  # longer text is no address: checked, never cached (the cache stays small)


def _parses_as_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # ~1 MB at most: memory must follow active keys
def _is_ip(value: str) -> bool:
    """Whether `value` is an IPv4 or IPv6 address (`ipaddress.ip_address` takes it). Cached: the
    same sources and targets recur, and parsing an address was 5 % of a busy worker's time.

    >>> _is_ip("203.0.113.7"), _is_ip("2001:db8::1"), _is_ip("203.0.113.256")
    (True, True, False)
    """
    return _parses_as_ip(value)


class CyberEvent(BaseEvent):
    """Security sensor event, ECS-like field names flattened with underscores."""

    event_action: str
    event_outcome: Literal["success", "failure", "unknown"] | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    dst_port: Annotated[int, Ge(0), Le(65535)] | None = None
    user: str | None = None
    host: str | None = None
    url: str | None = None
    http_method: str | None = None
    http_status: Annotated[int, Ge(100), Le(599)] | None = None
    user_agent: str | None = None
    signature: str | None = None

    @field_validator("src_ip", "dst_ip")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        # Kept as the sender's text (rules group by it); only checked for shape.
        if value is not None:
            if not (_is_ip(value) if len(value) <= _IP_CACHED_CHARS else _parses_as_ip(value)):
                raise PydanticCustomError("ip_address", "is not an IPv4 or IPv6 address")
        return value


class PressEvent(BaseEvent):
    """Press article seen by the monitoring crawler."""

    url: str | None = None
    title: str | None = None
    body: str | None = None
    lang: str | None = None
    topics: list[str] = Field(default_factory=list)
    sentiment: Annotated[float, Ge(-1), Le(1)] | None = None
    engagement: NonNegFloat | None = None
    is_official: bool | None = None

    @field_validator("topics", mode="before")
    @classmethod
    def _null_topics(cls, value: Any) -> Any:
        # Crawlers send null for "no topics"; treat it like the default.
        return [] if value is None else value


STREAMS: tuple[str, ...] = ("camera", "reservoir", "vessel", "cyber", "press")

SCHEMAS: dict[str, type[BaseEvent]] = {
    "camera": CameraEvent,
    "reservoir": ReservoirEvent,
    "vessel": VesselEvent,
    "cyber": CyberEvent,
    "press": PressEvent,
}

_FIELDS: dict[str, frozenset[str]] = {name: frozenset(model.model_fields) for name, model in SCHEMAS.items()}


def _unknown_stream(stream: object) -> InvalidEvent:
    return InvalidEvent(f"unknown stream {stream!r} (known: {', '.join(STREAMS)})", "unknown_stream")


def stream_fields(stream: str) -> frozenset[str]:
    """Declared field names of a stream (common fields included); raises InvalidEvent if unknown."""
    try:
        return _FIELDS[stream]
    except (KeyError, TypeError):
        raise _unknown_stream(stream) from None


def base_type(annotation: Any) -> tuple[Any, bool]:
    """A field's type without `None` and `Annotated`, and whether None is allowed.

    >>> base_type(ReservoirEvent.model_fields["inflow_m3s"].annotation)
    (<class 'float'>, True)
    """
    optional = False
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, optional


def _annotation_bounds(annotation: Any) -> tuple[float | None, float | None]:
    lo: float | None = None
    hi: float | None = None
    for arg in get_args(annotation):
        if isinstance(arg, Ge):
            lo = float(arg.ge)  # type: ignore[arg-type]
        elif isinstance(arg, Le):
            hi = float(arg.le)  # type: ignore[arg-type]
        elif get_args(arg):
            sub_lo, sub_hi = _annotation_bounds(arg)
            lo = sub_lo if sub_lo is not None else lo
            hi = sub_hi if sub_hi is not None else hi
    return lo, hi


def field_bounds(model: type[BaseModel]) -> dict[str, tuple[float | None, float | None]]:
    """(min, max) of each numeric field of a model that has a bound; None means open.

    >>> field_bounds(PressEvent)["sentiment"]
    (-1.0, 1.0)
    """
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for name, info in model.model_fields.items():
        lo, hi = _annotation_bounds(info.rebuild_annotation())
        for meta in info.metadata:
            if isinstance(meta, Ge):
                lo = float(meta.ge)  # type: ignore[arg-type]
            elif isinstance(meta, Le):
                hi = float(meta.le)  # type: ignore[arg-type]
        if lo is not None or hi is not None:
            bounds[name] = (lo, hi)
    return bounds
