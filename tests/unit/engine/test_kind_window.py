"""The `window` kind in the engine: sliding (continuous) and tumbling/hopping (instant) windows.

Rules are YAML in tmp_path, loaded with the real loader and reference data; events are built
with `ioc.events.decode`. Examples follow docs/domain.md: brute force (>= 8 authentication failures
from one src_ip in 120 s), port scan (>= 50 distinct dst_port in 1 min), rain depth over 3 h.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
    engine_of,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_batched,
    run_restored,
    summary_of,
)
from kindtest import brief_values as brief

from ioc.alerts import fingerprint
from ioc.events import decode
from ioc.refdata import Reference, load_reference
from ioc.rules.kinds.window import SlidingWindowRule, TumblingWindowRule
from ioc.rules.loader import RuleSet

REPO = Path(__file__).resolve().parents[3]
REFERENCE = load_reference(REPO / "config" / "reference")

IP, IP2 = "203.0.113.7", "198.51.100.23"
RULE_ID = "test.cyber.bruteforce"
FAILURE = 'event_action == "authentication" and event_outcome == "failure"'


# One window rule (brute force by default): `rule_yaml(**fields)` overrides, adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "cyber",
    "kind": "window",
    "key": ["src_ip"],
    "where": FAILURE,
    "agg": "count",
    "window": "2m",
    "condition": "value >= 8",
    "severity": "critical",
    "labels": {"domain": "cyber", "agency": "SOC Huế"},
    "summary": "{src_ip}: {value} lần đăng nhập thất bại trong 2 phút (user {user})",
    "description": "Dò mật khẩu từ {src_ip}",
    "sla": {"ack": "15m"},
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
make_rules = partial(kindtest.make_rules, reference=REFERENCE)
feed = partial(kindtest.feed, stream="cyber")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_error(tmp_path: Path, **fields: Any) -> str:
    return str(rule_error(tmp_path, rule_yaml(**fields), REFERENCE))


def cyber(t: float, ip: str = IP, action: str = "authentication", outcome: str | None = "failure",
          id: str | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": "fw-hue-1", "ts": T0 + t, "event_action": action, "src_ip": ip,
                           "user": "admin"}
    if outcome is not None:
        raw["event_outcome"] = outcome
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("cyber", raw)


def fails(times: Iterable[float], ip: str = IP) -> list[dict[str, Any]]:
    return [cyber(t, ip, id=f"f{t:g}") for t in times]


def rain(source: str, t: float, mm: float | None, id: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "level_m": 40.0}
    if mm is not None:
        raw["rain_mm_1h"] = mm
    if id is not None:
        raw["id"] = id
    return decode("reservoir", raw)


# -- sliding: firing --------------------------------------------------------------------------


def test_sliding_fires_at_eighth_failure_in_two_minutes(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, fails(range(0, 105, 15))) == []  # 7 failures at 0..90 s
    alerts = feed(engine, fails([110]))
    assert brief(alerts) == [("firing", 110.0, None, 8)]
    assert alerts[0].key == {"src_ip": IP}
    assert alerts[0].summary == f"{IP}: 8 lần đăng nhập thất bại trong 2 phút (user admin)"
    assert alerts[0].evidence == ["f110"]
    assert len(engine.firing()) == 1


def test_sliding_spread_out_failures_do_not_fire(tmp_path: Path) -> None:
    # One failure every 20 s: a 2-minute window never holds more than 6.
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, fails(range(0, 2000, 20))) == []
    assert engine.firing() == []


def test_sliding_where_keeps_successes_and_other_actions_out(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    noise = [cyber(t, outcome="success") for t in range(0, 60, 10)]
    noise += [cyber(t, action="http_request", outcome="failure") for t in range(1, 60, 10)]
    events = sorted(noise + fails(range(0, 70, 10)), key=lambda e: e["ts"])
    assert feed(engine, events) == []  # 7 real failures
    assert engine.last_stats.evaluations == 1
    assert brief(feed(engine, fails([75]))) == [("firing", 75.0, None, 8)]


def test_sliding_keys_are_independent(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    mixed = [e for t in range(0, 80, 10) for e in (cyber(t, IP), cyber(t + 1, IP2))][:-1]  # 8 + 7
    alerts = feed(engine, mixed)
    assert [(a.status, a.key["src_ip"]) for a in alerts] == [("firing", IP)]


def test_sliding_window_is_open_on_the_left(tmp_path: Path) -> None:
    # 8 failures from 0 to 120 s: at 120 the window is (0, 120], the one at 0 is out.
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, fails([0, 20, 40, 60, 80, 100, 110, 120])) == []
    # 119.5 instead of 120: all 8 in (-0.5, 119.5].
    engine = engine_of(one_rule(tmp_path, id="test.other"))
    assert brief(feed(engine, fails([0, 20, 40, 60, 80, 100, 110, 119.5]))) == [("firing", 119.5, None, 8)]


def test_sliding_stays_one_episode_while_it_holds(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, fails(range(0, 600, 5)))  # 24 per window, for 10 minutes
    assert brief(alerts) == [("firing", 35.0, None, 8)]


# -- sliding: resolution ----------------------------------------------------------------------


def test_sliding_resolves_when_oldest_expires_by_timer(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, fails(range(0, 80, 10)))  # 0..70: fires at 70
    assert brief(fired) == [("firing", 70.0, None, 8)]
    # Another IP moves the watermark to 125: the failure at 0 expired at 120 (7 left).
    resolved = feed(engine, [cyber(125, IP2)])
    assert brief(resolved) == [("resolved", 70.0, 120.0, 8)]
    assert resolved[0].alert_id == fired[0].alert_id
    assert resolved[0].to_record()["ends_at"] == "2025-10-27T01:02:00Z"


def test_sliding_expiry_fires_only_once_the_watermark_is_past_it(tmp_path: Path) -> None:
    # A watermark at exactly the expiry time has not passed it (an event of the key at 120 may
    # still come); the first later event resolves it, ends_at is the expiry time.
    engine = engine_of(one_rule(tmp_path))
    feed(engine, fails(range(0, 80, 10)))
    assert feed(engine, [cyber(120, IP2)]) == []
    assert brief(feed(engine, [cyber(120.5, IP2)])) == [("resolved", 70.0, 120.0, 8)]


def test_sliding_event_of_key_at_expiry_replaces_the_expired_one(tmp_path: Path) -> None:
    # At 120 the failure at 0 leaves and the one at 120 enters: still 8, still firing.
    engine = engine_of(one_rule(tmp_path))
    feed(engine, fails(range(0, 80, 10)))
    assert feed(engine, fails([120])) == []
    assert len(engine.firing()) == 1
    # Nothing more: next expiry at 10 + 120 = 130 leaves 7.
    assert engine.advance("cyber", T0 + 130) == []
    assert brief(engine.advance("cyber", T0 + 131)) == [("resolved", 70.0, 130.0, 8)]


def test_sliding_resolves_by_advance(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, fails(range(0, 80, 10)))
    assert engine.advance("cyber", T0 + 120) == []
    assert brief(engine.advance("cyber", T0 + 10_000)) == [("resolved", 70.0, 120.0, 8)]
    assert engine.firing() == []


def test_sliding_resolves_at_event_that_breaks_condition(tmp_path: Path) -> None:
    # avg of rain_mm_1h over 3 h: a dry reading pulls the average under the threshold.
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg="avg", field="rain_mm_1h",
                     window="3h", condition="value * 3 > 100", summary="{name}: {value:.1f} mm/h",
                     description=None)
    engine = engine_of(rules)
    alerts = feed(engine, [rain("ta-trach", 0, 30), rain("ta-trach", 1800, 40)], stream="reservoir")
    assert brief(alerts) == [("firing", 1800.0, None, 35.0)]
    assert alerts[0].summary == "Hồ Tả Trạch: 35.0 mm/h"
    assert feed(engine, [rain("ta-trach", 3600, 34)], stream="reservoir") == []  # avg 34.67: 104 mm
    alerts = feed(engine, [rain("ta-trach", 5400, 20)], stream="reservoir")      # avg 31: 93 mm
    assert brief(alerts) == [("resolved", 1800.0, 5400.0, 35.0)]


def test_sliding_new_episode_after_resolve_has_new_alert_id(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, fails(range(0, 80, 10)) + fails(range(1000, 1080, 10)))
    assert brief(alerts) == [
        ("firing", 70.0, None, 8), ("resolved", 70.0, 120.0, 8), ("firing", 1070.0, None, 8),
    ]
    assert alerts[0].fingerprint == alerts[2].fingerprint
    assert alerts[0].alert_id != alerts[2].alert_id


# -- sliding: realert --------------------------------------------------------------------------


def test_sliding_realert_holds_back_then_retries_with_original_start(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="10m"))
    first = feed(engine, fails(range(0, 80, 10)) + [cyber(125, IP2)])
    assert brief(first) == [("firing", 70.0, None, 8), ("resolved", 70.0, 120.0, 8)]
    # Holds again from 300 (inside realert: resolved 120 + 10 m = 720): held back.
    assert feed(engine, fails(range(300, 700, 10))) == []
    assert engine.firing() == []
    # The retry at 720 fires it if the window still holds then (failures continue to 710).
    alerts = feed(engine, fails([710]) + [cyber(721, IP2)])
    assert brief(alerts) == [("firing", 370.0, None, 10)]  # (600, 720]: 610..690 and 710
    assert alerts[0].summary.startswith(f"{IP}: 10 lần")  # rendered from the held-back event


def test_sliding_realert_retry_cancelled_when_window_empties(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="10m"))
    feed(engine, fails(range(0, 80, 10)) + [cyber(125, IP2)])
    assert feed(engine, fails(range(300, 380, 10))) == []  # holds at 370, held back
    # Expiry at 420 (300 + 120) breaks it before the retry at 720.
    assert feed(engine, [cyber(500, IP2), cyber(800, IP2)]) == []
    assert engine.firing() == []
    assert engine.states[RULE_ID][(IP,)]["holding"] is None


def test_sliding_realert_does_not_delay_after_interval(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="10m"))
    alerts = feed(engine, fails(range(0, 80, 10)) + fails(range(1000, 1080, 10)))
    assert [a.status for a in alerts] == ["firing", "resolved", "firing"]


# -- sliding: time edges -----------------------------------------------------------------------


def test_sliding_out_of_order_within_lateness_counts(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    events = fails([0, 10, 20, 30, 40, 60, 70])  # 7
    assert feed(engine, events) == []
    alerts = feed(engine, [cyber(50, id="late-50")])  # watermark 10: not late, inside (−50, 70]
    assert engine.last_stats.late == 0
    # Evaluated as of the key's clock (70): the episode starts there, never before it.
    assert brief(alerts) == [("firing", 70.0, None, 8)]
    assert alerts[0].evidence == ["late-50"]


def test_sliding_out_of_order_outside_key_window_is_ignored(tmp_path: Path) -> None:
    # lateness 10 min > window: an event at 100 is not late after one at 400 (watermark −200),
    # but it is outside the key's window (280, 400]: it adds nothing.
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    feed(engine, fails([400, 401, 402, 403, 404, 405, 406]))
    assert feed(engine, fails([100])) == []
    assert engine.last_stats.late == 0
    assert engine.states[RULE_ID][(IP,)]["t"][0] == T0 + 400
    assert brief(feed(engine, fails([407]))) == [("firing", 407.0, None, 8)]


def test_sliding_late_beyond_lateness_is_dropped(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=30.0)
    feed(engine, fails([0, 10, 20, 30, 40, 100, 110]))  # watermark 80
    assert feed(engine, fails([70])) == []
    assert engine.last_stats.late == 1
    assert engine.last_stats.evaluations == 0


def test_sliding_lateness_delays_the_expiry(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    feed(engine, fails(range(0, 80, 10)))
    assert feed(engine, [cyber(180, IP2)]) == []  # watermark 120: reached, not passed
    assert brief(feed(engine, [cyber(181, IP2)])) == [("resolved", 70.0, 120.0, 8)]


def test_sliding_state_is_pruned_and_plain_data(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, fails(range(0, 3600, 3)))
    state = engine.states[RULE_ID][(IP,)]
    assert len(state["t"]) == 40  # (3477, 3597]: one window's worth, never the hour
    assert "v" not in state  # count windows keep times only
    assert json.loads(json.dumps(state)) == state


def test_sliding_idle_key_drops_its_samples(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, where=None, agg="distinct", field="dst_port", window="1m", condition="value >= 50")
    engine = engine_of(rules)
    feed(engine, [cyber(i, dst_port=1000 + i) for i in range(10)] + [cyber(60, IP2)])
    assert len(engine.states[RULE_ID][(IP,)]["t"]) == 10  # the watermark has not passed 0 + 1 m
    feed(engine, [cyber(61, IP2)])  # the first clean-up (0 + 1 m) drops the sample at 0 ...
    assert len(engine.states[RULE_ID][(IP,)]["t"]) == 9
    assert feed(engine, [cyber(69, IP2)]) == []  # ... and waits for the newest (9) to expire at 69
    assert len(engine.states[RULE_ID][(IP,)]["t"]) == 9
    feed(engine, [cyber(70, IP2)])
    state = engine.states[RULE_ID][(IP,)]
    assert (state["t"], state["v"], state["c"]) == ([], [], {})
    # One clean-up timer per quiet key, not one per event.
    assert [d - T0 for d, _, rid, k in engine.timers[("cyber", 0)] if k == (IP,)] == []


# -- sliding: the other aggregates -------------------------------------------------------------


def test_port_scan_distinct_ports(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, where="dst_port is not None", agg="distinct", field="dst_port", window="1m",
                     condition="value >= 50", summary="{src_ip}: {value} cổng khác nhau trong 1 phút")
    engine = engine_of(rules)
    same_port = [cyber(i * 0.5, action="network_flow", outcome=None, dst_port=22) for i in range(60)]
    scan = [cyber(30 + i * 0.5, action="network_flow", outcome=None, dst_port=1000 + i, id=f"p{i}")
            for i in range(48)]
    assert feed(engine, same_port + scan) == []  # 22 plus 1000..1047: 49 distinct
    alerts = feed(engine, [cyber(55, action="network_flow", outcome=None, dst_port=3389, id="p-last")])
    assert brief(alerts) == [("firing", 55.0, None, 50)]
    assert alerts[0].summary == f"{IP}: 50 cổng khác nhau trong 1 phút"
    # Port 22's samples expire by 89.5 (29.5 + 60): 49 distinct left.
    assert brief(engine.advance("cyber", T0 + 90)) == [("resolved", 55.0, 89.5, 50)]
    state = engine.states["test.cyber.bruteforce"][(IP,)]
    assert state["c"] == json.loads(json.dumps(state["c"]))  # counts keyed by text


@pytest.mark.parametrize(
    ("agg", "expected"),
    [("sum", 95.0), ("avg", 9.5), ("min", 1.0), ("max", 40.0), ("p95", 40.0), ("count", 10), ("distinct", 9)],
)
def test_sliding_aggregate_values(tmp_path: Path, agg: str, expected: float) -> None:
    readings = [5.0, 1.0, 40.0, 2.0, 3.0, 5.0, 10.0, 8.0, 6.0, 15.0]
    field = None if agg == "count" else "rain_mm_1h"
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg=agg, field=field, window="1h",
                     condition="count >= 10", summary="{value}", description=None)
    engine = engine_of(rules)
    alerts = feed(engine, [rain("huong-dien", 300 * i, mm) for i, mm in enumerate(readings)], stream="reservoir")
    assert brief(alerts) == [("firing", 2700.0, None, expected)]


def test_p95_is_nearest_rank(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg="p95", field="rain_mm_1h",
                     window="1d", condition="count >= 20", summary="{value}", description=None)
    engine = engine_of(rules)
    events = [rain("a-luoi", 60 * i, float(v)) for i, v in enumerate(range(20, 0, -1))]
    # 20 samples 1..20: the 19th smallest (ceil(0.95 * 20) = 19).
    assert brief(feed(engine, events, stream="reservoir")) == [("firing", 1140.0, None, 19.0)]


def test_sliding_events_without_the_field_add_nothing(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg="sum", field="rain_mm_1h",
                     window="1h", condition="value >= 50", summary="{value}", description=None)
    engine = engine_of(rules)
    events = [rain("ta-trach", 0, 30), rain("ta-trach", 60, None), rain("ta-trach", 120, 25)]
    assert brief(feed(engine, events, stream="reservoir")) == [("firing", 120.0, None, 55.0)]
    assert engine.states["test.cyber.bruteforce"][("ta-trach",)]["v"] == [30.0, 25.0]


def test_field_may_be_an_expression(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg="max",
                     field="turbine_m3s + spill_m3s", window="1h", condition="value > 1000", summary="{value}",
                     description=None)
    engine = engine_of(rules)
    base = {"source_id": "binh-dien", "level_m": 84.0}
    events = [decode("reservoir", {**base, "ts": T0, "turbine_m3s": 300.0, "spill_m3s": 600.0}),
              decode("reservoir", {**base, "ts": T0 + 60, "turbine_m3s": 300.0}),  # no spill: no sample
              decode("reservoir", {**base, "ts": T0 + 120, "turbine_m3s": 300.0, "spill_m3s": 800.0})]
    assert brief(feed(engine, events, stream="reservoir")) == [("firing", 120.0, None, 1100.0)]


# -- tumbling and hopping ----------------------------------------------------------------------


def test_tumbling_evaluated_when_watermark_passes_window_end(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling"))
    assert feed(engine, fails(range(0, 80, 10))) == []  # 8 in [0, 120): not closed yet
    assert feed(engine, [cyber(120, IP2)]) == []  # watermark at the end: not past it
    alerts = feed(engine, [cyber(121, IP2)])
    assert brief(alerts) == [("firing", 0.0, None, 8)]
    assert alerts[0].evidence == ["f0", "f10", "f20", "f30", "f40"]
    # Rendered from the window's last event (its src_ip and user).
    assert alerts[0].summary == f"{IP}: 8 lần đăng nhập thất bại trong 2 phút (user admin)"


def test_tumbling_event_at_window_end_belongs_to_next_window(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling"))
    alerts = feed(engine, fails([0, 10, 20, 30, 40, 50, 60, 120]) + [cyber(300, IP2)])
    assert alerts == []  # 7 in [0, 120), 1 in [120, 240)


def test_tumbling_is_aligned_to_the_epoch_not_to_the_first_event(tmp_path: Path) -> None:
    # 8 failures in 100 s, but across the boundary at 120: 4 + 4. A sliding window would fire.
    engine = engine_of(one_rule(tmp_path, type="tumbling"))
    assert feed(engine, fails([60, 75, 90, 105, 125, 140, 150, 160]) + [cyber(1000, IP2)]) == []


def test_tumbling_match_resolves_resolve_after_the_window_end(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling", resolve_after="5m"))
    alerts = feed(engine, fails(range(0, 80, 10)) + [cyber(200, IP2), cyber(420, IP2)])
    assert brief(alerts) == [("firing", 0.0, None, 8)]
    alerts = feed(engine, [cyber(421, IP2)])
    assert brief(alerts) == [("resolved", 0.0, 420.0, 8)]


def test_tumbling_consecutive_windows_within_resolve_after_are_one_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling", resolve_after="2m"))
    events = fails(range(0, 80, 10)) + fails(range(120, 220, 10)) + fails([250])
    # [0,120) 8 → match at 120; [120,240) 10 → match at 240 (= 120 + resolve_after): extends.
    alerts = feed(engine, events + [cyber(1000, IP2)])
    assert brief(alerts) == [("firing", 0.0, None, 8), ("resolved", 0.0, 360.0, 10)]
    assert alerts[0].alert_id == alerts[1].alert_id


def test_tumbling_gap_longer_than_resolve_after_starts_new_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling", resolve_after="1m"))
    events = fails(range(0, 80, 10)) + fails(range(120, 200, 10))
    alerts = feed(engine, events + [cyber(1000, IP2)])
    assert brief(alerts) == [
        ("firing", 0.0, None, 8), ("resolved", 0.0, 180.0, 8),
        ("firing", 120.0, None, 8), ("resolved", 120.0, 300.0, 8),
    ]


def test_tumbling_window_not_matching_gives_nothing(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling"))
    assert feed(engine, fails(range(0, 70, 10)) + [cyber(5000, IP2)]) == []
    assert engine.states[RULE_ID][(IP,)]["panes"] == []  # closed panes are dropped


def test_tumbling_lateness_includes_events_before_close(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling"), lateness_s=60.0)
    feed(engine, fails(range(0, 70, 10)) + [cyber(150, IP2)])  # watermark 90: [0,120) still open
    assert feed(engine, fails([115])) == []
    assert engine.last_stats.late == 0
    assert brief(feed(engine, [cyber(181, IP2)])) == [("firing", 0.0, None, 8)]


def test_tumbling_late_event_is_dropped(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling"), lateness_s=60.0)
    feed(engine, fails(range(0, 70, 10)) + [cyber(200, IP2)])  # watermark 140: [0,120) closed
    assert feed(engine, fails([115])) == []
    assert engine.last_stats.late == 1
    assert engine.firing() == []


def test_tumbling_realert_drops_match_inside_interval(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="tumbling", resolve_after="1m", realert="10m"))
    events = fails(range(0, 80, 10)) + fails(range(240, 320, 10)) + fails(range(840, 920, 10))
    alerts = feed(engine, events + [cyber(5000, IP2)])
    # [0,120) fires, resolves at 180; [240,360) matches at 360 < 180 + 10m: dropped;
    # [840, 960) matches at 960 >= 780: a new episode.
    assert brief(alerts) == [
        ("firing", 0.0, None, 8), ("resolved", 0.0, 180.0, 8),
        ("firing", 840.0, None, 8), ("resolved", 840.0, 1020.0, 8),
    ]
    assert alerts[2].evidence == ["f840", "f850", "f860", "f870", "f880"]


def test_hopping_event_counts_in_every_window_containing_it(tmp_path: Path) -> None:
    # window 2m, step 1m: windows [-60, 60), [0, 120), [60, 180)...
    engine = engine_of(one_rule(tmp_path, type="hopping", step="1m", resolve_after="1m"))
    events = fails([50, 55, 58, 61, 65, 70, 75, 80, 130])
    alerts = feed(engine, events + [cyber(1000, IP2)])
    # [-60,60): 3; [0,120): 8 → match; [60,180): 6; [120, 240): 1.
    assert brief(alerts) == [("firing", 0.0, None, 8), ("resolved", 0.0, 180.0, 8)]


def test_hopping_overlapping_matches_extend_one_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, type="hopping", step="1m", resolve_after="1m"))
    events = fails(range(60, 120, 5))  # 12 in [60, 120): windows [0,120) and [60,180) both match
    alerts = feed(engine, events + [cyber(1000, IP2)])
    assert brief(alerts) == [("firing", 0.0, None, 12), ("resolved", 0.0, 240.0, 12)]


def test_hopping_rain_three_hours_in_hourly_steps(tmp_path: Path) -> None:
    # Hourly max of the trailing-hour depth, summed over 3 h would double count: here the
    # max of rain_mm_1h over 3 h hopping by 1 h, >= 50 mm.
    rules = one_rule(tmp_path, stream="reservoir", key=None, where=None, agg="max", field="rain_mm_1h",
                     window="3h", type="hopping", step="1h", resolve_after="1h", condition="value >= 50",
                     summary="{name}: {value} mm/h", description=None)
    engine = engine_of(rules)
    events = [rain("ta-trach", 300 * i, mm) for i, mm in enumerate([10, 20, 55, 30] + [5] * 20)]
    alerts = feed(engine, events + [rain("binh-dien", 6 * 3600, 0)], stream="reservoir")
    # 55 mm at 600 s is in [−2h, 1h), [−1h, 2h), [0, 3h): three matches, one episode.
    assert brief(alerts) == [("firing", -7200.0, None, 55.0), ("resolved", -7200.0, 14400.0, 55.0)]
    assert alerts[0].summary == "Hồ Tả Trạch: 55.0 mm/h"


def test_tumbling_and_sliding_build_their_own_class(tmp_path: Path) -> None:
    text = (rule_yaml() + rule_yaml(id="x.tumbling", type="tumbling").split("\n", 1)[1]
            + rule_yaml(id="x.hopping", type="hopping", step="30s").split("\n", 1)[1])
    rules = make_rules(tmp_path, text)
    kinds = {rule.id: type(rule.kind) for rule in rules.rules}
    assert kinds == {RULE_ID: SlidingWindowRule, "x.tumbling": TumblingWindowRule, "x.hopping": TumblingWindowRule}
    assert rules.by_id["x.hopping"].kind.hops == 4  # type: ignore[attr-defined]


# -- the alert record ---------------------------------------------------------------------------


def test_alert_record(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, fails(range(0, 80, 10)))
    resolved = engine.advance("cyber", T0 + 121)
    record = fired[0].to_record()
    fp = fingerprint(RULE_ID, {"src_ip": IP})
    assert record["fingerprint"] == fp
    assert record["alert_id"] == f"{fp}-{round((T0 + 70) * 1000)}"
    assert record["kind"] == "window"
    assert record["stream"] == "cyber"
    assert record["severity"] == "critical"
    assert record["key"] == {"src_ip": IP}
    assert record["labels"] == {"domain": "cyber", "agency": "SOC Huế"}
    assert record["summary"] == f"{IP}: 8 lần đăng nhập thất bại trong 2 phút (user admin)"
    assert record["description"] == f"Dò mật khẩu từ {IP}"
    assert record["value"] == 8
    assert record["starts_at"] == "2025-10-27T01:01:10Z"
    assert record["ends_at"] is None
    assert record["sla"] == {"ack_by": "2025-10-27T01:16:10Z"}
    assert orjson.loads(fired[0].to_json()) == record
    end = resolved[0].to_record()
    assert (end["status"], end["ends_at"], end["alert_id"]) == ("resolved", "2025-10-27T01:02:00Z", record["alert_id"])


def test_snapshot_restore_mid_window_same_alerts(tmp_path: Path) -> None:
    text = rule_yaml() + rule_yaml(id="x.hop", type="hopping", step="1m").split("\n", 1)[1]
    events = fails(range(0, 200, 9)) + [cyber(t, IP2) for t in range(200, 600, 50)]
    whole = feed(engine_of(make_rules(tmp_path, text)), events)
    assert {a.rule_id for a in whole} == {RULE_ID, "x.hop"}
    for cut in (5, 12, 20, 25):
        again = make_rules(tmp_path, text, name="again.yaml")
        assert records(run_restored(feed, events, cut, make_rules(tmp_path, text), again)) == records(whole)


# -- build-time validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"agg": "median"}, "agg: 'median' is not allowed (allowed: count, sum, avg, min, max, distinct, p95)"),
        ({"type": "rolling"}, "type: 'rolling' is not allowed (allowed: sliding, tumbling, hopping)"),
        ({"window": "2 minutes"}, "window: '2 minutes' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)"),
        ({"window": None}, "window: required field is missing"),
        ({"condition": None}, "condition: required field is missing"),
        ({"agg": "sum"}, "field: required with agg 'sum' (the event field to aggregate)"),
        ({"field": "user"}, "field: not used with agg 'count' (it counts the events that pass `where`)"),
        ({"agg": "sum", "field": "src_ip"},
         "field: 'src_ip' is not a number field of stream 'cyber'; agg 'sum' needs one"
         " (allowed: dst_port, http_status, ts)"),
        ({"agg": "distinct", "field": "dst_prt"}, "field: unknown field 'dst_prt'"),
        ({"window": "0s"}, "window: '0s' must be longer than 0s (e.g. 5m)"),
        ({"step": "1m"}, "step: only for type hopping (this window is sliding)"),
        ({"type": "tumbling", "step": "1m"}, "step: only for type hopping (this window is tumbling)"),
        ({"type": "hopping"}, "step: required with type hopping (e.g. window: 15m, step: 5m)"),
        ({"type": "hopping", "window": "15m", "step": "10m"},
         "step: step '10m' must divide window '15m' (e.g. window 15m, step 5m)"),
        ({"type": "hopping", "window": "15m", "step": "20m"}, "step: step '20m' must divide window '15m'"),
        ({"type": "hopping", "window": "1d", "step": "30s"},
         "step: step '30s' makes 2880 windows per event (at most 1440: use a longer step)"),
        ({"resolve_after": "10m"},
         "resolve_after: only for type tumbling or hopping (a sliding window resolves when its condition"
         " stops holding)"),
        ({"condition": "src_ip >= 8"}, "condition: unknown field 'src_ip' (known: count, value)"),
        ({"condition": "value >="},
         "condition: invalid syntax at column 9: unexpected end of expression in 'value >='"),
        ({"value": "count"}, "value: not used by kind 'window': the alert's value is the aggregate (count)"),
        ({"windw": "2m"}, "windw: unknown key"),
        ({"summary": "{value} {total}"}, "summary: unknown field 'total'"),
    ],
)
def test_build_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    error = load_error(tmp_path, **fields)
    assert f"rules.yaml:2: rule '{RULE_ID}': {message}" in error


def test_field_error_reported_even_when_schema_fails(tmp_path: Path) -> None:
    # The loader checks `field` (an event expression) although `agg` is invalid; not `condition`.
    error = load_error(tmp_path, agg="mean", field="bytes_out", condition="value > 3")
    assert "agg: 'mean' is not allowed" in error
    assert "field: unknown field 'bytes_out'" in error
    assert "condition" not in error


def test_valid_variants_load(tmp_path: Path) -> None:
    text = "".join(
        rule_yaml(id=f"ok.{i}", **fields).split("\n", 1)[1] if i else rule_yaml(id=f"ok.{i}", **fields)
        for i, fields in enumerate([
            {},
            {"type": "tumbling", "resolve_after": "10m"},
            {"type": "hopping", "window": "15m", "step": "5m"},
            {"type": "hopping", "window": "2m", "step": "2m"},
            {"agg": "p95", "field": "http_status", "condition": "value >= 500 and count > 10"},
            {"agg": "distinct", "field": "lower(user)", "condition": "value > 20"},
        ])
    )
    assert len(make_rules(tmp_path, text)) == 6


# -- batching does not change results (property) ----------------------------------------------

END = T0 + 100_000  # the property runs end by advancing both partitions to here
PROPERTY_RULES = """
defaults: {stream: cyber, kind: window, key: [src_ip], summary: '{src_ip} {value}'}
rules:
  - {id: p.slide, agg: count, window: 2m, condition: 'value >= 4', where: 'event_outcome == "failure"'}
  - {id: p.slide.realert, agg: count, window: 1m, condition: 'value >= 3', realert: 5m}
  - {id: p.distinct, agg: distinct, field: dst_port, window: 90s, condition: 'value >= 3'}
  - {id: p.avg, agg: avg, field: dst_port, window: 2m, condition: 'value < 100 and count >= 2'}
  - {id: p.tumble, agg: count, window: 2m, type: tumbling, condition: 'value >= 3', resolve_after: 2m}
  - {id: p.hop, agg: max, field: dst_port, window: 3m, type: hopping, step: 1m, condition: 'value >= 400',
     resolve_after: 1m, realert: 4m}
