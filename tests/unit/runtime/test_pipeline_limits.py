"""The pipeline's size limits: an oversized input is dead-lettered without being decoded, and
no dead letter is larger than `limits.record_bytes` (pure: no broker)."""

from __future__ import annotations

import base64

import orjson
import pytest
from prometheus_client import CollectorRegistry

import ioc.runtime.pipeline as pipeline_module
from ioc.config import LimitSettings
from ioc.events import InvalidEvent
from ioc.metrics import IocMetrics
from ioc.runtime.pipeline import Pipeline, RawRecord, dead_letter

GOOD = orjson.dumps({"source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0})


def _record(value: bytes, offset: int = 0, key: bytes | None = b"ta-trach") -> RawRecord:
    return RawRecord("ioc.raw.reservoir", 0, offset, key, value, 1761526800.0)


def _pipeline(**limits: int) -> tuple[Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    return Pipeline(IocMetrics(registry), clock=lambda: 1761526900.0, limits=LimitSettings(**limits)), registry


def test_an_input_over_event_bytes_is_dead_lettered_undecoded_with_its_size_and_its_start(monkeypatch):
    pipe, registry = _pipeline(event_bytes=10_000, dead_letter_value_bytes=100)
    huge = b'{"source_id": "ta-trach", "ts": 1761526800, "pad": "' + b"x" * 1_500_000 + b'"}'
    parsed: list[int] = []
    real = pipeline_module.decode_batch

    def spy(stream, raws, **kwargs):  # type: ignore[no-untyped-def]
        parsed.extend(len(raw) for raw in raws)
        return real(stream, raws, **kwargs)

    monkeypatch.setattr(pipeline_module, "decode_batch", spy)
    events, letters = pipe.decode("reservoir", [_record(huge, 0), _record(GOOD, 1)])

    assert [e["_off"] for e in events] == [1]  # the valid event after it goes on
    assert parsed == [len(GOOD)]  # the oversized one was never handed to the decoder
    [letter] = letters
    body = orjson.loads(letter.value)
    assert body["reason"] == "too_large" and body["offset"] == 0
    assert body["size"] == len(huge)
    assert str(len(huge)) in body["error"] and "10000" in body["error"]
    assert body["value_truncated"] is True and body["value"] == huge[:100].decode()
    assert letter.key == b"ta-trach"
    assert registry.get_sample_value("ioc_events_invalid_total", {"stream": "reservoir", "reason": "too_large"}) == 1


def test_an_input_of_exactly_event_bytes_is_decoded() -> None:
    pipe, _ = _pipeline(event_bytes=1024)
    base = orjson.dumps({"source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0, "note": ""})
    exact = orjson.dumps({"source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0,
                       "note": "n" * (1024 - len(base))})
    assert len(exact) == 1024
    events, letters = pipe.decode("reservoir", [_record(exact)])
    assert len(events) == 1 and letters == []


def test_a_small_dead_letter_keeps_the_whole_value_and_says_it_is_not_truncated() -> None:
    pipe, _ = _pipeline()
    [letter] = pipe.decode("reservoir", [_record(b'{"source_id": "x", "ts": ')])[1]
    body = orjson.loads(letter.value)
    assert body["value"] == '{"source_id": "x", "ts": ' and body["value_truncated"] is False
    assert body["size"] == 25 and body["reason"] == "bad_json"


@pytest.mark.parametrize("filler", [b'"', b"\x01", b"\xff"])  # JSON escapes (x2, x6) and base64 (x4/3)
def test_no_dead_letter_is_larger_than_record_bytes(filler: bytes) -> None:
    limits = LimitSettings(event_bytes=900_000, record_bytes=1_000_000, dead_letter_value_bytes=16_384)
    raw = b"{" + filler * 899_000  # under event_bytes, so decoded and rejected; escaped, it outgrows the record
    error = InvalidEvent("not valid JSON", "bad_json")
    letter = dead_letter(_record(raw, key=b"k" * 50_000), "reservoir", error, 0.0, limits)
    assert len(letter.value) + len(letter.key or b"") <= limits.record_bytes
    body = orjson.loads(letter.value)
    assert body["size"] == len(raw) and body["value_truncated"] is True
    kept = base64.b64decode(body["value"]) if body["value_encoding"] == "base64" else body["value"].encode()
    assert 0 < len(kept) <= limits.dead_letter_value_bytes and raw.startswith(kept)
    assert len(letter.key or b"") == 1024  # an absurd key is cut too


def test_a_value_that_fits_record_bytes_is_kept_whole_even_above_dead_letter_value_bytes() -> None:
    limits = LimitSettings(dead_letter_value_bytes=100)
    raw = b"not json " * 1000
    letter = dead_letter(_record(raw), "reservoir", InvalidEvent("bad", "bad_json"), 0.0, limits)
    body = orjson.loads(letter.value)
    assert body["value"] == raw.decode() and body["value_truncated"] is False


def test_a_cut_inside_a_multibyte_character_keeps_text_not_base64() -> None:
    limits = LimitSettings(event_bytes=1024, dead_letter_value_bytes=101)
    raw = ("Huế " * 2000).encode()  # 'ế' is 3 bytes: the cut at 101 falls inside one
    [letter] = Pipeline(limits=limits).decode("reservoir", [_record(raw)])[1]
    body = orjson.loads(letter.value)
    assert body["value_encoding"] == "utf-8" and raw.decode().startswith(body["value"])
    assert 98 <= len(body["value"].encode()) <= 101
