"""The streaming worker runs the shipped rules for all five streams: for each stream, the events
of a shipped rule test case, sent through the broker, give the alerts that case expects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml
from conftest import REPO
from kafka_io import read, send

from ioc.config import load_settings
from ioc.events import STREAMS
from ioc.kafka.topics import catalogue, ensure_topics
from ioc.timeutil import format_ts, parse_duration, parse_ts

pytestmark = pytest.mark.integration

TESTS_DIR = REPO / "rules" / "tests"


def _first_streaming_case(stream: str) -> dict[str, Any]:
    """The first case of rules/tests/<stream>.test.yaml that is about this stream alone, fires,
    and needs no watermark move after its last event (a worker's watermark moves with events)."""
    document = yaml.safe_load((TESTS_DIR / f"{stream}.test.yaml").read_text(encoding="utf-8"))
    for case in document["tests"]:
        events = case.get("events") or []
        expected = case.get("expect") or []
        if (
            events and "advance_to" not in case and case.get("rules")
            and all(e["stream"] == stream for e in events)
            and any(x["status"] == "firing" for x in expected)
        ):
            return case
    raise AssertionError(f"rules/tests/{stream}.test.yaml has no single-stream case that fires")


def _records(case: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    start = parse_ts(case["start"]) if "start" in case else None
    records = []
    for raw in case["events"]:
        body = {k: v for k, v in raw.items() if k not in ("stream", "at")}
        if "at" in raw:
            body["ts"] = format_ts(start + parse_duration(raw["at"]))  # type: ignore[operator]
        records.append((str(body["source_id"]).encode(), orjson.dumps(body)))
    return records


def test_one_shipped_case_per_stream_through_the_worker(broker_url, topic_prefix, start_worker):
    cases = {stream: _first_streaming_case(stream) for stream in STREAMS}
    # One partition per topic: the worker's watermarks then match the rule tests' single replay.
    # Created here first, so that the producer below cannot auto-create them with more.
    settings = load_settings(env={"IOC_TOPIC_PREFIX": topic_prefix, "IOC_PARTITIONS": "1"})
    ensure_topics(broker_url, catalogue(settings))
    worker = start_worker(topic_prefix, {"IOC_PARTITIONS": "1"})
    for stream, case in cases.items():
        send(broker_url, f"{topic_prefix}raw.{stream}", _records(case))
    def wanted(case: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((x["rule"], x["status"]) for x in case["expect"])

    def got(case: dict[str, Any], alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted((a["rule_id"], a["status"]) for a in alerts if a["rule_id"] in case["rules"])

    def complete(records: list[Any]) -> bool:
        alerts = [value for _, value in records]
        return all(got(case, alerts) == wanted(case) for case in cases.values())

    expected_total = sum(len(case["expect"]) for case in cases.values())
    records = read(broker_url, f"{topic_prefix}alerts", expect=expected_total, timeout=120, until=complete)
    alerts = [value for _, value in records]
    assert worker.alive(), worker.output()

    for stream, case in cases.items():
        assert got(case, alerts) == wanted(case), f"{stream}: case {case['name']!r}"
        assert any(a["stream"] == stream for a in alerts if a["rule_id"] in case["rules"]), stream


def test_every_stream_has_shipped_rules_and_tests():
    for stream in STREAMS:
        assert (REPO / "rules" / f"{stream}.yaml").exists(), stream
        assert (TESTS_DIR / f"{stream}.test.yaml").exists(), stream
