"""The `absence` kind in the engine: silence per key in event time, fire/resolve, expected keys.

Rules are YAML in tmp_path, loaded with the real loader. The vessel reference data is built
here (three registrations; docs/domain.md §2: VMS position at least every 2 h, 6 h = violation).
Events are built with `ioc.events.decode`, as the pipeline does.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import kindtest
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    Pairs,
    arrivals,
    batching_settings,
    brief,
    engine_of,
    feed_pairs,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_restored,
    summary_of,
)

from ioc.alerts import Alert, fingerprint
from ioc.engine import Engine
from ioc.events import decode
from ioc.refdata import Reference, RefTable
from ioc.rules.kinds import RULE_KINDS
from ioc.rules.kinds.absence import AbsenceRule
from ioc.rules.loader import RuleSet, load_rules

H = 3600.0
RULE_ID = "test.vms.late"
A, B, C = "TTH-90123-TS", "TTH-90456-TS", "TTH-91001-TS"

ROWS = {
    A: {"source_id": A, "port": "Thuận An", "length_m": 17.5},
    B: {"source_id": B, "port": "Tư Hiền", "length_m": 15.2},
    C: {"source_id": C, "port": "Thuận An", "length_m": 24.0},
}
REFERENCE = Reference({"vessel": RefTable("vessel", "source_id", ROWS, frozenset({"source_id", "port", "length_m"}))})

# One absence rule over the vessel stream (VMS late, 2 h); `rule_yaml(**fields)` overrides/adds fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "vessel",
    "kind": "absence",
    "timeout": "2h",
    "expect": "seen",
    "severity": "warning",
    "labels": {"domain": "fisheries"},
    "summary": "Tàu {source_id} ({port}): không có vị trí VMS từ {last_seen}",
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
make_rules = partial(kindtest.make_rules, reference=REFERENCE)
feed = partial(kindtest.feed, stream="vessel")
run = partial(feed_pairs, stream="vessel")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_problems(tmp_path: Path, text: str, reference: Reference = REFERENCE) -> list[str]:
    return [str(problem) for problem in rule_error(tmp_path, text, reference).problems]


def pos(source: str, t: float, id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A decoded VMS position at T0 + t seconds."""
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "lat": 16.6, "lon": 107.7}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("vessel", raw)


def cam(source: str, t: float, event_type: str = "heartbeat") -> dict[str, Any]:
    return decode("camera", {"source_id": source, "ts": T0 + t, "event_type": event_type})


# -- registry -------------------------------------------------------------------------------


def test_kind_is_registered() -> None:
    assert RULE_KINDS["absence"] is AbsenceRule


# -- firing ---------------------------------------------------------------------------------


def test_fires_when_watermark_passes_last_seen_plus_timeout(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    # B's position exactly at A's deadline reaches it without passing it: A may still report then.
    assert feed(engine, [pos(A, 0), pos(B, 100), pos(B, 2 * H - 1), pos(B, 2 * H)]) == []
    alerts = feed(engine, [pos(B, 2 * H + 1)])
    assert brief(alerts) == [("firing", A, 2 * H, None)]
    # The measured quantity: seconds silent when detected (the timeout here); the time is a detail.
    assert alerts[0].value == 2 * H and alerts[0].details == {"last_seen": "2025-10-27T01:00:00Z"}
    assert [a.alert_id for a in engine.firing()] == [alerts[0].alert_id]


def test_does_not_fire_while_key_reports_in_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    events = [pos(A, 0), pos(B, 0)]
    events += [pos(k, t) for t in range(3600, 6 * 3600 + 1, 3600) for k in (A, B)]
    assert feed(engine, events) == []
    assert engine.firing() == []


def test_keys_never_seen_are_not_expected_by_default(tmp_path: Path) -> None:
    # C is in the reference data but `expect: seen` only watches keys that have reported.
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [pos(A, 0), pos(A, 10 * H)])
    assert brief(alerts) == [("firing", A, 2 * H, None), ("resolved", A, 2 * H, 10 * H)]
    assert {a.key["source_id"] for a in alerts} == {A}


