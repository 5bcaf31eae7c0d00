"""Property: for random event streams, the alerts do not depend on how events are batched, and
they are identical to `ioc backtest` over the same events (every kind together)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kindtest import make_rules, mixed_history, per_fingerprint

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.engine import Engine
from ioc.events import decode
from ioc.refdata import load_reference

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")

RULES = """
rules:
  - {id: p.threshold, stream: reservoir, kind: threshold, condition: "level_m >= nwl_m - 0.5", for: 10m,
     where: "nwl_m is not None", keep_firing_for: 5m, realert: 15m}
  - {id: p.window, stream: reservoir, kind: window, agg: max, field: rain_mm_1h, window: 30m,
     condition: "value >= 40"}
  - {id: p.tumbling, stream: reservoir, kind: window, type: tumbling, agg: count, window: 20m,
     where: "rain_mm_1h >= 30", condition: "value >= 2"}
  - {id: p.previous, stream: reservoir, kind: threshold, condition: "abs(level_m - previous.level_m) >= 0.3",
     for: 10m}
  - {id: p.active, stream: reservoir, kind: window, agg: max, field: rain_mm_1h, window: 30m,
     condition: "value >= 40", active: [{from: "2025-10-27T08:30", to: "2025-10-27T10:00"},
                                        {from: "2025-10-27T11:00", to: "2025-10-27T13:00"}]}
  - {id: p.rate, stream: reservoir, kind: rate, field: level_m, window: 30m, per: 1h, condition: "value > 1"}
  - {id: p.absence, stream: reservoir, kind: absence, timeout: 25m}
  - {id: p.spike, stream: cyber, kind: spike, key: [src_ip], window: 10m, baseline: 40m, ratio: 3,
     alert_on_new_data: true}
  - {id: p.new_value, stream: cyber, kind: new_value, key: [user], field: src_ip, lookback: 1h}
  - {id: p.match, stream: cyber, kind: match, fields: [url], regex: "union\\\\s+select", fold: false}
  - {id: p.sequence, stream: cyber, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
  - {id: p.sequence_absent, stream: cyber, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'", absent: true, within: 10m}]}
  - {id: p.sequence_absent_before, stream: cyber, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'success'", absent: true, within: 15m},
             {stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "user == 'minh'"}]}
  - {id: p.near_duplicate, stream: cyber, kind: near_duplicate, fields: [url, user], similarity: 0.6,
     within: 20m, distinct: src_ip, min_count: 2, resolve_after: 10m}
"""

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=mixed_history(most=60), cuts=st.lists(st.integers(1, 7), min_size=1, max_size=30))
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
