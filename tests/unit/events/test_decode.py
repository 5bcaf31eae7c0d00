"""decode/decode_batch tests: payload handling, error sentences and codes, output shape."""

from __future__ import annotations

import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.events import (
    INVALID_EVENT_CODES,
    MAX_EVENT_BYTES,
    STREAMS,
    InvalidEvent,
    decode,
    decode_batch,
    stream_fields,
)
from ioc.exceptions import IocError

GOOD = {"source_id": "kim-long", "ts": "2025-10-27T08:00:00+07:00", "level_m": 2.4}
GOOD_BYTES = orjson.dumps(GOOD)


def _reject(stream: str, raw: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode(stream, raw)
    return info.value


# -- InvalidEvent -------------------------------------------------------------------


def test_invalid_event_carries_reason_and_code() -> None:
    err = InvalidEvent("missing required field 'ts'", "missing_field")
    assert isinstance(err, IocError)
    assert err.reason == "missing required field 'ts'"
    assert err.code == "missing_field"
    assert str(err) == err.reason


def test_invalid_event_rejects_unbounded_code() -> None:
    with pytest.raises(ValueError, match="unknown InvalidEvent code"):
        InvalidEvent("oops", "something_new")


def test_invalid_event_survives_pickle() -> None:
    err = pickle.loads(pickle.dumps(InvalidEvent("too big", "too_large")))
    assert (err.reason, err.code, str(err)) == ("too big", "too_large", "too big")


# -- output shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [GOOD_BYTES, GOOD_BYTES.decode(), bytearray(GOOD_BYTES), memoryview(GOOD_BYTES), GOOD]
)
def test_every_payload_form_gives_the_same_dict(raw: Any) -> None:
    event = decode("reservoir", raw)
    assert event["source_id"] == "kim-long"
    assert event["ts"] == 1761526800.0
    assert event["level_m"] == 2.4


def test_result_has_every_declared_field_with_none_when_absent() -> None:
    event = decode("reservoir", GOOD_BYTES)
    assert set(event) == stream_fields("reservoir")
    absent = stream_fields("reservoir") - {"source_id", "ts", "level_m"}
    assert {name: event[name] for name in absent} == dict.fromkeys(absent)
    assert type(event) is dict


def test_extras_are_kept_as_sent() -> None:
    raw = {**GOOD, "operator": "EVN", "sensors": [1, "a", None], "meta": {"fw": "1.2"}, "n": "12"}
    event = decode("reservoir", orjson.dumps(raw))
    assert event["operator"] == "EVN"
    assert event["sensors"] == [1, "a", None]
    assert event["meta"] == {"fw": "1.2"}
    assert event["n"] == "12"
    assert set(event) == stream_fields("reservoir") | {"operator", "sensors", "meta", "n"}


def test_dict_input_is_not_mutated() -> None:
    raw = {**GOOD, "source_id": "  kim-long  ", "extra": 1}
    before = dict(raw)
    event = decode("reservoir", raw)
    assert raw == before
    assert event["source_id"] == "kim-long"
    assert event is not raw


# -- payload errors -----------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": }', b"{'a': 1}", b"NaN", b'{"a": 1} x', "{"])
def test_bad_json(raw: bytes | str) -> None:
    err = _reject("press", raw)
    assert err.code == "bad_json"
    assert err.reason.startswith("not valid JSON: ")
    assert "line 1 column" in err.reason


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[1, 2]", "an array"),
        (b'"text"', "a string"),
        (b"42", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ],
)
def test_json_that_is_not_an_object(raw: bytes, kind: str) -> None:
    err = _reject("press", raw)
    assert err.code == "not_object"
    assert err.reason == f"not a JSON object: got {kind}"


@pytest.mark.parametrize("raw", [[GOOD], 42, None, (1, 2)])
def test_python_value_that_is_not_a_payload(raw: object) -> None:
    err = _reject("reservoir", raw)
    assert err.code == "not_object"
    assert type(raw).__name__ in err.reason


@pytest.mark.parametrize("raw", [b'{"source_id": "\xff"}', b"\xc3\x28", b'{"a": "\xed\xa0\x80"}'])
def test_non_utf8_bytes(raw: bytes) -> None:
    err = _reject("press", raw)
    assert err.code == "bad_encoding"
    assert err.reason.startswith("not valid UTF-8: byte 0x")


def test_text_with_lone_surrogate_is_bad_encoding() -> None:
    err = _reject("press", '{"source_id": "\ud800", "ts": 1}')
    assert err.code == "bad_encoding"
    assert "surrogate" in err.reason


def test_oversized_payload() -> None:
    filler = "x" * MAX_EVENT_BYTES
    raw = orjson.dumps({**GOOD, "pad": filler})
    err = _reject("reservoir", raw)
    assert err.code == "too_large"
    assert str(len(raw)) in err.reason and str(MAX_EVENT_BYTES) in err.reason
    assert _reject("reservoir", raw.decode()).code == "too_large"


def test_oversized_text_counts_utf8_bytes_not_characters() -> None:
    # 300k three-byte characters: under the limit in characters, over it in bytes.
    raw = orjson.dumps({**GOOD, "pad": "ế" * 340_000}).decode()
    assert len(raw) < MAX_EVENT_BYTES
    assert _reject("reservoir", raw).code == "too_large"