def test_fires_once_per_silence_and_stays_firing(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [pos(A, 0), pos(B, 0)] + [pos(B, t * H) for t in range(1, 12)])
    assert brief(alerts) == [("firing", A, 2 * H, None)]
    assert len(engine.firing()) == 1
    # A single timer at a time per key: the heap does not grow with events.
    assert len(engine.timers[("vessel", 0)]) <= 2


def test_timer_fired_by_advance_without_events(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, [pos(A, 0)])
    assert engine.advance("vessel", T0 + 2 * H - 1) == []
    assert engine.advance("vessel", T0 + 5 * H, partition=1) == []  # another partition: not A's
    assert engine.advance("vessel", T0 + 2 * H) == []  # reached, not passed
    alerts = engine.advance("vessel", T0 + 2 * H + 0.001)
    assert brief(alerts) == [("firing", A, 2 * H, None)]


def test_timer_not_fired_by_event_of_another_partition(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, [pos(A, 0)], partition=0)
    assert feed(engine, [pos(B, 9 * H)], partition=1) == []
    assert brief(feed(engine, [pos(C, 2 * H + 1)], partition=0)) == [("firing", A, 2 * H, None)]


# -- resolution, episodes -------------------------------------------------------------------


def test_resolves_at_next_event_of_the_key(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, [pos(A, 0), pos(B, 3 * H)])
    assert brief(fired) == [("firing", A, 2 * H, None)]
    assert feed(engine, [pos(B, 4 * H)]) == []  # another key: A still silent
    resolved = feed(engine, [pos(A, 4 * H + 30)])
    assert brief(resolved) == [("resolved", A, 2 * H, 4 * H + 30)]
    assert resolved[0].alert_id == fired[0].alert_id
    record = resolved[0].to_record()
    assert record["starts_at"] == "2025-10-27T03:00:00Z"
    assert record["ends_at"] == "2025-10-27T05:00:30Z"
    assert engine.firing() == []
    assert feed(engine, [pos(A, 4 * H + 60)]) == []  # resolves once


def test_new_silence_after_resolve_is_a_new_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [pos(A, 0), pos(A, 3 * H), pos(B, 5 * H), pos(B, 5 * H + 1)])
    assert brief(alerts) == [
        ("firing", A, 2 * H, None), ("resolved", A, 2 * H, 3 * H), ("firing", A, 5 * H, None),
    ]
    assert alerts[0].fingerprint == alerts[2].fingerprint == fingerprint(RULE_ID, {"source_id": A})
    assert alerts[0].alert_id != alerts[2].alert_id
    assert alerts[2].details["last_seen"] == "2025-10-27T04:00:00Z"


def test_two_rules_late_and_violation(tmp_path: Path) -> None:
    text = (
        "defaults: {stream: vessel, kind: absence, expect: seen, labels: {domain: fisheries}}\n"
        "rules:\n"
        "  - {id: vessel.vms.late, timeout: 2h, severity: warning, summary: '{source_id} late'}\n"
        "  - {id: vessel.vms.violation, timeout: 6h, severity: critical, summary: '{source_id} violation'}\n"
    )
    engine = engine_of(make_rules(tmp_path, text))
    alerts = feed(engine, [pos(A, 0), pos(B, 0)] + [pos(B, t * H) for t in range(1, 8)])
    assert [(a.rule_id, a.severity, a.starts_at - T0, a.summary) for a in alerts] == [
        ("vessel.vms.late", "warning", 2 * H, f"{A} late"),
        ("vessel.vms.violation", "critical", 6 * H, f"{A} violation"),
    ]
    assert alerts[0].fingerprint != alerts[1].fingerprint
    resolved = feed(engine, [pos(A, 7 * H)])
    assert sorted((a.rule_id, a.status, a.ends_at - T0) for a in resolved if a.ends_at is not None) == [
        ("vessel.vms.late", "resolved", 7 * H), ("vessel.vms.violation", "resolved", 7 * H),
    ]


