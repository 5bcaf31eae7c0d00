"""Scenarios: reproducible JSONL, ground truth, and scored detection by the shipped rules."""

from __future__ import annotations

import pytest

from ioc.analysis.backtest import read_events, run_backtest
from ioc.analysis.scoring import read_truth, score_alerts
from ioc.cli.main import main
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.timeutil import format_duration
from sensors_sim.scenario import ScenarioError, build, load_scenario, scenario_names


def test_same_seed_and_scenario_give_byte_identical_files(tmp_path):
    for run in ("a", "b"):
        assert main(["simulate", "--scenario", "flood", "--seed", "5", "--bad-rate", "0.02",
                     "--out", str(tmp_path / run)]) == 0
    names = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert names == ["camera.jsonl", "ground_truth.jsonl", "press.jsonl", "reservoir.jsonl"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert main(["simulate", "--scenario", "flood", "--seed", "6", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "reservoir.jsonl").read_bytes() != (tmp_path / "a" / "reservoir.jsonl").read_bytes()


def test_every_shipped_scenario_loads_and_builds():
    assert "flood" in scenario_names()
    for name in scenario_names():
        scenario = load_scenario(name)
        run = build(scenario, seed=1, start=1761498000.0)
        assert run.incidents, name
        assert all(incident.start >= run.start for incident in run.incidents)


def test_flood_scenario_is_detected_with_recall_one_and_full_precision(tmp_path):
    assert main(["simulate", "--scenario", "flood", "--out", str(tmp_path)]) == 0
    rules = load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))
    files = sorted(p for p in tmp_path.glob("*.jsonl") if p.name != "ground_truth.jsonl")
    result = run_backtest(rules, read_events(files))
    truth = read_truth(tmp_path / "ground_truth.jsonl")
    assert len(truth) == 5
    score = score_alerts(result.alerts, truth)
    assert score.recall == 1.0
    # Outside the flood the basin is quiet: every alert episode belongs to the labelled flood.
    # (The floor is 1.0 because background traffic is designed never to cross a flood rule.)
    assert score.rules and all(rule.precision == 1.0 for rule in score.rules.values()), score.rules
    report = tmp_path / "report.html"
    args = ["backtest", "--truth", str(tmp_path / "ground_truth.jsonl"), "--report", str(report)]
    for path in files:
        args += ["--events", str(path)]
    assert main(args) == 0
    html = report.read_text(encoding="utf-8")
    assert "Recall 1.00." in html and "<h3>Precision per rule</h3>" in html
    # Each caught incident says how long after its start it was detected.
    firing = {a.alert_id: a for a in result.alerts if a.status == "firing"}
    for incident in truth:
        caught = score.caught.get(incident.id)
        if caught is not None:
            expected = format_duration(max(0.0, firing[caught].detected_at - incident.start))
            assert f"<td>{incident.id}</td>" in html and f"<td>caught</td><td>{expected}</td>" in html


def covers(incident, alert) -> bool:  # type: ignore[no-untyped-def]
    return (all(alert.key.get(k) == v for k, v in incident.keys.items())
            and incident.start <= alert.starts_at <= incident.end)


def test_flood_scenario_spill_without_notice_and_syndicated_story_are_caught_and_nothing_else_fires():
    """The two incidents of rules that need an absence step and near-duplicate text: each rule's
    alert overlaps its incident, and the rule fires nowhere else in the scenario."""
    from ioc.analysis.backtest import RawEvent
    from ioc.analysis.scoring import TruthIncident

    run = build(load_scenario("flood"), seed=1, start=1761498000.0)
    events = list(run.events())
    notices = [e for stream, e in events if stream == "reservoir" and e.get("event_type") == "spill_notice"]
    # Every reservoir but Bình Điền notified its spill.
    assert sorted(e["source_id"] for e in notices) == ["a-luoi", "huong-dien", "ta-trach"]
    rules = load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(rules, (RawEvent(stream, event, "flood") for stream, event in events))
    truth = {i.kind: TruthIncident.from_record(i.to_record()) for i in run.incidents}
    for kind, rule_id in (("spill_without_notice", "reservoir.spill.without_notice"),
                          ("syndicated_story", "press.story.syndicated")):
        incident = truth[kind]
        fired = [a for a in result.alerts if a.status == "firing" and a.rule_id == rule_id]
        mine = [a for a in fired if covers(incident, a)]
        assert len(mine) == 1, (rule_id, [a.key for a in fired])
        # Elsewhere only inside another incident that lists the rule: the flood coverage's
        # articles are near-duplicates too (sensors_sim.press.INCIDENT_RULES).
        others = [a for a in fired if a not in mine]
        assert all(any(covers(i, a) and rule_id in i.rules for i in truth.values() if i is not incident)
                   for a in others), [a.key for a in others]
    spill = [a for a in result.alerts if a.rule_id == "reservoir.spill.without_notice" and a.status == "firing"][0]
    assert spill.key == {"source_id": "binh-dien"} and spill.starts_at == truth["spill_without_notice"].start
    score = score_alerts(result.alerts, list(truth.values()))
    assert score.recall == 1.0
    assert score.rules["reservoir.spill.without_notice"].precision == 1.0
    assert score.rules["press.story.syndicated"].precision == 1.0


