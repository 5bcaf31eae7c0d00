"""The `spike` kind in the engine: a key's current window against its own baseline.

Most tests use camera violations with `window: 10m`, `baseline: 1h` (so the default bucket
is 1m and the baseline is normalised by 10/60), `ratio: 3`, `min_count: 3`. T0 is an hour
boundary, so bucket starts are T0 + whole minutes. Six baseline events at T0, T0+10m, ...,
T0+50m give a normalised baseline of 1 event per 10 minutes. A key is judged once its history
covers a baseline window: from NOW = T0+69m (the bucket whose current window is
[T0+60m, T0+70m) and baseline [T0, T0+60m)).
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
    make_rules,
    only_problem,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_restored,
    summary_of,
)

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.kinds.spike import SpikeRule
from ioc.rules.loader import RuleSet

NOW = 4140  # T0+69m: the first bucket where a key first seen at T0 is judged
RULE_ID = "camera.violations.spike"
A, B, C = "cam-hue-001", "cam-hue-002", "cam-hue-003"
BASELINE_TIMES = (0, 600, 1200, 1800, 2400, 3000)  # six events: baseline 6 * 10/60 = 1


# One spike rule over camera violations (10 min against 1 h, ratio 3): `rule_yaml(**fields)` overrides,
# adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "camera",
    "kind": "spike",
    "where": "event_type != 'heartbeat'",
    "window": "10m",
    "baseline": "1h",
    "ratio": 3,
    "min_count": 3,
    "severity": "warning",
    "labels": {"domain": "traffic"},
    "summary": "Camera {source_id} ({district}): vi phạm tăng đột biến, {value}",
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
feed = partial(kindtest.feed, stream="camera")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_error(tmp_path: Path, **fields: Any) -> str:
    return only_problem(rule_error(tmp_path, rule_yaml(**fields)))


def cam(t: float, source: str = A, event_type: str = "red_light", id: str | None = None,
        **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "event_type": event_type, "district": "Phú Nhuận"}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("camera", raw)


def baseline(source: str = A) -> list[dict[str, Any]]:
    return [cam(t, source, id=f"base-{t}") for t in BASELINE_TIMES]


def state_of(engine: Engine, source: str = A, rule_id: str = RULE_ID) -> dict[str, Any]:
    return engine.states[rule_id][(source,)]


# -- firing, not firing ------------------------------------------------------------------------


def test_fires_when_current_reaches_ratio_times_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, baseline()) == []
    assert feed(engine, [cam(NOW), cam(NOW + 1)]) == []
    alerts = feed(engine, [cam(NOW + 2)])
    # current 3 >= 3 * (6 * 10/60 = 1): equality fires; starts_at is the event's time.
    assert brief(alerts) == [("firing", A, NOW + 2.0, None)]
    assert alerts[0].details == {"current": 3, "baseline": 1.0, "ratio": 3.0}
    assert alerts[0].value == 3.0  # the measured quantity: the ratio


def test_does_not_fire_below_ratio(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, ratio=3.5))
    assert feed(engine, [*baseline(), cam(NOW), cam(NOW + 1), cam(NOW + 2)]) == []  # 3 < 3.5 * 1
    assert brief(feed(engine, [cam(NOW + 3)])) == [("firing", A, NOW + 3.0, None)]  # 4 >= 3.5


def test_normal_rate_does_not_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, min_count=1, ratio=2))
    # One event every 5 minutes for 10 hours: 2 per window, baseline 12 * 10/60 = 2: ratio 1.
    assert feed(engine, [cam(300 * i) for i in range(120)]) == []


def test_a_key_is_judged_once_its_history_covers_the_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    # In the bucket T0+68m the baseline window starts at T0-1m, before the key's first event.
    assert feed(engine, [*baseline(), cam(NOW - 60), cam(NOW - 59), cam(NOW - 58)]) == []
    # From T0+69m the baseline [T0, T0+60m) is covered: 4 >= 3 * 1.
    assert brief(feed(engine, [cam(NOW)])) == [("firing", A, float(NOW), None)]


def test_a_new_key_does_not_fire_without_history(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [cam(10 * i) for i in range(50)]) == []


def test_alert_on_new_data_judges_new_keys_with_an_empty_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, alert_on_new_data=True))
    assert feed(engine, [cam(0), cam(10)]) == []
    alerts = feed(engine, [cam(20)])
    # Baseline 0: min_count events are a spike; the ratio is undefined (null).
    assert brief(alerts) == [("firing", A, 20.0, None)]
    assert alerts[0].details == {"current": 3, "baseline": 0.0, "ratio": None}
    assert alerts[0].value is None  # no ratio to an empty baseline


def test_an_old_key_with_an_empty_baseline_fires_on_min_count(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, [cam(-7200)])  # seen two hours before: its history covers the baseline
    assert feed(engine, [cam(NOW), cam(NOW + 1)]) == []
    alerts = feed(engine, [cam(NOW + 2)])
    assert alerts[0].details == {"current": 3, "baseline": 0.0, "ratio": None}


def test_keys_are_separate(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, baseline(A) + baseline(B))
    alerts = feed(engine, [cam(NOW, A), cam(NOW + 1, B), cam(NOW + 2, A), cam(NOW + 3, B), cam(NOW + 4, A)])
    assert brief(alerts) == [("firing", A, NOW + 4.0, None)]


def test_where_filters_events(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, where="event_type == 'red_light'"))
    feed(engine, baseline())
    # no_helmet and heartbeats are not counted.
    assert feed(engine, [cam(NOW), cam(NOW + 1, event_type="no_helmet"), cam(NOW + 2, event_type="heartbeat")]) == []
    assert state_of(engine)["cur"][0] == 1
    assert brief(feed(engine, [cam(NOW + 3), cam(NOW + 4)])) == [("firing", A, NOW + 4.0, None)]


# -- resolution ------------------------------------------------------------------------------


def spiked(engine: Engine) -> list[Alert]:
    """Baseline 1, then 3 events at NOW: firing from NOW+2."""
    alerts = feed(engine, [*baseline(), cam(NOW, id="s1"), cam(NOW + 1, id="s2"), cam(NOW + 2, id="s3")])
    assert brief(alerts) == [("firing", A, NOW + 2.0, None)]
    return alerts


def test_resolves_by_timer_when_the_spike_leaves_the_current_window(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    spiked(engine)
    # At 70m the bucket T0 leaves the baseline (3 vs 3 * 5/6: still firing); at 79m the
    # spike's bucket leaves the current window: current 0, resolved then.
    # The watermark must pass the deadline: reaching it is not enough.
    assert engine.advance("camera", T0 + 4740) == []
    assert state_of(engine)["firing"]
    alerts = engine.advance("camera", T0 + 4740.5)
    assert brief(alerts) == [("resolved", A, NOW + 2.0, 4740.0)]
    assert not state_of(engine)["firing"]


def test_resolves_at_the_first_boundary_where_the_condition_fails(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    # The spike spans two buckets (68m, 69m); NOW-10 is not judged (history), NOW+1 fires.
    fired = feed(engine, [*baseline(), cam(NOW - 10), cam(NOW), cam(NOW + 1)])
    assert brief(fired) == [("firing", A, NOW + 1.0, None)]
    # At 78m the bucket 68m leaves the current window: 2 vs 3 * 6/6.
    alerts = feed(engine, [cam(6000, B)])  # another key moves the watermark
    assert brief(alerts) == [("resolved", A, NOW + 1.0, 4680.0)]


def test_a_deadline_equal_to_an_event_time_is_decided_by_the_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    spiked(engine)
    # An event of A exactly at the boundary 79m: evaluated first (current 1, baseline 8/6): resolves.
    alerts = feed(engine, [cam(4740, id="at-boundary")])
    assert brief(alerts) == [("resolved", A, NOW + 2.0, 4740.0)]
    # The timer at 4740 then finds nothing firing: no second transition.
    assert feed(engine, [cam(6000, B)]) == []


def test_event_one_second_before_the_boundary_keeps_it_firing(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    spiked(engine)
    assert feed(engine, [cam(4739)]) == []  # current 4 (bucket 69m still in), baseline 5/6
    assert state_of(engine)["firing"]
    # At 79m the bucket 69m leaves: current 1 vs 3 * 8/6: resolved by the timer.
    assert brief(feed(engine, [cam(4741, B)])) == [("resolved", A, NOW + 2.0, 4740.0)]


def test_stays_firing_while_the_spike_goes_on(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    events = [*baseline()] + [cam(NOW + 30 * i, id=f"s{i}") for i in range(40)]
    alerts = feed(engine, events)
    # At 70m: 3 >= 3 * 5/6. One episode: fired once, no duplicates, no resolve.
    assert brief(alerts) == [("firing", A, 4200.0, None)]
    assert state_of(engine)["firing"]


def test_down_fires_on_a_drop_and_resolves_when_the_baseline_drains(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, direction="down", ratio=4, min_count=6))
    normal = [cam(120 * i, id=f"n{i}") for i in range(24)]  # T0 .. T0+46m: baseline 24 * 10/60 = 4
    assert feed(engine, normal) == []
    # One event where four are normal: 1 <= 4 / 4 fires (equality).
    alerts = feed(engine, [cam(NOW, id="low")])
    assert brief(alerts) == [("firing", A, float(NOW), None)]
    assert alerts[0].details == {"current": 1, "baseline": 4.0, "ratio": 0.25}
    # At 70m the bucket T0 leaves the baseline: 1 * 4 > 23 * 10/60: resolved.
    assert engine.advance("camera", T0 + 4200) == []
    assert brief(engine.advance("camera", T0 + 4201)) == [("resolved", A, float(NOW), 4200.0)]


def test_down_needs_min_count_in_the_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, direction="down", ratio=4, min_count=25))
    feed(engine, [cam(120 * i) for i in range(24)])
    assert feed(engine, [cam(NOW)]) == []


def test_down_does_not_fire_at_a_normal_rate(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, direction="down", ratio=2, min_count=1))
    assert feed(engine, [cam(300 * i) for i in range(120)]) == []


# -- aggregates ------------------------------------------------------------------------------


def test_avg_of_a_field(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, agg="avg", field="speed_kmh", ratio=1.5, min_count=2,
                                where="event_type == 'speeding'"))
    normal = [cam(t, event_type="speeding", speed_kmh=40.0) for t in BASELINE_TIMES]
    assert feed(engine, normal) == []
    assert feed(engine, [cam(NOW, event_type="speeding", speed_kmh=90.0)]) == []  # min_count 2
    # A speeding event without speed_kmh is ignored by the rule, not counted.
    assert feed(engine, [cam(NOW + 1, event_type="speeding")]) == []
    assert state_of(engine)["cur"] == [1, 90.0]
    alerts = feed(engine, [cam(NOW + 2, event_type="speeding", speed_kmh=60.0)])
    assert brief(alerts) == [("firing", A, NOW + 2.0, None)]
    assert alerts[0].details == {"current": 75.0, "baseline": 40.0, "ratio": 1.875}


def test_avg_never_fires_without_a_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, agg="avg", field="speed_kmh", ratio=1.5, min_count=1,
                                alert_on_new_data=True))
    assert feed(engine, [cam(t, speed_kmh=120.0) for t in (0, 10, 20)]) == []
    assert state_of(engine)["cur"] == [3, 360.0]


def test_sum_of_a_field_is_normalised(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, agg="sum", field="count", ratio=3, min_count=1,
                                where="event_type == 'crowd'"))
    crowd = [cam(t, event_type="crowd", count=60) for t in BASELINE_TIMES]  # 360 * 10/60 = 60
    assert feed(engine, crowd) == []
    assert feed(engine, [cam(NOW, event_type="crowd", count=179)]) == []
    alerts = feed(engine, [cam(NOW + 10, event_type="crowd", count=1)])
    assert alerts[0].details == {"current": 180, "baseline": 60.0, "ratio": 3.0}


# -- realert ---------------------------------------------------------------------------------


def test_realert_holds_back_a_new_episode_and_retries_at_its_end(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="5m"))
    first = spiked(engine)
    resolved = engine.advance("camera", T0 + 4741)
    assert brief(resolved) == [("resolved", A, NOW + 2.0, 4740.0)]
    # A new burst inside realert (resolved at 79m, realert until 84m): held back.
    assert feed(engine, [cam(4800 + i) for i in range(10)]) == []
    assert state_of(engine)["held"] is True
    # At 84m the condition still holds (10 vs 3 * 7/6): the runtime's retry fires it then.
    alerts = feed(engine, [cam(5041, B)])
    assert brief(alerts) == [("firing", A, 5040.0, None)]
    base = 7 * 600.0 / 3600.0
    assert alerts[0].details == {"current": 10, "baseline": base, "ratio": 10 / base}
    # Rendered from the last held event of A (its district), not from B's event.
    assert alerts[0].summary.startswith(f"Camera {A} (Phú Nhuận)")
    assert alerts[0].alert_id != first[0].alert_id
    assert state_of(engine)["held"] is False


def test_realert_retry_does_not_fire_when_the_spike_is_over(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    spiked(engine)
    engine.advance("camera", T0 + 4741)
    assert feed(engine, [cam(4800 + i) for i in range(10)]) == []
    # Retry at 79m + 30m: the burst left the current window at 90m.
    assert engine.advance("camera", T0 + 6541) == []
    # A later burst fires normally.
    alerts = feed(engine, [cam(7000 + i) for i in range(10)])
    assert [a.status for a in alerts] == ["firing"]


# -- time: lateness, out of order ------------------------------------------------------------


def test_out_of_order_event_within_lateness_counts_and_fires_at_the_key_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=120.0)
    feed(engine, [*baseline(), cam(NOW), cam(NOW + 40)])
    alerts = feed(engine, [cam(NOW + 20)])  # watermark NOW-80: not late
    assert engine.last_stats.late == 0
    # Evaluated at the key's time (NOW+40), never before its last evaluation.
    assert brief(alerts) == [("firing", A, NOW + 40.0, None)]


def test_late_event_beyond_lateness_is_not_counted(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, [*baseline(), cam(NOW), cam(NOW + 40)])
    assert feed(engine, [cam(NOW + 20)]) == []
    assert engine.last_stats.late == 1
    assert state_of(engine)["cur"][0] == 2
    assert brief(feed(engine, [cam(NOW + 41)])) == [("firing", A, NOW + 41.0, None)]


def test_out_of_order_event_into_the_baseline_raises_the_baseline(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=7200.0)
    feed(engine, [*baseline(), cam(NOW), cam(NOW + 1)])
    assert feed(engine, [cam(100, id="old")]) == []  # into bucket T0+1m: baseline 7/6
    state = state_of(engine)
    assert [b[0] - T0 for b in state["b"]] == [0, 60, 600, 1200, 1800, 2400, 3000, NOW]
    assert state["nb"] == 7
    assert state["base"][0] == 7
    assert feed(engine, [cam(NOW + 2)]) == []  # 3 < 3 * 7/6
    assert brief(feed(engine, [cam(NOW + 3)])) == [("firing", A, NOW + 3.0, None)]


def test_out_of_order_event_older_than_the_baseline_is_dropped(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=86400.0)
    feed(engine, [cam(7200), cam(7210)])
    feed(engine, [cam(0)])  # older than the baseline [T0+51m, T0+1h51m) of bucket T0+2h
    state = state_of(engine)
    assert [b[0] - T0 for b in state["b"]] == [7200]
    assert (state["cur"], state["base"]) == ([2, 0], [0, 0])
    assert state["since"] == T0  # but the key's history starts there


def test_buckets_are_pruned_to_the_two_windows(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, min_count=1000))
    feed(engine, [cam(7 * i) for i in range(3000)])  # ~5.8 hours, one bucket per minute
    state = state_of(engine)
    assert len(state["b"]) == 70  # 10m + 1h of 1m buckets
    assert state["cur"][0] + state["base"][0] == sum(b[1] for b in state["b"])
    assert [b[0] for b in state["b"]] == sorted(b[0] for b in state["b"])


def test_bucket_boundaries_follow_the_bucket_field(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, bucket="5m", min_count=1))
    feed(engine, [cam(0), cam(299), cam(300), cam(301)])
    assert [[b[0] - T0, b[1]] for b in state_of(engine)["b"]] == [[0, 2], [300, 2]]


# -- the alert record ------------------------------------------------------------------------


def test_alert_record(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, severity="critical", sla={"ack": "15m"}))
    fired = spiked(engine)
    resolved = engine.advance("camera", T0 + 4741)
    f, r = fired[0].to_record(), resolved[0].to_record()
    assert f["rule_id"] == RULE_ID and f["kind"] == "spike" and f["stream"] == "camera"
    assert f["key"] == {"source_id": A}
    assert f["severity"] == "critical" and f["labels"] == {"domain": "traffic"}
    assert f["details"] == {"current": 3, "baseline": 1.0, "ratio": 3.0}
    assert f["value"] == 3.0
    # `{value}` is the ratio (it rendered the whole mapping when the value was the mapping).
    assert f["summary"] == f"Camera {A} (Phú Nhuận): vi phạm tăng đột biến, 3.0"
    assert f["starts_at"] == "2025-10-27T02:09:02Z" and f["ends_at"] is None
    assert f["sla"] == {"ack_by": "2025-10-27T02:24:02Z"}
    assert f["evidence"] == ["s3"]
    assert (r["status"], r["ends_at"]) == ("resolved", "2025-10-27T02:19:00Z")
    for name in ("fingerprint", "alert_id", "starts_at", "summary", "value", "key"):
        assert f[name] == r[name], name
    assert orjson.loads(fired[0].to_json()) == f


def test_templates_may_name_current_baseline_and_ratio(tmp_path: Path) -> None:
    summary = "{source_id} ({district}): {current} vi phạm/10 phút, bình thường {baseline:.1f}, gấp {ratio:.1f} lần"
    engine = engine_of(one_rule(tmp_path, summary=summary, description="{ratio}"))
    alerts = spiked(engine)
    assert alerts[0].summary == f"{A} (Phú Nhuận): 3 vi phạm/10 phút, bình thường 1.0, gấp 3.0 lần"
    assert alerts[0].description == "3.0"


def test_template_ratio_of_an_empty_baseline_renders_as_unknown(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, summary="{current}/{baseline}: x{ratio}", alert_on_new_data=True))
    alerts = feed(engine, [cam(0), cam(1), cam(2)])
    assert alerts[0].summary == "3/0.0: x?"


def test_realert_retry_renders_the_templates_at_its_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="5m", summary="{source_id} {district} {current} {ratio:.2f}"))
    spiked(engine)
    engine.advance("camera", T0 + 4741)
    feed(engine, [cam(4800 + i) for i in range(10)])
    alerts = feed(engine, [cam(5041, B)])
    assert alerts[0].summary == f"{A} Phú Nhuận 10 {10 / (7 * 600.0 / 3600.0):.2f}"


# -- build-time validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"window": "90s"}, "bucket: bucket '1m' (the default: window/10 or 1m, whichever is larger)"
                            " must divide window '1m30s'; set bucket to a duration that divides both"),
        ({"window": "1h", "bucket": "7m"}, "bucket: bucket '7m' must divide window '1h'"),
        ({"window": "1h", "baseline": "1h5m", "bucket": "10m"}, "bucket: bucket '10m' must divide baseline '1h5m'"),
        ({"bucket": "1.5s"}, "bucket: bucket '1.5s' must be a whole number of seconds"),
        ({"window": "1h", "baseline": "30d", "bucket": "1m"},
         "bucket: bucket '1m' makes window + baseline 43260 buckets (at most 20000: use a larger bucket)"),
        ({"window": 0}, "window: '0s' must be more than 0 (e.g. 1h)"),
        ({"ratio": 1}, "ratio: 1.0 must be a number more than 1"),
        ({"ratio": "high"}, "ratio: 'high': Input should be a valid number"),
        ({"min_count": 0}, "min_count: 0 must be at least 1"),
        ({"agg": "sum"}, "field: required with agg sum (the event field or expression to sum)"),
        ({"field": "speed_kmh"}, "field: is only used with agg sum or avg (agg is count)"),
        ({"agg": "avg", "field": "speed"}, "field: unknown field 'speed'"),
        ({"agg": "p95", "field": "speed_kmh"}, "agg: 'p95' is not allowed (allowed: count, sum, avg)"),
        ({"direction": "sideways"}, "direction: 'sideways' is not allowed (allowed: up, down)"),
        ({"window": None}, "window: required field is missing"),
        ({"baseline": "a week"}, "baseline: 'a week' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)"),
        ({"value": "count"}, "value: is not used by kind 'spike' (the value is the ratio current/baseline)"),
        ({"summary": "{curent}"}, "summary: unknown field 'curent'"),
    ],
)
def test_build_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    text = load_error(tmp_path, **fields)
    assert text.startswith(f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': ")
    assert message in text


def test_default_bucket_is_a_tenth_of_a_long_window(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, window="1h", baseline="7d")
    kind = rules.rules[0].kind
    assert isinstance(kind, SpikeRule)
    assert kind.bucket == 360.0
    short = one_rule(tmp_path, window="30s", baseline="1h")
    assert isinstance(short.rules[0].kind, SpikeRule)
    assert short.rules[0].kind.bucket == 30.0  # never longer than the window


def test_press_topic_mentions_keyed_by_a_topic(tmp_path: Path) -> None:
    text = (
        "rules:\n"
        "  - {id: press.topic.spike, stream: press, kind: spike, key: [source_id, lang], window: 1h, baseline: 1d,"
        " ratio: 4, min_count: 5, where: \"contains(topics, 'lũ lụt')\", summary: '{source_id} {value}'}\n"
    )
    engine = engine_of(make_rules(tmp_path, text))
    out: list[Alert] = []
    for i in range(24):  # one mention an hour for a day
        out += engine.process("press", [decode("press", {"source_id": "huengaynay.vn", "ts": T0 + 3600 * i,
                                                         "lang": "vi", "topics": ["lũ lụt"]})])
    for i in range(5):  # bucket 6m; at T0+24h54m the baseline window is [T0, T0+24h)
        out += engine.process("press", [decode("press", {"source_id": "huengaynay.vn", "ts": T0 + 89640 + 60 * i,
                                                         "lang": "vi", "topics": ["lũ lụt", "thời tiết"]})])
    assert [(a.status, a.key) for a in out] == [("firing", {"source_id": "huengaynay.vn", "lang": "vi"})]
    assert out[0].details == {"current": 5, "baseline": 1.0, "ratio": 5.0}


# -- determinism: snapshots and batching -----------------------------------------------------


PROPERTY_RULES = (
    "defaults: {stream: camera, kind: spike, window: 10m, baseline: 30m, where: \"event_type != 'heartbeat'\","
    " summary: '{source_id} {value}'}\n"
    "rules:\n"
    "  - {id: p.up, ratio: 2, min_count: 2}\n"
    "  - {id: p.up.new, ratio: 3, min_count: 3, alert_on_new_data: true}\n"
    "  - {id: p.up.realert, ratio: 2, min_count: 2, realert: 5m, bucket: 2m}\n"
    "  - {id: p.down, direction: down, ratio: 2, min_count: 2}\n"
    "  - {id: p.avg, agg: avg, field: speed_kmh, ratio: 1.5, min_count: 1}\n"
)


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@st.composite
def streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    keys = draw(st.lists(st.sampled_from([A, B, C]), min_size=1, max_size=3, unique=True))
    steps = [0, 1, 5, 59, 60, 61, 120, 300, 600, 1200, 1800]
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=60, steps=steps, clamp=True,
                                                late=None if ordered else (-300, 900))):
        kind = draw(st.sampled_from(["red_light", "red_light", "speeding", "heartbeat"]))
        speed = draw(st.sampled_from([None, 30.0, 50.0, 120.0]))
        raw: dict[str, Any] = {"source_id": key, "ts": T0 + t, "event_type": kind, "id": f"e{i}"}
        if speed is not None:
            raw["speed_kmh"] = speed
        pairs.append((part, decode("camera", raw)))
    return pairs


@batching_settings(300)
@given(pairs=streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 120.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="camera", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="camera", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="camera", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert whole_engine.states == split_engine.states
    if len({part for part, _ in pairs}) == 1:
        assert summary_of(split) == summary_of(whole)


@batching_settings(200)
@given(pairs=streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 60.0, 600.0]))
def test_batching_does_not_change_alerts_with_out_of_order_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="camera", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="camera", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states
    for alert in whole:
        assert alert.ends_at is None or alert.ends_at >= alert.starts_at


def test_property_rules_do_fire_and_resolve(property_rules: RuleSet) -> None:
    # The property tests compare something: these streams make every rule transition.
    def speeding(source: str, t: float, speed: float) -> dict[str, Any]:
        return decode("camera", {"source_id": source, "ts": T0 + t, "event_type": "speeding", "speed_kmh": speed})

    up = [speeding(A, t, s) for t, s in [(0, 30.0), (600, 30.0), (1200, 30.0), (1800, 30.0), (2400, 120.0),
                                         (2410, 120.0), (2420, 120.0), (2430, 120.0)]]
    down = [speeding(B, 120 * i, 30.0) for i in range(21)] + [speeding(B, 3300, 30.0)]
    alerts = feed(engine_of(property_rules), sorted(up + down, key=lambda e: e["ts"]) + [speeding(C, 9000, 30.0)])
    assert {(a.rule_id, a.status) for a in alerts} == {
        (rule, status) for rule in ("p.up", "p.up.new", "p.up.realert", "p.down", "p.avg")
        for status in ("firing", "resolved")
    }


@pytest.mark.parametrize("cut", [1, 5, 8, 9, 12])
def test_snapshot_restore_mid_stream(tmp_path: Path, cut: int) -> None:
    rules = one_rule(tmp_path, realert="5m")
    events = [*baseline(), cam(NOW), cam(NOW + 1), cam(NOW + 2), cam(4800), cam(4801), cam(4802), cam(4803),
              cam(5100, B), cam(9000, B)]
    whole = feed(engine_of(rules), events)
    assert records(run_restored(feed, events, cut, rules)) == records(whole)  # the state is plain data
    assert len(whole) == 4