# -- realert --------------------------------------------------------------------------------
# The watermark is moved with `advance` (an idle partition), so that only A has a silence.


def wm(engine: Engine, t: float) -> list[Alert]:
    return engine.advance("vessel", T0 + t)


def test_realert_delays_the_next_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="6h"))
    alerts = feed(engine, [pos(A, 0), pos(A, 3 * H)])
    assert brief(alerts) == [("firing", A, 2 * H, None), ("resolved", A, 2 * H, 3 * H)]
    # Silent again from 3 h: due at 5 h, but no new episode before 3 h + 6 h = 9 h.
    assert wm(engine, 5 * H + 1) == []
    assert wm(engine, 9 * H) == []
    alerts = wm(engine, 9 * H + 1)
    assert brief(alerts) == [("firing", A, 5 * H, None)]
    # Held back by realert: detected (and measured) when the interval ended, 6h after last_seen.
    assert alerts[0].details["last_seen"] == "2025-10-27T04:00:00Z" and alerts[0].value == 6 * H


def test_realert_retry_cancelled_by_sign_of_life(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="6h"))
    feed(engine, [pos(A, 0), pos(A, 3 * H)])
    assert wm(engine, 5 * H + 1) == []  # suppressed at 5 h, retry at 9 h
    assert feed(engine, [pos(A, 8 * H)]) == []
    assert wm(engine, 9 * H + 1) == []
    assert wm(engine, 10 * H) == []
    # Heard at 8 h: the next silence is due at 10 h, after the realert interval.
    assert brief(wm(engine, 10 * H + 1)) == [("firing", A, 10 * H, None)]


def test_realert_retry_after_new_silence_starts_at_that_silence(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="6h"))
    feed(engine, [pos(A, 0), pos(A, 3 * H)])
    assert wm(engine, 5 * H + 1) == []  # suppressed at 5 h, retry at 9 h
    feed(engine, [pos(A, 6 * H)])       # heard; silent again from 6 h
    assert wm(engine, 9 * H) == []
    alerts = wm(engine, 9 * H + 1)
    assert brief(alerts) == [("firing", A, 8 * H, None)]


# -- edge timing ----------------------------------------------------------------------------


def test_sign_of_life_exactly_at_deadline_is_in_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [pos(A, 0), pos(A, 2 * H), pos(B, 4 * H)]) == []
    assert brief(feed(engine, [pos(B, 4 * H + 1)])) == [("firing", A, 4 * H, None)]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_order_of_events_sharing_the_deadline_does_not_matter(tmp_path: Path, order: tuple[int, int]) -> None:
    engine = engine_of(one_rule(tmp_path))
    at_deadline = [pos(A, 2 * H), pos(B, 2 * H)]
    events = [pos(A, 0), at_deadline[order[0]], at_deadline[order[1]], pos(B, 2 * H + 1)]
    assert engine.process("vessel", events) == []
    assert brief(feed(engine, [pos(B, 4 * H + 1)])) == [("firing", A, 4 * H, None)]


def test_deadline_strictly_before_key_event_fires_then_resolves(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [pos(A, 0), pos(A, 2 * H + 1)])
    assert brief(alerts) == [("firing", A, 2 * H, None), ("resolved", A, 2 * H, 2 * H + 1)]
    assert alerts[0].alert_id == alerts[1].alert_id


