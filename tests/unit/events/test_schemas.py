"""Schema tests: valid events per stream, range bounds, time formats, strict types, extras."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ioc.events import (
    CAMERA_EVENT_TYPES,
    SCHEMAS,
    STREAMS,
    CameraEvent,
    CyberEvent,
    InvalidEvent,
    PressEvent,
    ReservoirEvent,
    VesselEvent,
    decode,
    field_bounds,
    stream_fields,
)

TS = "2025-10-27T08:00:00+07:00"
TS_EPOCH = 1761526800.0

# The smallest valid event of each stream: only the required fields.
MINIMAL: dict[str, dict[str, Any]] = {
    "camera": {"source_id": "cam-hue-001", "ts": TS, "event_type": "red_light"},
    "reservoir": {"source_id": "kim-long", "ts": TS, "level_m": 2.4},
    "vessel": {"source_id": "TTH-90123-TS", "ts": TS, "lat": 16.6, "lon": 107.7},
    "cyber": {"source_id": "fw-01", "ts": TS, "event_action": "authentication"},
    "press": {"source_id": "huengaynay.vn", "ts": TS},
}

# Every declared field filled with a realistic value.
FULL: dict[str, dict[str, Any]] = {
    "camera": {
        **MINIMAL["camera"],
        "event_type": "crowd",
        "plate": "75A-123.45",
        "vehicle_class": "motorbike",
        "speed_kmh": 42.5,
        "score": 0.93,
        "count": 120,
        "lat": 16.467,
        "lon": 107.59,
        "district": "Phu Xuan",
        "id": "evt-1",
    },
    "reservoir": {
        **MINIMAL["reservoir"],
        "id": "reservoir-evt-1",
        "source_id": "ta-trach",
        "level_m": 44.6,
        "inflow_m3s": 6900,
        "turbine_m3s": 120.0,
        "spill_m3s": 3500.0,
        "gates_open": 5,
        "rain_mm_1h": 48.2,
        "piezo_kpa": 310.0,
        "seepage_lps": 2.5,
        "turbidity_ntu": 15.0,
        "event_type": "spill_notice",
    },
    "vessel": {
        **MINIMAL["vessel"],
        "id": "vessel-evt-1",
        "length_m": 16.5,
        "mmsi": "574123456",
        "sog_kn": 7.5,
        "cog_deg": 270,
        "device_status": "ok",
    },
    "cyber": {
        **MINIMAL["cyber"],
        "id": "cyber-evt-1",
        "event_outcome": "failure",
        "src_ip": "203.0.113.7",
        "dst_ip": "2001:db8::1",
        "dst_port": 22,
        "user": "admin",
        "host": "portal.hue.gov.vn",
        "url": "/login",
        "http_method": "POST",
        "http_status": 401,
        "user_agent": "curl/8.0",
        "signature": "ssh-bruteforce",
    },
    "press": {
        **MINIMAL["press"],
        "id": "press-evt-1",
        "url": "https://huengaynay.vn/a/1",
        "title": "Hồ Tả Trạch xả lũ",
        "body": "Thừa Thiên Huế ...",
        "lang": "vi",
        "topics": ["flood", "dam"],
        "sentiment": -0.6,
        "engagement": 1500,
        "is_official": True,
    },
}

# (stream, field, min, max, is_int); max None means no upper bound.
BOUNDS: list[tuple[str, str, float, float | None, bool]] = [
    ("reservoir", "level_m", -10, 1000, False),
    ("reservoir", "inflow_m3s", 0, 20000, False),
    ("reservoir", "turbine_m3s", 0, None, False),
    ("reservoir", "spill_m3s", 0, None, False),
    ("reservoir", "gates_open", 0, None, True),
    ("reservoir", "rain_mm_1h", 0, 500, False),
    ("reservoir", "piezo_kpa", 0, None, False),
    ("reservoir", "seepage_lps", 0, None, False),
    ("reservoir", "turbidity_ntu", 0, None, False),
    ("vessel", "lat", -90, 90, False),
    ("vessel", "lon", -180, 180, False),
    ("vessel", "length_m", 0, 200, False),
    ("vessel", "sog_kn", 0, 60, False),
    ("vessel", "cog_deg", 0, 360, False),
    ("camera", "speed_kmh", 0, 400, False),
    ("camera", "score", 0, 1, False),
    ("camera", "count", 0, None, True),
    ("camera", "lat", -90, 90, False),
    ("camera", "lon", -180, 180, False),
    ("cyber", "dst_port", 0, 65535, True),
    ("cyber", "http_status", 100, 599, True),
    ("press", "sentiment", -1, 1, False),
    ("press", "engagement", 0, None, False),
]


def _event(stream: str, **fields: Any) -> dict[str, Any]:
    return {**MINIMAL[stream], **fields}


def _reject(stream: str, event: dict[str, Any]) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode(stream, event)
    return info.value


def test_registry_lists_the_five_streams_in_order() -> None:
    assert STREAMS == ("camera", "reservoir", "vessel", "cyber", "press")
    assert SCHEMAS == {
        "camera": CameraEvent,
        "reservoir": ReservoirEvent,
        "vessel": VesselEvent,
        "cyber": CyberEvent,
        "press": PressEvent,
    }


@pytest.mark.parametrize("stream", STREAMS)
def test_minimal_event_is_valid(stream: str) -> None:
    model = SCHEMAS[stream].model_validate(MINIMAL[stream])
    assert model.ts == TS_EPOCH
    assert model.source_id == MINIMAL[stream]["source_id"]
    assert model.id is None


@pytest.mark.parametrize("stream", STREAMS)
def test_full_event_keeps_every_value(stream: str) -> None:
    model = SCHEMAS[stream].model_validate(FULL[stream])
    for name, value in FULL[stream].items():
        expected = TS_EPOCH if name == "ts" else value
        assert getattr(model, name) == expected, name
    assert model.__pydantic_extra__ == {}


@pytest.mark.parametrize("stream", STREAMS)
def test_full_event_covers_every_declared_field(stream: str) -> None:
    # Guards the fixtures: a field added to a schema must get a test value here.
    assert set(FULL[stream]) == stream_fields(stream)


def test_stream_fields_include_common_fields_and_exclude_others() -> None:
    for stream in STREAMS:
        assert {"source_id", "ts", "id"} <= stream_fields(stream)
    assert "level_m" in stream_fields("reservoir")
    assert "level_m" not in stream_fields("vessel")
    assert isinstance(stream_fields("press"), frozenset)


def test_stream_fields_rejects_unknown_stream() -> None:
    with pytest.raises(InvalidEvent) as info:
        stream_fields("weather")
    assert info.value.code == "unknown_stream"
    assert "weather" in info.value.reason


@pytest.mark.parametrize(("stream", "field", "lo", "hi", "is_int"), BOUNDS)
def test_field_bounds_match_declared_ranges(
    stream: str, field: str, lo: float, hi: float | None, is_int: bool
) -> None:
    assert field_bounds(SCHEMAS[stream])[field] == (lo, hi)


@pytest.mark.parametrize(("stream", "field", "lo", "hi", "is_int"), BOUNDS)
def test_range_bounds_are_inclusive(
    stream: str, field: str, lo: float, hi: float | None, is_int: bool
) -> None:
    assert decode(stream, _event(stream, **{field: lo}))[field] == lo
    top = hi if hi is not None else 10**9
    assert decode(stream, _event(stream, **{field: top}))[field] == top


@pytest.mark.parametrize(("stream", "field", "lo", "hi", "is_int"), BOUNDS)
def test_just_below_minimum_is_out_of_range(
    stream: str, field: str, lo: float, hi: float | None, is_int: bool
) -> None:
    below = lo - 1 if is_int else lo - 0.001
    err = _reject(stream, _event(stream, **{field: below}))
    assert err.code == "out_of_range"
    assert f"field '{field}'" in err.reason
    assert "below the minimum" in err.reason


@pytest.mark.parametrize(("stream", "field", "lo", "hi", "is_int"), [b for b in BOUNDS if b[3] is not None])
def test_just_above_maximum_is_out_of_range(
    stream: str, field: str, lo: float, hi: float, is_int: bool
) -> None:
    above = hi + 1 if is_int else hi + 0.001
    err = _reject(stream, _event(stream, **{field: above}))
    assert err.code == "out_of_range"
    assert f"field '{field}'" in err.reason
    assert "above the maximum" in err.reason


def test_out_of_range_reason_shows_value_and_allowed_range() -> None:
    err = _reject("press", _event("press", sentiment=1.7))
    assert err.reason == "field 'sentiment': 1.7 is above the maximum 1 (allowed: -1..1)"
    err = _reject("reservoir", _event("reservoir", spill_m3s=-2.5))
    assert err.reason == "field 'spill_m3s': -2.5 is below the minimum 0 (allowed: >= 0)"


@pytest.mark.parametrize(
    ("stream", "missing"),
    [
        ("camera", "event_type"),
        ("reservoir", "level_m"),
        ("vessel", "lat"),
        ("vessel", "lon"),
        ("cyber", "event_action"),
    ],
)
def test_stream_required_fields(stream: str, missing: str) -> None:
    event = dict(MINIMAL[stream])
    del event[missing]
    err = _reject(stream, event)
    assert err.code == "missing_field"
    assert err.reason == f"missing required field '{missing}'"


@pytest.mark.parametrize("event_type", CAMERA_EVENT_TYPES)
def test_every_camera_event_type_is_accepted(event_type: str) -> None:
    assert decode("camera", _event("camera", event_type=event_type))["event_type"] == event_type


def test_unknown_camera_event_type_is_rejected() -> None:
    err = _reject("camera", _event("camera", event_type="alien"))
    assert err.code == "out_of_range"
    assert "'event_type'" in err.reason and "'alien'" in err.reason and "red_light" in err.reason


def test_event_outcome_values() -> None:
    for outcome in ("success", "failure", "unknown", None):
        assert decode("cyber", _event("cyber", event_outcome=outcome))["event_outcome"] == outcome
    err = _reject("cyber", _event("cyber", event_outcome="ok"))
    assert err.code == "out_of_range"
    assert "event_outcome" in err.reason


@pytest.mark.parametrize("address", ["10.0.0.1", "::1", "2001:db8::8a2e:370:7334", "0.0.0.0"])
def test_ip_addresses_are_kept_as_sent(address: str) -> None:
    event = decode("cyber", _event("cyber", src_ip=address, dst_ip=address))
    assert event["src_ip"] == address
    assert event["dst_ip"] == address


@pytest.mark.parametrize(
    ("field", "address"), [("src_ip", "256.1.1.1"), ("dst_ip", "host.local"), ("src_ip", "")]
)
def test_bad_ip_addresses_are_rejected(field: str, address: str) -> None:
    err = _reject("cyber", _event("cyber", **{field: address}))
    assert err.code == "wrong_type"
    assert f"field '{field}'" in err.reason
    assert "IP" in err.reason


def test_ip_given_as_number_is_wrong_type() -> None:
    err = _reject("cyber", _event("cyber", src_ip=167772161))
    assert err.code == "wrong_type"
    assert "src_ip" in err.reason


# -- time formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2025-10-27T01:00:00Z", TS_EPOCH),
        ("2025-10-27T01:00:00z", TS_EPOCH),
        ("2025-10-27T08:00:00+07:00", TS_EPOCH),
        ("2025-10-26T20:00:00-05:00", TS_EPOCH),
        ("2025-10-27T01:00:00.250Z", TS_EPOCH + 0.25),
        (1761526800, TS_EPOCH),
        (1761526800.5, TS_EPOCH + 0.5),
        (1761526800000, TS_EPOCH),
        (1761526800123, TS_EPOCH + 0.123),
        (0, 0.0),
    ],
)
def test_ts_formats_become_epoch_seconds(ts: object, expected: float) -> None:
    event = decode("press", _event("press", ts=ts))
    assert isinstance(event["ts"], float)
    assert event["ts"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        ("2025-10-27T08:00:00", "RFC 3339"),
        ("2025-10-27T08:00:00.000", "no UTC offset"),
        ("garbage", "RFC 3339"),
        ("", "RFC 3339"),
        ("2025-13-45T99:00:00+07:00", "RFC 3339"),
        (True, "not a time"),
        (False, "not a time"),
        (-1, "epoch"),
        (-0.5, "epoch"),
        (None, "not a time"),
        ([1761526800], "not a time"),
        ({"s": 1}, "not a time"),
        (1e20, "1970..9999"),
        ("1969-12-31T23:59:59Z", "1970..9999"),
    ],
)
def test_bad_ts_is_rejected(ts: object, words: str) -> None:
    err = _reject("press", _event("press", ts=ts))
    assert err.code == "bad_ts"
    assert err.reason.startswith("field 'ts': ")
    assert words in err.reason


def test_bad_ts_reason_truncates_a_huge_value() -> None:
    err = _reject("press", _event("press", ts="x" * 100_000))
    assert err.code == "bad_ts"
    assert len(err.reason) < 200


def test_ts_as_huge_python_int_is_bad_ts_not_overflow() -> None:
    err = _reject("press", _event("press", ts=10**400))
    assert err.code == "bad_ts"


@pytest.mark.parametrize("field", ["source_id", "ts"])
def test_missing_common_field(field: str) -> None:
    event = dict(MINIMAL["camera"])
    del event[field]
    err = _reject("camera", event)
    assert err.code == "missing_field"
    assert err.reason == f"missing required field '{field}'"


# -- source_id ----------------------------------------------------------------------


def test_source_id_is_stripped() -> None:
    assert (
        decode("press", _event("press", source_id="  baothuathienhue.vn \n"))["source_id"]
        == "baothuathienhue.vn"
    )


@pytest.mark.parametrize("source_id", ["", "   "])
def test_blank_source_id_counts_as_missing(source_id: str) -> None:
    err = _reject("press", _event("press", source_id=source_id))
    assert err.code == "missing_field"
    assert "source_id" in err.reason


def test_source_id_length_limit() -> None:
    assert decode("press", _event("press", source_id="s" * 128))["source_id"] == "s" * 128
    err = _reject("press", _event("press", source_id="s" * 129))
    assert err.code == "out_of_range"
    assert "source_id" in err.reason and "128" in err.reason


@pytest.mark.parametrize("source_id", [123, None, True, ["a"]])
def test_source_id_must_be_text(source_id: object) -> None:
    err = _reject("press", _event("press", source_id=source_id))
    assert err.code == "wrong_type"
    assert "source_id" in err.reason


# -- strict types -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "12.5", True, False, [1.0], {"v": 1}])
def test_float_field_rejects_non_numbers(value: object) -> None:
    err = _reject("reservoir", _event("reservoir", level_m=value))
    assert err.code == "wrong_type"
    assert err.reason.startswith("field 'level_m': ")
    assert "is not a number" in err.reason


def test_float_field_accepts_int_and_returns_float() -> None:
    event = decode("reservoir", _event("reservoir", level_m=45))
    assert event["level_m"] == 45.0
    assert isinstance(event["level_m"], float)


def test_not_a_number_reason_is_exact() -> None:
    err = _reject("reservoir", _event("reservoir", level_m="abc"))
    assert err.reason == "field 'level_m': 'abc' is not a number"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_float_field_rejects_non_finite(value: float) -> None:
    # Only reachable with dict input: JSON has no NaN/Infinity.
    err = _reject("press", _event("press", engagement=value))
    assert err.code == "wrong_type"
    assert "engagement" in err.reason


@pytest.mark.parametrize("value", [2.0, 2.5, "2", True])
def test_int_field_rejects_non_integers(value: object) -> None:
    err = _reject("reservoir", _event("reservoir", gates_open=value))
    assert err.code == "wrong_type"
    assert "'gates_open'" in err.reason and "integer" in err.reason


@pytest.mark.parametrize(("stream", "field"), [("camera", "plate"), ("vessel", "mmsi"), ("cyber", "user")])
def test_string_field_rejects_numbers(stream: str, field: str) -> None:
    err = _reject(stream, _event(stream, **{field: 574123456}))
    assert err.code == "wrong_type"
    assert f"field '{field}'" in err.reason and "not a string" in err.reason


@pytest.mark.parametrize("value", [1, "true", "yes"])
def test_bool_field_rejects_non_booleans(value: object) -> None:
    err = _reject("press", _event("press", is_official=value))
    assert err.code == "wrong_type"
    assert "is_official" in err.reason


def test_topics_default_and_null_are_empty_list() -> None:
    assert decode("press", MINIMAL["press"])["topics"] == []
    assert decode("press", _event("press", topics=None))["topics"] == []


def test_topics_must_be_list_of_strings() -> None:
    err = _reject("press", _event("press", topics=["flood", 3]))
    assert err.code == "wrong_type"
    assert err.reason == "field 'topics[1]': 3 is not a string"
    err = _reject("press", _event("press", topics="flood"))
    assert err.code == "wrong_type"
    assert "topics" in err.reason


def test_id_is_optional_text() -> None:
    assert decode("press", _event("press", id="a-1"))["id"] == "a-1"
    err = _reject("press", _event("press", id=7))
    assert err.code == "wrong_type"
    assert "'id'" in err.reason


# -- extras -------------------------------------------------------------------------


def test_extras_are_kept_on_the_model() -> None:
    model = VesselEvent.model_validate(_event("vessel", crew=6, captain={"name": "Lê"}))
    assert model.__pydantic_extra__ == {"crew": 6, "captain": {"name": "Lê"}}


def test_model_reports_first_failing_field_in_declaration_order() -> None:
    with pytest.raises(ValidationError) as info:
        ReservoirEvent.model_validate({"source_id": "a", "ts": 1, "level_m": "x", "gates_open": -1})
    assert info.value.errors()[0]["loc"] == ("level_m",)