"""


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES, reference=Reference())


@st.composite
def streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    steps = [0, 1, 5, 10, 20, 30, 59, 60, 61, 120, 300]
    pairs = []
    for i, (part, ip, t) in enumerate(arrivals(draw, ips, count=50, steps=steps, clamp=True,
                                               late=None if ordered else (-150, 200))):
        raw = {"source_id": "fw", "ts": T0 + t, "event_action": "authentication", "src_ip": ip,
               "event_outcome": draw(st.sampled_from(["failure", "failure", "success"])),
               "dst_port": draw(st.sampled_from([22, 80, 443, 3389, 8080])), "id": f"e{i}"}
        pairs.append((part, decode("cyber", raw)))
    return pairs


@batching_settings(250)
@given(pairs=streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 90.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(property_rules, pairs, [len(pairs)], stream="cyber", lateness=lateness, end=END)
    split, _ = replay(property_rules, pairs, sizes, stream="cyber", lateness=lateness, end=END)
    single, _ = replay(property_rules, pairs, [1], stream="cyber", lateness=lateness, end=END)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    if len({part for part, _ in pairs}) == 1:
        assert summary_of(split) == summary_of(whole)


@batching_settings(200)
@given(pairs=streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 60.0, 200.0]))
def test_batching_does_not_change_alerts_with_out_of_order_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="cyber", lateness=lateness, end=END)
    split, split_engine = replay(property_rules, pairs, sizes, stream="cyber", lateness=lateness, end=END)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states


def test_property_rules_do_produce_alerts(property_rules: RuleSet) -> None:
    # Guard for the property tests: the rule set is not vacuous on a plain stream.
    events = [(0, cyber(t, "10.0.0.1", dst_port=p)) for t, p in
              [(0, 22), (10, 80), (20, 443), (30, 22), (40, 80), (200, 22)]]
    alerts = run_batched(engine_of(property_rules), events, [1], stream="cyber", end=END)
    assert {a.rule_id for a in alerts} >= {"p.slide", "p.slide.realert", "p.distinct", "p.avg", "p.tumble", "p.hop"}