def test_out_of_order_within_lateness_counts_as_sign_of_life(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    # B at 2h + 500 s: watermark 2h - 100 s. A's position of 2h - 50 s arrives after it, not late.
    assert feed(engine, [pos(A, 0), pos(B, 2 * H + 500), pos(A, 2 * H - 50)]) == []
    assert engine.last_stats.late == 0
    assert feed(engine, [pos(B, 4 * H + 550)]) == []            # watermark 4h - 50 s: reached
    assert brief(feed(engine, [pos(B, 4 * H + 551)])) == [("firing", A, 4 * H - 50, None)]


def test_older_event_within_lateness_does_not_move_last_seen_back(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    assert feed(engine, [pos(A, 1000), pos(A, 500)]) == []
    assert feed(engine, [pos(B, 1000 + 2 * H + 600)]) == []      # watermark 2h + 1000 s: reached
    alerts = feed(engine, [pos(B, 1000 + 2 * H + 601)])
    assert brief(alerts) == [("firing", A, 1000 + 2 * H, None)]
    assert alerts[0].details["last_seen"] == "2025-10-27T01:16:40Z"


def test_late_event_beyond_lateness_is_no_sign_of_life(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    engine.process("vessel", [pos(A, 0), pos(B, 2 * H + 500), pos(A, 2 * H - 200)])  # watermark 2h - 100
    assert engine.last_stats.late == 1
    assert engine.last_stats.evaluations == 2
    assert brief(feed(engine, [pos(B, 2 * H + 601)])) == [("firing", A, 2 * H, None)]


def test_lateness_delays_detection(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    assert feed(engine, [pos(A, 0), pos(B, 2 * H + 600)]) == []
    assert brief(feed(engine, [pos(B, 2 * H + 601)])) == [("firing", A, 2 * H, None)]


# -- where ----------------------------------------------------------------------------------


def test_where_only_matching_events_are_signs_of_life(tmp_path: Path) -> None:
    # Camera offline: only heartbeats count (docs/domain.md §3: camera silent > 10 min).
    text = (
        "rules:\n"
        "  - {id: camera.offline, stream: camera, kind: absence, timeout: 10m,"
        " where: \"event_type == 'heartbeat'\", summary: 'Camera {source_id} offline'}\n"
    )
    engine = engine_of(make_rules(tmp_path, text, reference=Reference()))
    events = [cam("cam-001", 0), cam("cam-002", 0), cam("cam-001", 300, "red_light"), cam("cam-002", 540)]
    assert feed(engine, events, stream="camera") == []
    assert engine.last_stats.evaluations == 1
    # A red-light event of cam-001 still moves the watermark, but does not reset its silence.
    alerts = feed(engine, [cam("cam-001", 601, "no_helmet")], stream="camera")
    assert brief(alerts) == [("firing", "cam-001", 600.0, None)]
    assert engine.last_stats.evaluations == 0
    assert alerts[0].summary == "Camera cam-001 offline"
    # Only a heartbeat resolves it.
    assert feed(engine, [cam("cam-001", 700, "speeding")], stream="camera") == []
    resolved = feed(engine, [cam("cam-001", 720)], stream="camera")
    assert brief(resolved) == [("resolved", "cam-001", 600.0, 720.0)]


def test_event_with_missing_key_field_is_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, key=["mmsi"], summary="{mmsi}"))
    assert feed(engine, [pos(A, 0), pos(B, 0, mmsi="574000111"), pos(A, 2 * H)]) == []
    assert list(engine.states[RULE_ID]) == [("574000111",)]
    alerts = feed(engine, [pos(A, 2 * H + 1)])
    assert [(a.key, a.starts_at - T0) for a in alerts] == [({"mmsi": "574000111"}, 2 * H)]


# -- expect: reference ----------------------------------------------------------------------


def test_reference_keys_never_seen_count_from_first_watermark(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, expect="reference+seen"))
    assert feed(engine, [pos(A, 1000), pos(B, 1000 + 2 * H - 1)]) == []
    assert engine.globals[RULE_ID] == {"started": T0 + 1000}
    assert feed(engine, [pos(B, 1000 + 2 * H)]) == []
    alerts = feed(engine, [pos(B, 1000 + 2 * H + 1)])
    # C never reported: silent since the stream's first watermark (1000 s); A since 1000 s too.
    assert sorted(brief(alerts)) == [("firing", A, 1000 + 2 * H, None), ("firing", C, 1000 + 2 * H, None)]
    by_key = {a.key["source_id"]: a for a in alerts}
    assert by_key[C].details["last_seen"] == "2025-10-27T01:16:40Z"
    assert by_key[C].summary == f"Tàu {C} (Thuận An): không có vị trí VMS từ 2025-10-27T01:16:40Z"
    assert by_key[C].evidence == []
    resolved = feed(engine, [pos(C, 3 * H)])
    assert brief(resolved) == [("resolved", C, 1000 + 2 * H, 3 * H)]


def test_reference_key_reporting_in_time_does_not_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, expect="reference+seen"))
    feed(engine, [pos(A, 0), pos(C, H), pos(B, 1.5 * H), pos(A, 1.9 * H)])
    alerts = feed(engine, [pos(B, 2 * H)])
    assert alerts == []
    assert feed(engine, [pos(B, 3 * H)]) == []
    assert brief(feed(engine, [pos(B, 3 * H + 1)])) == [("firing", C, 3 * H, None)]


