"""Fuzz: whatever bytes arrive on a raw topic, decoding gives an event or a dead-letter reason,
never an exception, and the reason stays one short line."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fuzzkit import JSON_VALUES, fuzz_settings, samples
from hypothesis import given
from hypothesis import strategies as st

from ioc.events import STREAMS, decode_batch
from ioc.events.schemas import stream_fields

MAX_REASON = 300
FUZZ = fuzz_settings(150)


def _check(stream: str, raws: list[Any]) -> None:
    good, bad = decode_batch(stream, raws)
    assert len(good) + len(bad) == len(raws)
    for _, error in bad:
        assert error.code and "\n" not in error.reason
        assert len(error.reason) <= MAX_REASON, error.reason[:400]
    for event in good:
        assert isinstance(event["ts"], float) and isinstance(event["source_id"], str)


@FUZZ
@given(stream=st.sampled_from(STREAMS), raw=st.binary(max_size=2048))
def test_random_bytes_decode_or_give_a_short_reason(stream: str, raw: bytes) -> None:
    _check(stream, [raw])


@FUZZ
@given(stream=st.sampled_from(STREAMS), data=st.data())
def test_objects_with_hostile_values_in_known_fields(stream: str, data: st.DataObject) -> None:
    names = sorted(stream_fields(stream)) + ["source_id", "ts", "id", "__proto__", ""]
    obj = data.draw(st.dictionaries(st.sampled_from(names), JSON_VALUES, max_size=8))
    # json (not orjson) so that integers beyond 64 bits reach the decoder as text.
    _check(stream, [json.dumps(obj).encode(), obj])


@FUZZ
@given(stream=st.sampled_from(STREAMS), data=st.data())
def test_valid_events_with_one_field_made_hostile(stream: str, data: st.DataObject) -> None:
    event = dict(data.draw(st.sampled_from(samples()[stream])))
    field = data.draw(st.sampled_from(sorted(event) + ["extra"]))
    if data.draw(st.booleans()):
        event[field] = data.draw(JSON_VALUES)
    else:
        event.pop(field, None)
    _check(stream, [orjson.dumps(event), json.dumps(event).encode("utf-16")])


@FUZZ
@given(stream=st.sampled_from(STREAMS), depth=st.integers(min_value=100, max_value=5000))
def test_deeply_nested_json_is_refused_not_recursed(stream: str, depth: int) -> None:
    _check(stream, [b"[" * depth + b"]" * depth, b'{"source_id": ' + b"[" * depth + b"]" * depth + b"}"])
