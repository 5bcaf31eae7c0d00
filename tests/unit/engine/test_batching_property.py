"""Property: for random event streams, the alerts do not depend on how events are batched, and
they are identical to `ioc backtest` over the same events (every kind together)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kindtest import T0, make_rules, per_fingerprint

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.engine import Engine
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.timeutil import format_ts

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")

RULES = """
rules:
  - {id: p.threshold, stream: reservoir, kind: threshold, condition: "level_m >= nwl_m - 0.5", for: 10m,
     where: "nwl_m is not None", keep_firing_for: 5m, realert: 15m}
  - {id: p.window, stream: reservoir, kind: window, agg: max, field: rain_mm_1h, window: 30m,
     condition: "value >= 40"}
  - {id: p.tumbling, stream: reservoir, kind: window, type: tumbling, agg: count, window: 20m,
     where: "rain_mm_1h >= 30", condition: "value >= 2"}
  - {id: p.rate, stream: reservoir, kind: rate, field: level_m, window: 30m, per: 1h, condition: "value > 1"}
  - {id: p.absence, stream: reservoir, kind: absence, timeout: 25m}
  - {id: p.spike, stream: cyber, kind: spike, key: [src_ip], window: 10m, baseline: 40m, ratio: 3,
     alert_on_new_data: true}
  - {id: p.new_value, stream: cyber, kind: new_value, key: [user], field: src_ip, lookback: 1h}
  - {id: p.match, stream: cyber, kind: match, fields: [url], regex: "union\\\\s+select", fold: false}
  - {id: p.sequence, stream: cyber, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
"""

STATIONS = ("ta-trach", "binh-dien", "kim-long")
IPS = ("192.0.2.1", "192.0.2.2", "198.51.100.7")
USERS = ("lan", "minh")


def reservoir_event(draw: st.DrawFn, ts: float) -> tuple[str, dict[str, object]]:
    station = draw(st.sampled_from(STATIONS))
    base = {"ta-trach": 44.0, "binh-dien": 84.0, "kim-long": 1.0}[station]
    return "reservoir", {
        "source_id": station, "ts": format_ts(ts),
        "level_m": round(base + draw(st.floats(0.0, 1.5)), 2),
        "rain_mm_1h": draw(st.sampled_from([0.0, 10.0, 35.0, 45.0])),
    }


def cyber_event(draw: st.DrawFn, ts: float) -> tuple[str, dict[str, object]]:
    return "cyber", {
        "source_id": "soc-fw-01", "ts": format_ts(ts), "event_action": "authentication",
        "event_outcome": draw(st.sampled_from(["failure", "failure", "success"])),
        "src_ip": draw(st.sampled_from(IPS)), "user": draw(st.sampled_from(USERS)),
        "url": draw(st.sampled_from(["/login", "/news?id=1 UNION  SELECT pass", "/"])),
    }


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[str, dict[str, object]]]:
    count = draw(st.integers(5, 60))
    ts, rows = T0, []
    for _ in range(count):
        ts += draw(st.sampled_from([0, 60, 300, 600, 1200]))
        maker = reservoir_event if draw(st.booleans()) else cyber_event
        rows.append(maker(draw, ts))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=streams(), cuts=st.lists(st.integers(1, 7), min_size=1, max_size=30))
def test_batches_and_backtest_agree(tmp_path_factory, rows, cuts) -> None:  # type: ignore[no-untyped-def]
    ruleset = make_rules(tmp_path_factory.mktemp("rules"), RULES, REFERENCE, name="p.yaml")

    backtest = run_backtest(ruleset, [RawEvent(stream, dict(body), "x") for stream, body in rows])

    engine = Engine(ruleset)
    streamed = []
    index, cut = 0, 0
    while index < len(rows):
        size = cuts[cut % len(cuts)]
        cut += 1
        # A batch holds events of one stream (as a fetched batch of one topic does).
        stream = rows[index][0]
        batch = []
        while index < len(rows) and len(batch) < size and rows[index][0] == stream:
            batch.append(decode(stream, dict(rows[index][1])))
            index += 1
        streamed += engine.process(stream, batch)

    # Per fingerprint, in order: alerts of different keys decided at one event time may come in
    # any order (the backtest runs each partition and key space apart).
    assert per_fingerprint(streamed) == per_fingerprint(backtest.alerts)
