"""The decoder's fast path against the model: the same event, or the same reason, for any payload.

`decode` tries ioc.events.fastpath first; `_model_decode` below is the decoder without it (orjson
and the pydantic model only). Random payloads, good and bad, must come out of both alike:
equal dicts with the same keys in the same order and the same value types, or the same
InvalidEvent reason and code.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy
import orjson
import pytest
from annotated_types import Gt
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import model_validator

from ioc.config import DEFAULT_CONFIG_PATH, load_settings
from ioc.events import InvalidEvent
from ioc.events.declared import DeclaredField, build_schemas
from ioc.events.decode import _BOUNDS, _parse, _validate, decode, decode_batch
from ioc.events.fastpath import EXTRAS, _verify, fast_decoder, fast_ts
from ioc.events.schemas import CAMERA_EVENT_TYPES, SCHEMAS, STREAMS, BaseEvent, field_bounds
from ioc.timeutil import parse_ts
from sensors_sim.bad import corrupt
from sensors_sim.scenario import build, load_scenario


def _model_decode(stream: str, raw: bytes) -> dict[str, Any]:
    model = SCHEMAS[stream]
    return _validate(model.__pydantic_validator__.validate_python, _BOUNDS[stream], _parse(raw))


def _outcome(decoder: Any, stream: str, raw: bytes) -> tuple[str, Any]:
    try:
        event = decoder(stream, raw)
    except InvalidEvent as exc:
        return "bad", (exc.reason, exc.code)
    return "good", [(name, type(value).__name__, value) for name, value in event.items()]


def _same(stream: str, raw: bytes) -> tuple[str, Any]:
    fast = _outcome(decode, stream, raw)
    slow = _outcome(_model_decode, stream, raw)
    assert fast == slow, raw
    return fast


# -- payloads ------------------------------------------------------------------------------------

_TEXT = st.text(max_size=12) | st.sampled_from(["", " x", "x ", "\u00a0x", "x\x1c", "kim-long", "203.0.113.7",
                                                "2001:db8::1", "203.0.113.256", "1.2.3", "::", "a" * 70])
_NUMBERS = (
    st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -0.0, 1, 1.0, 90, 90.0000001, -10, 400, 599, 600, 65535, 65536, 2**63 - 1, 2**63, 2**64])
)
_TS = (
    st.sampled_from([
        "2025-10-26T17:00:00Z", "2025-10-26T17:00:00.845Z", "2025-10-26T17:00:00.845123Z",
        "2025-10-27T08:00:00+07:00", "2025-10-27T08:00:00-03:30", "2025-10-27T08:00:00.5+07:00",
        "2025-10-27t08:00:00z", "2025-10-27 08:00:00Z", " 2025-10-27T08:00:00Z", "2025-10-27T08:00:00Z ",
        "2025-10-27T08:00:00", "2025-10-27T08:00:60Z", "2025-13-27T08:00:00Z", "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2025-10-27T08:00Z",
        "20251027T080000Z000", "2025-10-27T08:00:00.1234567Z", "2025-10-27T08:00:00+0700",
        "0025-10-27T08:00:00+07:00",
    ])
    | st.integers(min_value=-10, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.text(max_size=30)
)
_ANY = st.none() | st.booleans() | _NUMBERS | _TEXT | st.lists(_TEXT, max_size=3) | st.lists(_NUMBERS, max_size=2)

_GOOD: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "camera": {"event_type": st.sampled_from(CAMERA_EVENT_TYPES), "score": st.floats(0, 1), "count": st.integers(0, 50),
               "lat": st.floats(16, 17), "plate": _TEXT},
    "reservoir": {"level_m": st.floats(-10, 1000) | st.integers(-10, 1000), "inflow_m3s": st.floats(0, 20000),
                  "gates_open": st.integers(0, 12), "rain_mm_1h": st.floats(0, 500)},
    "vessel": {"lat": st.floats(-90, 90), "lon": st.floats(-180, 180), "sog_kn": st.floats(0, 60), "mmsi": _TEXT},
    "cyber": {"event_action": _TEXT, "event_outcome": st.sampled_from(["success", "failure", "unknown", "other"]),
              "src_ip": _TEXT, "dst_ip": st.sampled_from(["198.51.100.10", "2001:db8::2", "x"]),
              "dst_port": st.integers(-1, 70000), "http_status": st.integers(99, 600)},
    "press": {"title": _TEXT, "topics": st.none() | st.lists(_TEXT, max_size=3) | st.lists(_ANY, max_size=2),
              "sentiment": st.floats(-1.5, 1.5), "is_official": st.booleans() | st.integers(0, 1)},
}


@st.composite
def payloads(draw: st.DrawFn, stream: str) -> bytes:
    fields = SCHEMAS[stream].model_fields
    event: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        event["source_id"] = draw(st.sampled_from(["kim-long", "TTH-91896-TS"]) | _TEXT)
    if draw(st.integers(0, 9)):
        event["ts"] = draw(_TS)
    for name, strategy in _GOOD[stream].items():
        choice = draw(st.integers(0, 9))
        if choice < 6:
            event[name] = draw(strategy)
        elif choice < 8:
            event[name] = draw(_ANY)
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3)):
        event[name] = draw(_ANY)
    if draw(st.booleans()):
        event["stream"] = draw(st.sampled_from([stream]) | _ANY)
    if draw(st.integers(0, 4)) == 0:
        event[draw(st.sampled_from(["extra", "_pos", "kind"]) | st.text(max_size=5))] = draw(_ANY)
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:  # a duplicate key: both parsers keep the last one
        text = text[:-1] + (", " if event else "") + f'"source_id": {json.dumps(draw(_TEXT))}}}'
    if draw(st.integers(0, 19)) == 0:  # broken bytes
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "\t", "\ud800", "}", "\\", "NaN"])) + text[cut:]
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("stream", STREAMS)
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_fast_path_decides_exactly_as_the_model(stream: str, data: st.DataObject) -> None:
    _same(stream, data.draw(payloads(stream)))


def test_the_simulators_events_take_the_fast_path(storm_payloads: dict[str, list[bytes]]) -> None:
    # The camera simulator sends `ward`, a field the shipped configuration declares (config/ioc.yaml).
    configured = load_settings(DEFAULT_CONFIG_PATH).schemas()
    for stream, lines in storm_payloads.items():
        model = configured.model(stream)
        fast = fast_decoder(stream, None if model is SCHEMAS[stream] else model)
        for raw in lines:
            assert fast(raw) is not None, raw
            assert _same_declared(configured, stream, raw)[0] == "good"


# -- declared fields (ioc.events.declared): the extended models' fast path equals their model -------

DECLARED = build_schemas({
    "camera": [DeclaredField(name="ward", type="text"),
               DeclaredField(name="lanes", type="integer", min=1, max=12),
               DeclaredField(name="zone", type="text", values=("a", "b"))],
    "reservoir": [DeclaredField(name="gate_pct", type="number", min=0, max=100, required=True),
                  DeclaredField(name="manned", type="bool")],
})
_DECLARED_GOOD = {
    "camera": {"ward": st.sampled_from(["Phú Hội", "Đông Ba", ""]), "lanes": st.integers(0, 13),
               "zone": st.sampled_from(["a", "b", "c"])},
    "reservoir": {"gate_pct": st.floats(-1, 101) | st.integers(0, 100), "manned": st.booleans()},
}


def _same_declared(schemas: Any, stream: str, raw: bytes) -> tuple[str, Any]:
    model = schemas.model(stream)
    fast = _outcome(lambda s, r: decode(s, r, schemas=schemas), stream, raw)
    slow = _outcome(lambda s, r: _validate(model.__pydantic_validator__.validate_python, field_bounds(model),
                                           _parse(r)), stream, raw)
    assert fast == slow, raw
    return fast


@pytest.mark.parametrize("stream", ["camera", "reservoir"])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fast_path_decides_declared_fields_exactly_as_the_model(stream: str, data: st.DataObject) -> None:
    event = {"source_id": "cam-013" if stream == "camera" else "kim-long", "ts": 1761526800,
             **({"event_type": "crowd"} if stream == "camera" else {"level_m": 2.0})}
    for name, strategy in _DECLARED_GOOD[stream].items():
        choice = data.draw(st.integers(0, 9))
        if choice < 6:
            event[name] = data.draw(strategy)
        elif choice < 8:
            event[name] = data.draw(_ANY)
    raw = json.dumps(event, ensure_ascii=data.draw(st.booleans())).encode()
    outcome = _same_declared(DECLARED, stream, raw)
    if outcome[0] == "good":
        assert fast_decoder(stream, DECLARED.model(stream))(raw) is not None, raw  # taken by the fast path


def test_declared_fields_are_checked_like_built_in_ones() -> None:
    good = orjson.dumps({"source_id": "cam-013", "ts": 1, "event_type": "crowd", "ward": "Phú Hội", "lanes": 3})
    assert decode("camera", good, schemas=DECLARED)["ward"] == "Phú Hội"
    assert decode("camera", b'{"source_id": "c", "ts": 1, "event_type": "crowd"}', schemas=DECLARED)["ward"] is None
    for raw, reason, code in [
        (b'{"source_id": "c", "ts": 1, "event_type": "crowd", "ward": 5}', "field 'ward': 5 is not a string",
         "wrong_type"),
        (b'{"source_id": "c", "ts": 1, "event_type": "crowd", "lanes": 13}',
         "field 'lanes': 13 is above the maximum 12 (allowed: 1..12)", "out_of_range"),
        (b'{"source_id": "c", "ts": 1, "event_type": "crowd", "zone": "c"}',
         "field 'zone': 'c' is not one of 'a' or 'b'", "out_of_range"),
        (b'{"source_id": "k", "ts": 1, "level_m": 2}', "missing required field 'gate_pct'", "missing_field"),
    ]:
        stream = "reservoir" if b"level_m" in raw else "camera"
        with pytest.raises(InvalidEvent) as info:
            decode(stream, raw, schemas=DECLARED)
        assert (info.value.reason, info.value.code) == (reason, code)
    # Without the declaration the field is an unchecked extra, kept as sent.
    assert decode("camera", b'{"source_id": "c", "ts": 1, "event_type": "crowd", "ward": 5}')["ward"] == 5


@pytest.fixture(scope="module")
def storm_payloads() -> dict[str, list[bytes]]:
    """An hour of the storm-day scenario, as `ioc simulate` publishes it."""
    run = build(load_scenario("storm-day"), seed=3, start=1761498000.0, duration_s=3600.0)
    out: dict[str, list[bytes]] = {}
    for stream, event in run.events():
        out.setdefault(stream, []).append(orjson.dumps(event))
    return out


def test_the_simulators_bad_events_get_the_models_reasons() -> None:
    rng = numpy.random.default_rng(5)
    run = build(load_scenario("storm-day"), seed=5, start=1761498000.0, duration_s=1800.0)
    for count, (stream, event) in enumerate(run.events()):
        raw, _ = corrupt(rng, stream, event)
        assert _same(stream, raw)[0] == "bad"
        if count == 2000:
            break


@pytest.mark.parametrize("raw", [
    b'{"source_id": " kim-long", "ts": 1, "level_m": 2}',     # the model trims it
    b'{"source_id": "kim-long", "ts": 1, "level_m": 2, "note": "x"}',   # an extra it does not know
    b'{"source_id": "kim-long", "ts": "2025-10-27 08:00:00Z", "level_m": 2}',
    b'{"source_id": "kim-long", "ts": 1, "level_m": 2, "gates_open": 9223372036854775808}',
    b'{"source_id": "kim-long", "ts": 1, "level_m": 2, "stream": 5}',
])
def test_what_the_fast_path_leaves_to_the_model(raw: bytes) -> None:
    assert fast_decoder("reservoir")(raw) is None
    _same("reservoir", raw)


def test_batches_mix_both_paths_in_order() -> None:
    raws = [b'{"source_id": "a", "ts": 1, "level_m": 2}', b'{"source_id": "a ", "ts": 2, "level_m": 3}',
            b'{"source_id": "a", "ts": 3, "level_m": -11}', '{"source_id": "a", "ts": 4, "level_m": 4}']
    good, bad = decode_batch("reservoir", raws)
    seen = [(e["source_id"], e["ts"], e["level_m"]) for e in good]
    assert seen == [("a", 1.0, 2.0), ("a", 2.0, 3.0), ("a", 4.0, 4.0)]
    assert [(index, exc.code) for index, exc in bad] == [(2, "out_of_range")]


def test_extras_are_known_by_name() -> None:
    assert EXTRAS == ("stream",)
    event = decode("camera", b'{"source_id": "cam-1", "ts": 1, "event_type": "crowd", "stream": "camera"}')
    assert list(event)[-1] == "stream"


@given(st.integers(0, 2**40) | st.floats(0, 2**40))
def test_fast_ts_of_numbers_is_parse_ts(value: float) -> None:
    assert fast_ts(value) == parse_ts(value)


def test_a_schema_check_the_fast_path_does_not_know_stops_it() -> None:
    class Positive(BaseEvent):
        x: Annotated[float, Gt(0)] | None = None   # Gt: only Ge and Le are checked while parsing

    class Checked(BaseEvent):
        @model_validator(mode="after")
        def _check(self) -> Checked:
            return self

    for model, words in ((Positive, "Gt"), (Checked, "_check")):
        with pytest.raises(TypeError, match=words):
            _verify("test", model)
    for stream, model in SCHEMAS.items():
        _verify(stream, model)
