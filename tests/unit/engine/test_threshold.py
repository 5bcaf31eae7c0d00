"""The `threshold` kind in the engine: pending/firing/resolved in event time, per key.

Rules are written as YAML to tmp_path and loaded with the real loader and the real
reference data (config/reference/reservoir.yaml): Tả Trạch NWL 45 m, Bình Điền 85 m,
Hương Điền 58 m. Events are built with `ioc.events.decode`, as the pipeline does.
"""

from __future__ import annotations

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
    expected_fingerprint,
    feed_pairs,
    per_fingerprint,
    records,
    replay,
    restored,
    run_restored,
    summary_of,
)

from ioc.events import decode
from ioc.refdata import Reference, load_reference
from ioc.rules.loader import RuleSet

REPO = Path(__file__).resolve().parents[3]
REFERENCE = load_reference(REPO / "config" / "reference")

RULE_ID = "test.level.near_nwl"
NWL = {"ta-trach": 45.0, "binh-dien": 85.0, "huong-dien": 58.0}
A, B, C = "ta-trach", "binh-dien", "huong-dien"

# One threshold rule over the reservoir stream (near NWL); `rule_yaml(**fields)` overrides/adds fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "reservoir",
    "kind": "threshold",
    "where": "nwl_m is not None",
    "condition": "level_m >= nwl_m - 0.5",
    "for": "10m",
    "severity": "warning",
    "labels": {"domain": "water", "agency": "Sở NN&PTNT"},
    "summary": "{name}: mực nước {level_m:.2f} m, còn dưới 0,5 m đến mực nước dâng bình thường {nwl_m} m",
    "description": "{name} gần MNDBT, chuẩn bị vận hành xả.",
    "sla": {"ack": "15m", "resolve": "2h"},
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
make_rules = partial(kindtest.make_rules, reference=REFERENCE)
feed = partial(kindtest.feed, stream="reservoir")
run_scenario = partial(feed_pairs, stream="reservoir")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def ev(source: str, t: float, level: float, id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A decoded reservoir event at T0 + t seconds."""
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "level_m": level}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("reservoir", raw)


def high(source: str, t: float, delta: float = 0.2, **kw: Any) -> dict[str, Any]:
    """Condition true: level within 0.5 m of NWL (NWL - delta)."""
    return ev(source, t, round(NWL[source] - delta, 3), **kw)


def low(source: str, t: float, **kw: Any) -> dict[str, Any]:
    """Condition false: 2 m below NWL."""
    return ev(source, t, NWL[source] - 2.0, **kw)


# -- pending and firing -------------------------------------------------------------------------


def test_fires_exactly_when_condition_held_for_for(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert engine.process("reservoir", [high(A, 0, delta=0.4)]) == []
    assert engine.process("reservoir", [high(A, 300, delta=0.3)]) == []
    alerts = engine.process("reservoir", [high(A, 600, delta=0.1)])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    # Rendered from the event that fired it (the one at 600 s).
    assert alerts[0].value == pytest.approx(44.9)
    assert "44.90 m" in alerts[0].summary
    assert [a.alert_id for a in engine.firing()] == [alerts[0].alert_id]


def test_does_not_fire_one_second_before_for(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), high(A, 300), high(A, 599)])
    assert alerts == []
    assert engine.firing() == []


def test_for_zero_fires_on_first_true_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, for_=0))
    assert feed(engine, [low(A, 0)]) == []
    assert brief(feed(engine, [high(A, 10)])) == [("firing", A, 10.0, None)]


def test_timer_fires_when_other_key_advances_watermark_past_deadline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [high(A, 0, delta=0.4, id="a0"), high(A, 300, delta=0.3, id="a1"), low(B, 599)]) == []
    alerts = feed(engine, [low(B, 601, id="b1")])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert alerts[0].evidence == ["a0", "a1"]
    # A timer fired it: rendered from the last true event of the key (300 s, 44.70 m).
    assert alerts[0].value == pytest.approx(44.7)
    assert alerts[0].summary.startswith("Hồ Tả Trạch: mực nước 44.70 m")


def test_timer_fires_once_the_watermark_passes_the_deadline(tmp_path: Path) -> None:
    # An event of another key exactly at the deadline does not pass it; the next one does.
    # So the order of events sharing a timestamp never matters.
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [high(A, 0), low(B, 600)]) == []
    alerts = feed(engine, [low(B, 601)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_timer_not_fired_by_event_of_another_partition(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [high(A, 0)], partition=0) == []
    assert feed(engine, [low(B, 5000)], partition=1) == []
    assert engine.firing() == []
    # The same event in A's partition does fire it.
    assert brief(feed(engine, [low(B, 700)], partition=0)) == [("firing", A, 0.0, None)]


def test_advance_moves_watermark_without_events(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, [high(A, 0)])
    assert engine.advance("reservoir", T0 + 599) == []
    assert engine.advance("reservoir", T0 + 599, partition=1) == []
    assert engine.advance("reservoir", T0 + 600) == []  # reaching the deadline is not passing it
    alerts = engine.advance("reservoir", T0 + 600.001)
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert engine.advance("reservoir", T0 + 10) == []  # backwards: ignored


def test_timer_deadline_strictly_before_event_fires_before_that_event(tmp_path: Path) -> None:
    # Deadline 600 < 601: the timer fires first (the condition held until 601), then the false
    # event at 601 resolves the episode it opened.
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), low(A, 601)])
    assert brief(alerts) == [("firing", A, 0.0, None), ("resolved", A, 0.0, 601.0)]
    assert alerts[0].alert_id == alerts[1].alert_id


def test_tie_false_event_at_deadline_decides_no_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), low(A, 600), low(B, 5000)])
    assert alerts == []
    assert engine.firing() == []


def test_tie_true_event_at_deadline_fires_once_from_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0, delta=0.4), high(A, 600, delta=0.05), low(B, 5000)])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert alerts[0].value == pytest.approx(44.95)


def test_tie_in_one_batch_same_as_separate_batches(tmp_path: Path) -> None:
    events = [high(A, 0), high(B, 0), low(A, 600), low(C, 600), high(B, 600)]
    one = engine_of(one_rule(tmp_path)).process("reservoir", events)
    many = feed(engine_of(one_rule(tmp_path)), events)
    assert brief(one) == brief(many) == [("firing", B, 0.0, None)]


def test_false_event_interrupts_pending(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), low(A, 300), high(A, 400), low(B, 650), high(A, 999)])
    # The stale timer (600) must not fire; 999 - 400 < 600.
    assert alerts == []
    alerts = feed(engine, [high(A, 1000)])
    assert brief(alerts) == [("firing", A, 400.0, None)]


def test_keys_are_independent(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), high(B, 100), low(A, 200), high(B, 700), high(A, 700)])
    assert brief(alerts) == [("firing", B, 100.0, None)]


# -- resolution --------------------------------------------------------------------------------


def test_resolves_at_first_false_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, [high(A, 0), high(A, 600), high(A, 700)])
    assert brief(fired) == [("firing", A, 0.0, None)]
    resolved = feed(engine, [low(A, 900)])
    assert brief(resolved) == [("resolved", A, 0.0, 900.0)]
    assert resolved[0].alert_id == fired[0].alert_id
    assert resolved[0].fingerprint == fired[0].fingerprint
    record = resolved[0].to_record()
    assert record["status"] == "resolved"
    assert record["starts_at"] == "2025-10-27T01:00:00Z"
    assert record["ends_at"] == "2025-10-27T01:15:00Z"
    assert engine.firing() == []
    assert feed(engine, [low(A, 1000)]) == []  # resolves once


def test_new_episode_after_resolve_has_new_alert_id(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700), high(A, 800), high(A, 1400)])
    assert brief(alerts) == [
        ("firing", A, 0.0, None), ("resolved", A, 0.0, 700.0), ("firing", A, 800.0, None),
    ]
    assert alerts[0].fingerprint == alerts[2].fingerprint
    assert alerts[0].alert_id != alerts[2].alert_id


# -- keep_firing_for ----------------------------------------------------------------------------


def test_keep_firing_for_flap_inside_window_is_one_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    alerts = feed(engine, [
        high(A, 0), high(A, 600),             # fires, starts 0
        low(A, 700), high(A, 1000),           # false 300 s, back true: still the same episode
        low(A, 1200), low(A, 2900),           # false since 1200; 1700 s < 30 m
    ])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    # Resolved by an event of the key exactly at false_since + keep_firing_for (3000).
    alerts = feed(engine, [low(A, 3000)])
    assert brief(alerts) == [("resolved", A, 0.0, 3000.0)]


def test_keep_firing_for_resolved_by_later_event_of_key(tmp_path: Path) -> None:
    # Nothing else in the partition: the next false event of the key (after the deadline)
    # is the first thing that moves the watermark past it; the timer fires first.
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700), low(A, 4000)])
    assert brief(alerts) == [("firing", A, 0.0, None), ("resolved", A, 0.0, 2500.0)]


def test_keep_firing_for_resolved_by_timer(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    assert brief(feed(engine, [high(A, 0), high(A, 600), low(A, 700), low(B, 2499)])) == [
        ("firing", A, 0.0, None)
    ]
    alerts = feed(engine, [low(B, 2600)])
    assert brief(alerts) == [("resolved", A, 0.0, 2500.0)]
    assert alerts[0].to_record()["ends_at"] == "2025-10-27T01:41:40Z"


def test_keep_firing_for_resolved_by_advance(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    assert engine.advance("reservoir", T0 + 2500) == []
    assert brief(engine.advance("reservoir", T0 + 2501)) == [("resolved", A, 0.0, 2500.0)]


def test_keep_firing_for_true_event_at_deadline_keeps_firing(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700), high(A, 2500), low(B, 9000)])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert len(engine.firing()) == 1


def test_keep_firing_for_false_then_true_cancels_timer(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, keep_firing_for="30m"))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700), high(A, 800), low(B, 9000)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


# -- realert ---------------------------------------------------------------------------------


def test_realert_suppresses_new_episode_then_retries(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    assert brief(alerts) == [("firing", A, 0.0, None), ("resolved", A, 0.0, 700.0)]
    # Pending again at 800; for is met at 1400 but resolved_at + realert = 2500.
    assert feed(engine, [high(A, 800), high(A, 1400), high(A, 2000), low(B, 2499)]) == []
    assert engine.firing() == []
    alerts = feed(engine, [low(B, 2501)])
    assert brief(alerts) == [("firing", A, 800.0, None)]
    assert alerts[0].alert_id.endswith(f"-{round((T0 + 800) * 1000)}")


def test_realert_retry_by_event_at_realert_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700), high(A, 800), high(A, 1400)])
    alerts = feed(engine, [high(A, 2500)])
    assert brief(alerts) == [("firing", A, 800.0, None)]


def test_realert_retry_cancelled_by_false_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    alerts = feed(engine, [high(A, 800), high(A, 1400), low(A, 2000), low(B, 2600), low(B, 9000)])
    assert alerts == []


def test_realert_does_not_delay_episode_after_interval(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700), high(A, 2600), high(A, 3200)])
    assert brief(alerts) == [
        ("firing", A, 0.0, None), ("resolved", A, 0.0, 700.0), ("firing", A, 2600.0, None),
    ]


def test_realert_retry_summary_from_last_true_event(tmp_path: Path) -> None:
    # The retry is fired by a timer: its summary and value come from the last true event (2000 s).
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    feed(engine, [high(A, 800, delta=0.4), high(A, 1400, delta=0.3), high(A, 2000, delta=0.1)])
    alerts = feed(engine, [low(B, 2501)])
    assert brief(alerts) == [("firing", A, 800.0, None)]
    assert alerts[0].value == pytest.approx(44.9)
    assert alerts[0].summary.startswith("Hồ Tả Trạch: mực nước 44.90 m")


def test_realert_retry_after_timer_suppression_keeps_summary(tmp_path: Path) -> None:
    # The first attempt is made by a timer (no event of the key at the deadline) and suppressed;
    # the retry must still render the key's last true event, not '?' placeholders.
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    feed(engine, [high(A, 800, delta=0.3), low(B, 1500)])  # attempt at 1400: suppressed
    alerts = feed(engine, [low(B, 2501)])
    assert brief(alerts) == [("firing", A, 800.0, None)]
    assert alerts[0].value == pytest.approx(44.7)
    assert alerts[0].summary.startswith("Hồ Tả Trạch: mực nước 44.70 m")
    assert "?" not in alerts[0].summary


def test_realert_timer_judged_at_its_deadline_not_at_triggering_event(tmp_path: Path) -> None:
    # lateness 60 s: an event at 2520 moves the watermark to 2460 only. The attempt due at 1600 is
    # inside the realert interval (resolved 700 + 30 m = 2500) and must be suppressed and retried at
    # 2500, which the watermark has not reached; A's false event at 2470 (not late) then cancels it.
    engine = engine_of(one_rule(tmp_path, realert="30m"), lateness_s=60.0)
    alerts = feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    assert brief(alerts) == [("firing", A, 0.0, None), ("resolved", A, 0.0, 700.0)]
    alerts = feed(engine, [high(A, 1000), low(B, 2520), low(A, 2470), low(B, 9000)])
    assert brief(alerts) == []


def test_realert_timer_tie_with_false_event_at_retry_time(tmp_path: Path) -> None:
    # lateness 0: attempt due at 1600 is suppressed (retry at 2500). A's false event at exactly 2500
    # decides the tie: no new episode.
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    feed(engine, [high(A, 0), high(A, 600), low(A, 700)])
    alerts = feed(engine, [high(A, 1000), low(A, 2500), low(B, 9000)])
    assert brief(alerts) == []


# -- where, keys --------------------------------------------------------------------------------


def test_where_false_event_is_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, where="gates_open == 0"))
    # A low reading with gates open is ignored: it neither interrupts nor starts the pending.
    events = [high(A, 0, gates_open=0), low(A, 300, gates_open=2), high(A, 600, gates_open=0)]
    alerts = feed(engine, events[:2])
    assert alerts == []
    assert engine.last_stats.evaluations == 0
    assert engine.last_stats.events == 1
    alerts = feed(engine, events[2:])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert engine.last_stats.evaluations == 1


def test_where_false_true_event_does_not_start_pending(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, where="gates_open == 0"))
    alerts = feed(engine, [high(A, 0), high(A, 100, gates_open=0), high(A, 650, gates_open=0)])
    assert alerts == []  # pending since 100 (the event at 0 has gates_open None: ignored)
    assert brief(feed(engine, [high(A, 700, gates_open=0)])) == [("firing", A, 100.0, None)]


def test_where_false_event_still_advances_watermark(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, where="gates_open == 0"))
    alerts = feed(engine, [high(A, 0, gates_open=0), high(A, 601, gates_open=3)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_event_with_none_key_field_is_skipped(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, key=["source_id", "gates_open"]))
    assert feed(engine, [high(A, 0), high(A, 600)]) == []
    assert engine.last_stats.evaluations == 0
    assert engine.states[RULE_ID] == {}
    alerts = feed(engine, [high(A, 700, gates_open=1), high(A, 1300, gates_open=1), high(A, 1350, gates_open=2)])
    assert brief(alerts) == [("firing", A, 700.0, None)]
    assert alerts[0].key == {"source_id": A, "gates_open": 1}
    assert alerts[0].fingerprint == expected_fingerprint(RULE_ID, {"source_id": A, "gates_open": 1})


# -- late events -----------------------------------------------------------------------------


def test_late_event_lateness_zero_not_evaluated(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = engine.process("reservoir", [high(A, 0), low(B, 500), low(A, 400)])
    assert alerts == []
    assert engine.last_stats.late == 1
    assert engine.last_stats.events == 3
    # A's high reading; B's low one leaves B untracked (a false condition on a key with no state).
    assert engine.last_stats.evaluations == 1
    assert list(engine.states[RULE_ID]) == [(A,)]
    # The late false reading did not interrupt A.
    assert brief(feed(engine, [high(A, 600)])) == [("firing", A, 0.0, None)]
    assert engine.last_stats.late == 0


def test_event_at_watermark_is_not_late(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    engine.process("reservoir", [high(A, 0), low(B, 500), low(A, 500)])
    assert engine.last_stats.late == 0
    assert feed(engine, [high(A, 2000)]) == []


def test_out_of_order_within_lateness_is_evaluated(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    engine.process("reservoir", [high(A, 0), low(B, 500), low(A, 450)])  # watermark 440
    assert engine.last_stats.late == 0
    assert engine.last_stats.evaluations == 3
    # A was interrupted at 450: pending again from 600, not from 0.
    assert brief(feed(engine, [high(A, 600), low(B, 5000)])) == [("firing", A, 600.0, None)]


def test_out_of_order_beyond_lateness_is_late(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    engine.process("reservoir", [high(A, 0), low(B, 500), low(A, 430)])  # watermark 440
    assert engine.last_stats.late == 1
    assert engine.last_stats.evaluations == 2
    assert brief(feed(engine, [high(A, 600)])) == [("firing", A, 0.0, None)]


def test_lateness_delays_timers(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    assert feed(engine, [high(A, 0), low(B, 660)]) == []  # watermark 600: reached, not passed
    assert brief(feed(engine, [low(B, 661)])) == [("firing", A, 0.0, None)]


# -- the alert record --------------------------------------------------------------------------


def test_alert_record_fields(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, rule_yaml(severity="critical"))
    engine = engine_of(rules)
    events = [high(A, 0, delta=0.4, id=f"r-{i}") for i in range(1)]
    events += [high(A, 60 * i, delta=0.3, id=f"r-{i}") for i in range(1, 7)]
    events += [high(A, 600, delta=0.2, id="r-fire")]
    alerts = feed(engine, events)
    assert len(alerts) == 1
    record = alerts[0].to_record()
    fp = expected_fingerprint(RULE_ID, {"source_id": A})
    assert record["fingerprint"] == fp
    assert record["alert_id"] == f"{fp}-{round(T0 * 1000)}" == f"{fp}-1761526800000"
    assert record["rule_id"] == RULE_ID
    assert record["stream"] == "reservoir"
    assert record["kind"] == "threshold"
    assert record["severity"] == "critical"
    assert record["status"] == "firing"
    assert record["key"] == {"source_id": A}
    assert record["labels"] == {"domain": "water", "agency": "Sở NN&PTNT"}
    assert record["summary"] == (
        "Hồ Tả Trạch: mực nước 44.80 m, còn dưới 0,5 m đến mực nước dâng bình thường 45.0 m"
    )
    assert record["description"] == "Hồ Tả Trạch gần MNDBT, chuẩn bị vận hành xả."
    assert record["starts_at"] == "2025-10-27T01:00:00Z"
    assert record["ends_at"] is None
    assert record["detected_at"] == "1970-01-01T00:00:00Z"
    assert record["value"] == pytest.approx(44.8)
    assert record["evidence"] == ["r-0", "r-1", "r-2", "r-3", "r-4"]
    assert record["sla"] == {"ack_by": "2025-10-27T01:15:00Z", "resolve_by": "2025-10-27T03:00:00Z"}
    # The rule as it was, and where it is written (a file outside the repository: its full path).
    assert record["rule_version"] == rules.by_id[RULE_ID].version and len(record["rule_version"]) == 16
    assert record["rule_source"] == f"{(tmp_path / 'rules.yaml').resolve()}:2"
    # The published JSON is the same record, Vietnamese text intact.
    assert orjson.loads(alerts[0].to_json()) == record
    assert "Tả Trạch" in alerts[0].to_json().decode("utf-8")


def test_alert_id_with_fractional_start_and_record_millis(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [high(A, 0.25), high(A, 600.25)])
    assert len(alerts) == 1
    fp = expected_fingerprint(RULE_ID, {"source_id": A})
    assert alerts[0].alert_id == f"{fp}-1761526800250"
    assert alerts[0].to_record()["starts_at"] == "2025-10-27T01:00:00.250Z"
    assert alerts[0].to_record()["sla"]["ack_by"] == "2025-10-27T01:15:00.250Z"


def test_value_expression_and_runtime_template_names(tmp_path: Path) -> None:
    engine = engine_of(one_rule(
        tmp_path, value="nwl_m - level_m", summary="{rule_id} {severity} {stream} {value:.1f} {source_id}",
        sla=None,
    ))
    alerts = feed(engine, [high(A, 0, delta=0.3), high(A, 600, delta=0.3)])
    assert alerts[0].value == pytest.approx(0.3)
    assert alerts[0].summary == f"{RULE_ID} warning reservoir 0.3 {A}"
    assert alerts[0].to_record()["sla"] is None


def test_evidence_ids_fall_back_to_position_and_reset_after_interruption(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    e0 = high(A, 0, id="old")
    e1 = low(A, 100, id="false")
    e2 = high(A, 200)
    e2["_pos"] = "ioc.raw.reservoir/0@12"
    e3 = high(A, 500, id="x-3")
    e4 = high(A, 800, id="x-4")
    alerts = feed(engine, [e0, e1, e2, e3, e4])
    assert brief(alerts) == [("firing", A, 200.0, None)]
    assert alerts[0].evidence == ["ioc.raw.reservoir/0@12", "x-3", "x-4"]


def test_resolved_record_keeps_episode_fields(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired, resolved = feed(engine, [high(A, 0, id="a"), high(A, 600, id="b"), low(A, 900, id="c")])
    f, r = fired.to_record(), resolved.to_record()
    for name in ("fingerprint", "alert_id", "starts_at", "summary", "value", "sla", "labels", "key"):
        assert f[name] == r[name], name
    # Evidence of the episode stays on its resolved record (ids of the pending/firing period).
    assert f["evidence"] == ["a", "b"]
    assert r["evidence"][:2] == ["a", "b"]
    assert "c" not in r["evidence"]
    assert (f["status"], r["status"]) == ("firing", "resolved")
    assert r["ends_at"] == "2025-10-27T01:15:00Z"


# -- determinism, snapshot/restore ------------------------------------------------------------


def scenario() -> Pairs:
    """(partition, event) pairs: several keys and episodes, timers, flaps, realert."""
    return [
        (0, high(A, 0, id="a0")), (0, high(B, 30, id="b0")), (1, high(C, 40, id="c0")),
        (0, high(A, 300, id="a1")), (0, low(B, 400, id="b1")), (0, high(B, 500, id="b2")),
        (0, high(A, 620, id="a2")), (1, high(C, 650, id="c1")), (0, low(A, 700, id="a3")),
        (0, high(A, 800, id="a4")), (0, high(B, 1200, id="b3")), (1, low(C, 1300, id="c2")),
        (0, high(A, 1500, id="a5")), (1, high(C, 1400, id="c3")), (0, low(B, 1900, id="b4")),
        (0, high(A, 2400, id="a6")), (1, high(C, 2100, id="c4")), (0, low(A, 2700, id="a7")),
        (0, high(B, 2800, id="b5")), (1, low(C, 4300, id="c5")), (0, low(B, 4000, id="b6")),
        (0, high(A, 4100, id="a8")), (0, high(A, 4800, id="a9")), (1, high(C, 5000, id="c6")),
        (0, low(B, 9000, id="b7")), (1, low(C, 9000, id="c7")),
    ]


SCENARIO_RULES = (
    "defaults: {stream: reservoir, kind: threshold, where: 'nwl_m is not None',"
    " labels: {domain: water}}\n"
    "rules:\n"
    "  - {id: s.near, condition: 'level_m >= nwl_m - 0.5', for: 10m, realert: 30m,"
    " summary: '{name} {level_m:.2f}', sla: {ack: 15m}}\n"
    "  - {id: s.keep, condition: 'level_m >= nwl_m - 0.5', for: 5m, keep_firing_for: 20m,"
    " severity: critical, summary: '{name} {level_m:.2f}'}\n"
)


def test_scenario_produces_alerts(tmp_path: Path) -> None:
    alerts = run_scenario(engine_of(make_rules(tmp_path, SCENARIO_RULES)), scenario())
    statuses = {(a.rule_id, a.status) for a in alerts}
    assert statuses >= {("s.near", "firing"), ("s.near", "resolved"), ("s.keep", "firing"), ("s.keep", "resolved")}


def test_same_events_same_alert_ids_in_new_engine(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, SCENARIO_RULES)
    first = run_scenario(engine_of(rules), scenario())
    rules2 = make_rules(tmp_path, SCENARIO_RULES, name="again.yaml")
    second = run_scenario(engine_of(rules2), scenario())
    assert len(first) >= 6
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert records(first) == records(second)


@pytest.mark.parametrize("cut", range(1, 26))
def test_snapshot_restore_mid_stream_same_alerts(tmp_path: Path, cut: int) -> None:
    rules = make_rules(tmp_path, SCENARIO_RULES)
    pairs = scenario()
    whole = run_scenario(engine_of(rules), pairs)
    # The state is plain data: it survives JSON.
    resumed = run_restored(run_scenario, pairs, cut, rules, make_rules(tmp_path, SCENARIO_RULES, name="restored.yaml"))
    assert records(resumed) == records(whole)


def test_snapshot_restore_keeps_order_of_equal_deadline_timers(tmp_path: Path) -> None:
    # Nine keys pending, three per deadline (lateness lets their events arrive out of order).
    # Restoring must keep the order in which equal-deadline timers fire (replays are identical).
    text = (
        "rules:\n  - {id: s.any, stream: reservoir, kind: threshold, condition: 'level_m >= 10',"
        " for: 10m, summary: '{source_id}'}\n"
    )
    rules = make_rules(tmp_path, text, reference=Reference())
    offsets = [2, 1, 0, 0, 1, 2, 0, 1, 2]
    events = [ev(f"k{i}", t, 20.0) for i, t in enumerate(offsets)]
    whole_engine = engine_of(rules, lateness_s=100.0)
    feed(whole_engine, events)
    restored_engine = restored(whole_engine, rules, lateness_s=100.0)
    expected = [a.key["source_id"] for a in whole_engine.advance("reservoir", T0 + 1000)]
    actual = [a.key["source_id"] for a in restored_engine.advance("reservoir", T0 + 1000)]
    assert sorted(expected) == sorted(actual)
    assert actual == expected


# -- batching does not change results (property) --------------------------------------------

LEVEL_STEPS = (-2.0, -0.6, -0.4, -0.1, 0.3)  # relative to NWL; >= -0.5 is "near"; >= 0 is "at"

PROPERTY_RULES = (
    "defaults: {stream: reservoir, kind: threshold, where: 'nwl_m is not None'}\n"
    "rules:\n"
    "  - {id: p.near, condition: 'level_m >= nwl_m - 0.5', for: 10m, realert: 30m, summary: '{level_m}'}\n"
    "  - {id: p.at, condition: 'level_m >= nwl_m', for: 5m, keep_firing_for: 15m, summary: '{level_m}'}\n"
    "  - {id: p.now, condition: 'level_m >= nwl_m - 0.5', summary: '{level_m}'}\n"
)


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@st.composite
def streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    keys = draw(st.lists(st.sampled_from([A, B, C]), min_size=2, max_size=3, unique=True))
    steps = [0, 1, 30, 60, 299, 300, 301, 600, 900, 1800]
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=40, steps=steps,
                                                late=None if ordered else (-200, 900))):
        level = NWL[key] + draw(st.sampled_from(LEVEL_STEPS))
        event = decode("reservoir", {"source_id": key, "ts": T0 + 10_000 + t, "level_m": level, "id": f"e{i}"})
        pairs.append((part, event))
    return pairs


@batching_settings(300)
@given(pairs=streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 120.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness)
    split, _ = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="reservoir", lateness=lateness)
    # Alerts of one partition keep their order; across partitions only the grouping differs.
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert sorted(summary_of(split)) == sorted(summary_of(whole))
    if len({part for part, _ in pairs}) == 1:
        assert summary_of(split) == summary_of(whole) == summary_of(single)


@batching_settings(200)
@given(pairs=streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 60.0, 300.0]))
def test_batching_does_not_change_alerts_with_late_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    # Key states and watermarks agree too (dict insertion order may differ across partitions).
    assert whole_engine.states == split_engine.states
    assert whole_engine.watermarks == split_engine.watermarks


def test_batch_of_whole_stream_equals_one_by_one_on_a_known_case(property_rules: RuleSet) -> None:
    events = [high(A, 0), high(B, 0), high(A, 300), high(B, 301), low(A, 600), ev(B, 700, 85.3),
              ev(B, 1100, 85.3), low(B, 1200), low(B, 3000)]
    whole = engine_of(property_rules).process("reservoir", events)
    single = feed(engine_of(property_rules), events)
    assert summary_of(whole) == summary_of(single)
    assert {a.rule_id for a in whole} == {"p.near", "p.at", "p.now"}