def test_payload_at_the_limit_is_accepted() -> None:
    base = orjson.dumps({**GOOD, "pad": ""})
    raw = orjson.dumps({**GOOD, "pad": "x" * (MAX_EVENT_BYTES - len(base))})
    assert len(raw) == MAX_EVENT_BYTES
    assert len(decode("reservoir", raw)["pad"]) == MAX_EVENT_BYTES - len(base)


def test_unknown_stream() -> None:
    err = _reject("weather", GOOD_BYTES)
    assert err.code == "unknown_stream"
    assert err.reason == "unknown stream 'weather' (known: camera, reservoir, vessel, cyber, press)"


def test_non_string_key_in_dict_input() -> None:
    err = _reject("press", {"source_id": "a", "ts": 1, 5: "x"})
    assert err.code == "wrong_type"
    assert "field name 5" in err.reason


def test_validation_reason_is_one_line_and_truncates_value() -> None:
    err = _reject("reservoir", {**GOOD, "level_m": "9" * 10_000})
    assert err.code == "wrong_type"
    assert "\n" not in err.reason
    assert err.reason.startswith("field 'level_m': '999")
    assert len(err.reason) < 120


def test_first_failing_field_is_named() -> None:
    err = _reject("reservoir", {"source_id": "a", "ts": 1, "level_m": 2000, "gates_open": "x"})
    assert err.reason == "field 'level_m': 2000 is above the maximum 1000 (allowed: -10..1000)"


# -- decode_batch -------------------------------------------------------------------


def test_batch_keeps_order_and_indexes() -> None:
    raws: list[Any] = [
        orjson.dumps({**GOOD, "source_id": "a"}),
        b"not json",
        {**GOOD, "source_id": "b"},
        orjson.dumps({**GOOD, "level_m": -50}),
        orjson.dumps({**GOOD, "source_id": "c"}).decode(),
        b"[]",
        {"source_id": "d", "level_m": 1},
    ]
    good, bad = decode_batch("reservoir", raws)
    assert [event["source_id"] for event in good] == ["a", "b", "c"]
    assert [(index, err.code) for index, err in bad] == [
        (1, "bad_json"),
        (3, "out_of_range"),
        (5, "not_object"),
        (6, "missing_field"),
    ]
    assert all(isinstance(err, InvalidEvent) for _, err in bad)


def test_batch_matches_single_decode() -> None:
    raws = [orjson.dumps({**GOOD, "level_m": float(i), "x": i}) for i in range(50)]
    good, bad = decode_batch("reservoir", raws)
    assert bad == []
    assert good == [decode("reservoir", raw) for raw in raws]


def test_empty_batch() -> None:
    assert decode_batch("press", []) == ([], [])


def test_batch_with_unknown_stream_raises() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_batch("weather", [GOOD_BYTES])
    assert info.value.code == "unknown_stream"


# -- property: junk never escapes as another exception ------------------------------

_KNOWN_KEYS = sorted(set().union(*(stream_fields(s) for s in STREAMS)))

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["2025-10-27T08:00:00+07:00", "2025-10-27T08:00:00", "1.5", "10.0.0.1", "crowd", "failure"]
    )
)
_json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(_KNOWN_KEYS) | st.text(max_size=12)
_objects = st.dictionaries(_keys, _json_values, max_size=12)


def _check(stream: str, raw: Any) -> None:
    try:
        event = decode(stream, raw)
    except InvalidEvent as err:
        assert err.code in INVALID_EVENT_CODES
        assert err.reason and "\n" not in err.reason
    else:
        assert isinstance(event["ts"], float)
        assert stream_fields(stream) <= set(event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.sampled_from(STREAMS), obj=_objects)
def test_random_json_objects_decode_or_raise_invalid_event(stream: str, obj: dict[str, Any]) -> None:
    # stdlib json keeps integers beyond 64 bits, which orjson must reject cleanly.
    _check(stream, json.dumps(obj).encode())
    _check(stream, obj)


# A valid event per stream, so that mutating a few keys yields both accepted and
# rejected events (pure junk is almost always rejected for a missing field).
_BASES: dict[str, dict[str, Any]] = {
    "camera": {"source_id": "cam-1", "ts": 1761526800, "event_type": "crowd"},
    "reservoir": {"source_id": "ta-trach", "ts": 1761526800, "level_m": 40.5},
    "vessel": {"source_id": "TTH-1", "ts": 1761526800, "lat": 16.6, "lon": 107.7},
    "cyber": {"source_id": "fw-1", "ts": 1761526800, "event_action": "login"},
    "press": {"source_id": "hue.vn", "ts": 1761526800},
}


@settings(max_examples=300, deadline=None)
@given(
    stream=st.sampled_from(STREAMS),
    changes=st.dictionaries(_keys, _scalars | st.floats(), max_size=4),
)
def test_mutated_valid_dicts_decode_or_raise_invalid_event(stream: str, changes: dict[str, Any]) -> None:
    # Dict input also carries NaN/inf and huge ints, which JSON text cannot.
    _check(stream, {**_BASES[stream], **changes})


@settings(max_examples=200, deadline=None)
@given(stream=st.sampled_from(STREAMS), raw=st.binary(max_size=64))
def test_random_bytes_decode_or_raise_invalid_event(stream: str, raw: bytes) -> None:
    _check(stream, raw)
