"""Fuzz: a worker holding every shard of the shipped rules takes any mix of valid events,
events with hostile values and garbage, and never raises: every record is evaluated or
dead-lettered, and every alert it publishes is a bounded record."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import orjson
from fuzzkit import JSON_VALUES, LIMITS, T0, FuzzWorker, fuzz_settings, samples
from hypothesis import given
from hypothesis import strategies as st

from ioc.config import REPO_ROOT
from ioc.events import STREAMS, decode_batch
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.runtime.plan import plan_rules

FUZZ = fuzz_settings(40)


@st.composite
def records(draw: st.DrawFn) -> tuple[str, bytes | None, bytes, bool]:
    """(stream, key, value, whether the value is a sample event unchanged)."""
    stream = draw(st.sampled_from(STREAMS))
    event: dict[str, Any] = dict(draw(st.sampled_from(samples()[stream])))
    how = draw(st.sampled_from(["valid", "field", "drop", "garbage", "object", "key"]))
    if how == "field":
        event[draw(st.sampled_from(sorted(event)))] = draw(JSON_VALUES)
    elif how == "drop":
        event.pop(draw(st.sampled_from(sorted(event))), None)
    elif how == "garbage":
        return stream, draw(st.binary(max_size=64)) or None, draw(st.binary(max_size=512)), False
    elif how == "object":
        return stream, None, json.dumps(draw(JSON_VALUES)).encode(), False
    elif how == "key":
        # A sender inventing sources: a new id each time (state must not be fooled into errors).
        event["source_id"] = draw(st.text(min_size=1, max_size=200))
    key = str(event.get("source_id", "")).encode("utf-8", "surrogatepass") or None
    return stream, key, json.dumps(event).encode("utf-8", "surrogatepass"), how == "valid"


@FUZZ
@given(batch=st.lists(records(), min_size=1, max_size=60))
def test_any_mix_of_records_is_evaluated_or_dead_lettered(batch: list[tuple[str, bytes | None, bytes, bool]]) -> None:
    worker = FuzzWorker()
    for stream, key, value, _ in batch:
        worker.send(stream, key, value)
    # Exactly the records decoding refuses are dead-lettered: none lost, none invented.
    refused = sum(1 for stream, _, value, _ in batch if decode_batch(stream, [value])[1])
    assert len(worker.dead_letters) == refused
    assert refused <= len(batch) - sum(1 for *_, unchanged in batch if unchanged)
    for letter in worker.dead_letters:
        record = orjson.loads(letter.value)
        assert record["reason"] and len(letter.value) <= LIMITS.record_bytes
    for alert in worker.alerts:
        assert len(alert.to_json()) <= LIMITS.record_bytes
        assert len(alert.summary) <= LIMITS.alert_text_chars
        assert len(alert.description) <= LIMITS.alert_text_chars


LOUD_RULES = """
rules:
  - id: fuzz.press.every_title
    stream: press
    kind: match
    fields: [title]
    regex: "[a-z]"
    summary: "{source_id}: {title} {title}"
    description: "{title}{title}{title}{url}"
  - id: fuzz.camera.every_event
    stream: camera
    kind: threshold
    condition: "ts > 0"
    summary: "{source_id!r} {plate}"
"""


@FUZZ
@given(titles=st.lists(st.text(min_size=1, max_size=4000) | st.integers(1, 300).map(lambda n: "ab" * n * 1000),
                       min_size=1, max_size=5),
       source=st.text(min_size=1, max_size=3000))
def test_alert_texts_stay_bounded_however_long_the_event_text(titles: list[str], source: str) -> None:
    worker = FuzzWorker(loud_plan())
    for n, title in enumerate(titles):
        event = {"source_id": source, "ts": T0 + n, "title": title, "url": "https://x.vn/" + "p" * 5000}
        worker.send("press", None, json.dumps(event).encode("utf-8", "surrogatepass"))
        worker.send("camera", None, json.dumps({"source_id": source, "ts": T0 + n, "plate": title}).encode(
            "utf-8", "surrogatepass"))
    assert worker.alerts or worker.dead_letters
    for alert in worker.alerts:
        assert len(alert.summary) <= LIMITS.alert_text_chars
        assert len(alert.description) <= LIMITS.alert_text_chars
        assert len(alert.to_json()) <= LIMITS.record_bytes


@functools.cache
def loud_plan() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "loud.yaml").write_text(LOUD_RULES, encoding="utf-8")
        return plan_rules(load_rules([folder], load_reference(REPO_ROOT / "config" / "reference")))