def test_bad_rate_adds_malformed_messages_and_keeps_every_good_event(tmp_path):
    assert main(["simulate", "--scenario", "flood", "--out", str(tmp_path / "clean")]) == 0
    assert main(["simulate", "--scenario", "flood", "--bad-rate", "0.05", "--out", str(tmp_path / "dirty")]) == 0
    clean = (tmp_path / "clean" / "reservoir.jsonl").read_bytes().splitlines()
    dirty = (tmp_path / "dirty" / "reservoir.jsonl").read_bytes().splitlines()
    added = [line for line in dirty if line not in set(clean)]
    assert [line for line in dirty if line in set(clean)] == clean  # the good events, in order
    assert len(added) > 100
    rules = load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(rules, read_events([tmp_path / "dirty" / "reservoir.jsonl"]))
    assert result.events == len(clean)
    assert sum(result.invalid.values()) == len(added)  # every injected message rejected, with a reason
    assert len(result.invalid) >= 5  # of several kinds


def test_unknown_scenario_and_bad_incident_are_clear(tmp_path, capsys):
    with pytest.raises(ScenarioError, match="no scenario 'nope' \\(available: "):
        load_scenario("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 1d\nstreams: [reservoir]\nincidents:\n"
                   "  - {stream: reservoir, kind: earthquake, at: 1h}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="incident 1 \\(reservoir earthquake\\): unknown reservoir incident"):
        build(load_scenario(bad), seed=0, start=0.0)
    assert main(["simulate", "--scenario", "nope", "--out", str(tmp_path / "x")]) == 1
    assert "no scenario 'nope'" in capsys.readouterr().err


def test_merged_events_keep_their_own_stream():
    run = build(load_scenario("storm-day"), seed=2, start=1761498000.0, duration_s=3 * 3600.0)
    seen = {}
    for stream, event in run.events():
        seen.setdefault(stream, event)
    assert set(seen) == set(run.simulators)
    assert "level_m" in seen["reservoir"] and "lat" in seen["vessel"] and "event_action" in seen["cyber"]


# Precision floor for the default scenario: every rule named by a labelled incident must be
# right at least 9 times in 10. The background of each simulator is built never to cross an
# incident rule (each simulator's tests check its background alone gives no such alert), so
# the measured precision is 1.0; the floor leaves room for one chance crossing per ten
# episodes before a change to the background or the rules is called a regression.
PRECISION_FLOOR = 0.9


def test_default_scenario_is_detected_by_the_shipped_rules():
    from ioc.analysis.backtest import RawEvent
    from ioc.analysis.scoring import TruthIncident

    run = build(load_scenario("storm-day"), seed=0, start=1761498000.0)
    rows = (RawEvent(stream, event, "storm-day") for stream, event in run.events())
    rules = load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(rules, rows)
    truth = [TruthIncident.from_record(incident.to_record()) for incident in run.incidents]
    score = score_alerts(result.alerts, truth)
    assert {incident.stream for incident in truth} == {"reservoir", "camera", "vessel", "cyber", "press"}
    assert score.recall == 1.0, [i.id for i in score.missed]
    labelled = {rule for incident in truth for rule in incident.rules}
    scored = {rule_id: rule for rule_id, rule in score.rules.items() if rule_id in labelled}
    assert len(scored) >= 15
    assert all(rule.precision >= PRECISION_FLOOR for rule in scored.values()), {
        rule_id: rule.precision for rule_id, rule in scored.items()}