def test_reference_also_watches_unlisted_keys_seen(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, expect="reference+seen"))
    alerts = feed(engine, [pos("TTH-99999-TS", 0), pos(A, 2 * H), pos(B, 2 * H), pos(C, 2 * H),
                           pos(A, 2 * H + 1)])
    assert brief(alerts) == [("firing", "TTH-99999-TS", 2 * H, None)]
    assert "(?)" in alerts[0].summary  # no reference row: the port renders as '?'


def test_reference_start_runs_once_and_other_partition_timers_stay_stale(tmp_path: Path) -> None:
    # Partition 0 starts first and watches A, B, C from 0 s. C really lives on partition 1.
    engine = engine_of(one_rule(tmp_path, expect="reference+seen"))
    feed(engine, [pos(A, 0)], partition=0)
    feed(engine, [pos(C, 600)], partition=1)  # heard: its partition-0 timer is now stale
    assert engine.globals[RULE_ID] == {"started": T0}
    alerts = feed(engine, [pos(A, 2 * H), pos(A, 3 * H)], partition=0)
    # B (never heard) fires at 2 h; C does not fire on partition 0's watermark.
    assert brief(alerts) == [("firing", B, 2 * H, None)]
    # C is judged by partition 1's watermark: silent since 600 s.
    assert brief(feed(engine, [pos("TTH-1-TS", 601 + 2 * H)], partition=1)) == [("firing", C, 600 + 2 * H, None)]


def test_reference_key_expected_then_seen_after_firing_never_resolves_before_start(tmp_path: Path) -> None:
    # C fired on partition 0's watermark (2 h); its first position arrives on partition 1 with an
    # older time (partition 1 is behind): the episode ends no earlier than it started.
    engine = engine_of(one_rule(tmp_path, expect="reference+seen"))
    feed(engine, [pos(A, 0), pos(A, H), pos(A, 2 * H)], partition=0)
    alerts = engine.advance("vessel", T0 + 2 * H + 1, partition=0)
    assert sorted(brief(alerts)) == [("firing", B, 2 * H, None), ("firing", C, 2 * H, None)]
    resolved = feed(engine, [pos(C, H)], partition=1)
    assert brief(resolved) == [("resolved", C, 2 * H, 2 * H)]


# -- build-time validation (through the loader) ---------------------------------------------


def test_error_missing_timeout(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(timeout=None))
    assert problems == [f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': timeout: required field is missing"]


@pytest.mark.parametrize(("value", "message"), [
    ("two hours", "'two hours' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)"),
    ("0s", "'0s' must be more than 0 (e.g. 10m, 2h)"),
    (0, "'0s' must be more than 0 (e.g. 10m, 2h)"),
])
def test_error_bad_timeout(tmp_path: Path, value: Any, message: str) -> None:
    problems = load_problems(tmp_path, rule_yaml(timeout=value))
    assert problems == [f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': timeout: {message}"]


def test_error_bad_expect(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(expect="always"))
    assert problems == [
        f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': expect: 'always' is not allowed "
        "(allowed: reference, seen, reference+seen)"
    ]


def test_error_expect_reference_needs_source_id_key(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(expect="reference", key=["source_id", "mmsi"]))
    assert problems == [
        f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': expect: 'reference' needs key [source_id] "
        "(reference data is joined on source_id), not [source_id, mmsi] (use expect: seen for other keys)"
    ]


def test_error_expect_reference_without_reference_data(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(expect="reference", summary="{source_id}"), Reference())
    assert problems == [
        f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': expect: 'reference' needs reference data listing the "
        "vessels to expect, and config/reference/vessel.yaml has none (use expect: seen)"
    ]


def test_error_for_is_not_a_field(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(**{"for": "10m"}))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': for: unknown key (allowed: ")
    assert "expect" in problems[0] and "timeout" in problems[0]


def test_error_value_expression_not_allowed(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(value="sog_kn"))
    assert problems == [
        f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': value: 'sog_kn' is not allowed: an absence has no "
        "event to compute it from (its value is the seconds silent)"
    ]


def test_error_unknown_template_name_lists_kind_names(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(summary="{source_id} {last_sen}"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': summary: unknown field 'last_sen'")
    assert "did you mean 'last_seen'?" in problems[0]


def test_error_bad_where_and_bad_timeout_both_reported(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, rule_yaml(timeout="soon", where="speed > 3"))
    assert len(problems) == 2
    assert any(p.endswith("timeout: 'soon' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)") for p in problems)
    assert any(": where: " in p and "speed" in p for p in problems)


# -- the alert record -----------------------------------------------------------------------


def test_alert_record_fields(tmp_path: Path) -> None:
    engine = engine_of(one_rule(
        tmp_path, severity="critical", sla={"ack": "15m", "resolve": "6h"},
        summary="Tàu {source_id} ({port}): mất tín hiệu VMS, vị trí cuối {lat}, {lon} lúc {last_seen}",
        description="{rule_id} {severity} {stream}",
    ))
    alerts = feed(engine, [pos(A, 0, id="p-1", lat=16.7, lon=107.9), pos(A, 600, id="p-2", lat=16.8, lon=108.0),
                           pos(B, 601 + 2 * H)])
    assert len(alerts) == 1
    record = alerts[0].to_record()
    fp = fingerprint(RULE_ID, {"source_id": A})
    assert record["fingerprint"] == fp
    assert record["alert_id"] == f"{fp}-{round((T0 + 600 + 2 * H) * 1000)}"
    assert record["rule_id"] == RULE_ID
    assert record["stream"] == "vessel"
    assert record["kind"] == "absence"
    assert record["severity"] == "critical"
    assert record["status"] == "firing"
    assert record["key"] == {"source_id": A}
    assert record["labels"] == {"domain": "fisheries"}
    # Event fields come from the key's latest event; `port` from the reference data.
    assert record["summary"] == (
        f"Tàu {A} (Thuận An): mất tín hiệu VMS, vị trí cuối 16.8, 108.0 lúc 2025-10-27T01:10:00Z"
    )
    assert record["description"] == f"{RULE_ID} critical vessel"
    assert record["starts_at"] == "2025-10-27T03:10:00Z"
    assert record["ends_at"] is None
    assert record["value"] == 2 * H and record["details"] == {"last_seen": "2025-10-27T01:10:00Z"}
    assert record["evidence"] == ["p-2"]  # the last sign of life
    assert record["sla"] == {"ack_by": "2025-10-27T03:25:00Z", "resolve_by": "2025-10-27T09:10:00Z"}
    assert orjson.loads(alerts[0].to_json()) == record
    resolved = feed(engine, [pos(A, 3 * H, id="p-3")])[0].to_record()
    for name in ("fingerprint", "alert_id", "starts_at", "summary", "value", "sla", "evidence"):
        assert resolved[name] == record[name], name
    assert resolved["ends_at"] == "2025-10-27T04:00:00Z"


def test_evidence_falls_back_to_position(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    event = pos(A, 0)
    event["_pos"] = "ioc.raw.vessel/3@42"
    alerts = feed(engine, [event, pos(B, 2 * H + 1)])
    assert alerts[0].evidence == ["ioc.raw.vessel/3@42"]


def test_last_seen_and_silent_for_given_to_templates(tmp_path: Path) -> None:
    # The kind hands `last_seen` and `silent_for` to the runtime with the event it renders.
    rules = one_rule(tmp_path, summary="{source_id}: im lặng {silent_for} từ {last_seen}", realert="6h")
    engine = engine_of(rules)
    first = feed(engine, [pos(A, 0), pos(B, 2 * H + 1)])
    assert [a.summary for a in first] == [f"{A}: im lặng 2h từ 2025-10-27T01:00:00Z"]
    # A realert retry detects the silence later: silent_for says how long it was by then.
    feed(engine, [pos(A, 2 * H + 1800), pos(B, 4 * H + 1801)])  # resolved; due 4h30m: suppressed
    retry = feed(engine, [pos(B, 8 * H + 1801)])                    # retry at 2h30m + 6h
    assert [a.summary for a in retry] == [f"{A}: im lặng 6h từ 2025-10-27T03:30:00Z"]
    assert brief(retry) == [("firing", A, 4 * H + 1800, None)]


# -- state: plain data, bounded, snapshot/restore -------------------------------------------


def test_state_is_small_plain_data(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, expect="reference", summary="{lat}"))
    feed(engine, [pos(k, t * 60, id=f"e{t}") for t in range(500) for k in (A, B)])
    state = engine.states[RULE_ID][(A,)]
    assert set(state) <= {"last", "last_id", "due", "fields", "firing", "ended", "since", "expected"} | {
        name for name in state if name.startswith("_")
    }
    assert state["fields"] == {"lat": 16.6}
    assert json.loads(json.dumps(engine.snapshot()))["globals"] == {RULE_ID: {"started": T0}}
    assert len(engine.timers[("vessel", 0)]) <= 3


SCENARIO_RULES = (
    "defaults: {stream: vessel, kind: absence, expect: seen, labels: {domain: fisheries},"
    " summary: '{source_id} {port} {lat}'}\n"
    "rules:\n"
    "  - {id: s.late, timeout: 2h, expect: reference+seen, realert: 3h}\n"
    "  - {id: s.violation, timeout: 6h, severity: critical}\n"
)


def scenario() -> Pairs:
    return [
        (0, pos(A, 0, id="a0")), (0, pos(B, 600, id="b0")), (0, pos(A, 3600, id="a1")),
        (0, pos(B, 9000, id="b1")), (0, pos(A, 10000, id="a2")), (0, pos(B, 15000, id="b2")),
        (0, pos(A, 16000, id="a3")), (0, pos(B, 30000, id="b3")), (0, pos(C, 31000, id="c0")),
        (0, pos(A, 32000, id="a4")), (0, pos(B, 40000, id="b4")), (0, pos(B, 60000, id="b5")),
        (0, pos(C, 61000, id="c1")),
    ]


@pytest.mark.parametrize("cut", range(1, 13))
def test_snapshot_restore_mid_stream_same_alerts(tmp_path: Path, cut: int) -> None:
    rules = make_rules(tmp_path, SCENARIO_RULES)
    pairs = scenario()
    whole = run(engine_of(rules), pairs)
    assert {(a.rule_id, a.status) for a in whole} == {
        ("s.late", "firing"), ("s.late", "resolved"), ("s.violation", "firing"), ("s.violation", "resolved"),
    }
    resumed = run_restored(run, pairs, cut, rules, make_rules(tmp_path, SCENARIO_RULES, name="restored.yaml"))
    assert records(resumed) == records(whole)


# -- batching does not change results (property) --------------------------------------------

PROPERTY_RULES = (
    "defaults: {stream: vessel, kind: absence, expect: seen, summary: '{source_id} {value} {lat}'}\n"
    "rules:\n"
    "  - {id: p.late, timeout: 2h, realert: 3h}\n"
    "  - {id: p.violation, timeout: 6h, where: 'sog_kn is None or sog_kn > 0'}\n"
)
REFERENCE_RULES = PROPERTY_RULES + "  - {id: p.ref, timeout: 1h, expect: reference+seen, realert: 30m}\n"


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@pytest.fixture(scope="module")
def reference_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("ref"), REFERENCE_RULES)


@st.composite
def streams(draw: st.DrawFn, *, partitions: int = 2, ordered: bool = True) -> Pairs:
    keys = draw(st.lists(st.sampled_from([A, B, C, "TTH-1-TS"]), min_size=1, max_size=4, unique=True))
    steps = [0, 1, 600, 1800, 3599, 3600, 3601, 7199, 7200, 7201, 21600, 30000]
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=40, steps=steps, partitions=partitions,
                                                late=None if ordered else (-3000, 9000))):
        sog = draw(st.sampled_from([None, 0.0, 4.5]))
        raw: dict[str, Any] = {"source_id": key, "ts": T0 + 50_000 + t, "lat": 16.6, "lon": 107.7, "id": f"e{i}"}
        if sog is not None:
            raw["sog_kn"] = sog
        pairs.append((part, decode("vessel", raw)))
    return pairs


@batching_settings(300)
@given(pairs=st.booleans().flatmap(lambda ordered: streams(ordered=ordered)), sizes=SIZES,
       lateness=st.sampled_from([0.0, 600.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(property_rules, pairs, [len(pairs)], stream="vessel", lateness=lateness)
    split, _ = replay(property_rules, pairs, sizes, stream="vessel", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="vessel", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert sorted(summary_of(split)) == sorted(summary_of(whole))


@batching_settings(300)
@given(pairs=streams(partitions=1, ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 600.0, 3600.0]))
def test_batching_does_not_change_alerts_with_reference_keys_and_late_events(
    reference_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(reference_rules, pairs, [len(pairs)], stream="vessel", lateness=lateness)
    split, split_engine = replay(reference_rules, pairs, sizes, stream="vessel", lateness=lateness)
    assert summary_of(split) == summary_of(whole)
    assert whole_engine.states == split_engine.states
    # And the end of the replay (advance far ahead) fires the same silences.
    end = T0 + 10**6
    assert summary_of(whole_engine.advance("vessel", end)) == summary_of(split_engine.advance("vessel", end))


def test_batching_known_case_with_reference_keys(reference_rules: RuleSet) -> None:
    events = [pos(A, 0), pos(B, 600), pos(A, 3600), pos(A, 7300), pos(B, 7800), pos(C, 9000), pos(A, 30000)]
    whole = engine_of(reference_rules).process("vessel", events)
    single = feed(engine_of(reference_rules), events)
    assert summary_of(whole) == summary_of(single)
    assert {a.rule_id for a in whole} == {"p.late", "p.violation", "p.ref"}


def test_expect_reference_applies_where_to_the_listed_rows(tmp_path: Path) -> None:
    from ioc.config import REPO_ROOT
    from ioc.refdata import load_reference

    reference = load_reference(REPO_ROOT / "config" / "reference")
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - {id: v.lost, stream: vessel, kind: absence, timeout: 2h, expect: reference,\n"
        "     where: 'vms_required == True'}\n",
        encoding="utf-8",
    )
    ruleset = load_rules([path], reference)
    vms = {k for k, row in reference.table("vessel").rows.items() if row["vms_required"]}
    small = next(k for k, row in reference.table("vessel").rows.items() if not row["vms_required"])
    engine = Engine(ruleset, clock=lambda: 0.0)
    first = decode("vessel", {"source_id": small, "ts": T0, "lat": 16.6, "lon": 107.7, "length_m": 9.0})
    later = decode("vessel", {"source_id": small, "ts": T0 + 2 * 3600 + 60, "lat": 16.6, "lon": 107.7, "length_m": 9.0})
    alerts = engine.process("vessel", [first, later])
    assert {a.key["source_id"] for a in alerts} == vms
    assert small not in {a.key["source_id"] for a in alerts}
