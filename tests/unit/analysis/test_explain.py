"""`ioc explain`: alerts of every kind, explained by replaying their rule, show the events that
made them fire, and each substituted condition re-evaluates to true (issue 18, acceptance 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.alerts import Alert
from ioc.analysis.backtest import run_backtest
from ioc.analysis.explain import ExplainError, Explanation, explain_alert
from ioc.analysis.explain.sources import events_from_files, records_from_file
from ioc.cli.main import main
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.expr import compile_expression
from ioc.rules.kinds import RULE_KINDS
from ioc.rules.loader import RuleSet, load_rules
from ioc.rules.render import readable, substitute, with_threshold
from sensors_sim.scenario import build, load_scenario

START = 1761498000.0
DAY = 86400.0
KINDS = tuple(RULE_KINDS)


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))


def _hand_made() -> Iterator[tuple[str, dict[str, Any]]]:
    """What the scenarios do not show: a user's login from a new address after a week of the same
    one (new_value), and a dam's seepage jumping after a week of steady readings (spike); a month
    after the scenarios, so that their readings of the same reservoir do not mix in."""
    start = START + 30 * DAY
    for day in range(9):
        ts = start + day * DAY
        yield "cyber", {"source_id": "vpn-1", "ts": ts, "event_action": "authentication", "event_outcome": "success",
                        "user": "nva", "src_ip": "10.0.0.5" if day < 8 else "203.0.113.9", "host": "vpn"}
    for i in range(8 * 48):
        yield "reservoir", {"source_id": "ta-trach", "ts": start + i * 1800.0, "level_m": 40.0,
                            "seepage_lps": 10.0}
    for k in range(1, 5):  # four readings in the next hour at twice the week's seepage
        yield "reservoir", {"source_id": "ta-trach", "ts": start + 8 * DAY + k * 900.0,
                            "level_m": 40.0, "seepage_lps": 20.0}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Event files (one per scenario) as `ioc simulate --out` and a backtest read them."""
    folder = tmp_path_factory.mktemp("history")
    for name, hours in (("storm-day", 12), ("flood", 24), ("sea", 16)):
        run = build(load_scenario(name), seed=1, start=START, duration_s=hours * 3600.0)
        lines = [orjson.dumps({"stream": stream, **event}) for stream, event in run.events()]
        (folder / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    made = [orjson.dumps({"stream": stream, **event}) for stream, event in _hand_made()]
    (folder / "hand-made.jsonl").write_bytes(b"\n".join(made) + b"\n")
    return folder


@pytest.fixture(scope="module")
def backtest(shipped: RuleSet, history: Path) -> tuple[list[Alert], Path]:
    from ioc.analysis.backtest import read_events

    result = run_backtest(shipped, read_events([history]), partitions=4)
    out = history.parent / "alerts.jsonl"
    out.write_bytes(b"".join(alert.to_json() + b"\n" for alert in result.alerts))
    return result.alerts, out


@pytest.fixture(scope="module")
def explained(shipped: RuleSet, history: Path, backtest: tuple[list[Alert], Path]) -> dict[str, Explanation]:
    """One explanation per shipped rule that fired: its first episode."""
    alerts, out = backtest
    prepared = events_from_files([history])
    found: dict[str, Explanation] = {}
    for alert in alerts:
        if alert.status != "firing" or alert.rule_id in found:
            continue
        records = records_from_file(out, alert.alert_id)
        found[alert.rule_id] = explain_alert(records, shipped, prepared, source=str(out), partitions=4)
    return found


def test_alerts_of_every_kind_are_explained(explained: dict[str, Explanation]) -> None:
    assert {exp.kind for exp in explained.values()} == set(KINDS)


def test_the_replay_reproduces_each_alert_id(explained: dict[str, Explanation]) -> None:
    for rule_id, exp in explained.items():
        assert exp.reproduced, (rule_id, exp.warnings)
        assert exp.record["alert_id"] in exp.replayed_ids
        assert not exp.warnings, rule_id


def test_each_substituted_condition_re_evaluates_to_true(explained: dict[str, Explanation]) -> None:
    for rule_id, exp in explained.items():
        assert exp.checks, rule_id
        for item in exp.checks:
            assert item.substituted is not None, (rule_id, item)
            # Only literals are left: nothing to read from an event or reference row.
            assert compile_expression(item.substituted, ())({}, {}) is True, (rule_id, item.substituted)
            assert item.holds is True


def test_each_explanation_shows_the_triggering_events_where_they_are(
    explained: dict[str, Explanation], history: Path
) -> None:
    lines = {path.name: path.read_text(encoding="utf-8").splitlines() for path in history.iterdir()}
    for rule_id, exp in explained.items():
        assert exp.events, rule_id
        for event in exp.events:
            file, _, line = event.where.rpartition(":")
            # The line the explanation names holds that very event.
            body = orjson.loads(lines[Path(file).name][int(line) - 1])
            assert body["ts"] == pytest.approx(event.ts) or isinstance(body["ts"], str), (rule_id, event)
            for name, value in event.fields.items():
                if name in body and name != "ts":  # ts: compared above (a file may write it as text)
                    assert body[name] == value, (rule_id, name)


def test_a_threshold_shows_its_values_held_for_since(explained: dict[str, Explanation]) -> None:
    exp = explained["reservoir.level.near_nwl"]
    (item,) = exp.checks
    level, nwl = item.values["level_m"], item.values["nwl_m"]
    assert item.readable == f"level_m {level} >= nwl_m - 0.5 = {nwl - 0.5}"
    assert "held for 10m since" in item.note
    assert exp.condition == f"level_m >= {nwl - 0.5}"
    assert exp.events[-1].role == "trigger" and exp.events[-1].fields["level_m"] == level


def test_kind_details(explained: dict[str, Explanation]) -> None:
    def detail(rule_id: str, label: str) -> str:
        return next(d.text for d in explained[rule_id].details if d.label == label)

    assert "avg of rain_mm_1h * 3 over the hopping window [" in detail("reservoir.rain.3h_over_100mm", "aggregate")
    window = next(d for d in explained["cyber.auth.bruteforce"].details if d.label == "window")
    assert len(window.data) == explained["cyber.auth.bruteforce"].checks[0].values["value"]
    assert "in zones" in detail("vessel.port.enter", "position")
    assert "timeout 2h" in detail("vessel.vms.late", "silence")
    assert "203.0.113.9" in detail("cyber.login.new_src_ip", "new value")
    assert "ratio" in detail("reservoir.dam.seepage_high", "spike")
    sequence = explained["reservoir.sequence.rain_level_spill"]
    assert [c.label for c in sequence.checks] == ["rain", "inflow_high", "spill"] or len(sequence.checks) == 3
    assert [e.role for e in sequence.events] == [c.label for c in sequence.checks]
    story = explained["press.story.syndicated"]
    (count,) = story.checks
    # The story's items, found again in the trace: as many outlets as the check counts.
    outlets = {e.fields.get("source_id") for e in story.events}
    assert count.values["count"] == len(outlets) >= count.values["min_count"] == 5
    assert "similarity to the trigger" in detail("press.story.syndicated", "story")
    pair = explained["vessel.behaviour.encounter"]
    assert {e.fields["source_id"] for e in pair.events} == set(pair.record["key"].values())
    assert [c.label for c in pair.checks][:3] == ["distance", "within", "for"]
    assert pair.checks[0].values["limit"] == 0.5


def test_resolution_by_an_event_shows_the_false_condition(explained: dict[str, Explanation]) -> None:
    resolved = [exp for exp in explained.values() if exp.kind == "threshold" and exp.resolution is not None
                and exp.resolution.by == "event"]
    assert resolved
    for exp in resolved:
        assert exp.resolution is not None and exp.resolution.check is not None
        assert exp.resolution.check.holds is False
        assert exp.resolution.event is not None and exp.resolution.event.where


def test_a_changed_rule_is_said_plainly(shipped: RuleSet, history: Path, backtest: tuple[list[Alert], Path],
                                         tmp_path: Path) -> None:
    alerts, out = backtest
    alert = next(a for a in alerts if a.rule_id == "reservoir.level.near_nwl")
    text = (REPO_ROOT / "rules" / "reservoir.yaml").read_text(encoding="utf-8")
    (tmp_path / "reservoir.yaml").write_text(text.replace('"level_m >= nwl_m - 0.5"', '"level_m >= nwl_m - 3"'),
                                             encoding="utf-8")
    changed = load_rules([tmp_path / "reservoir.yaml"], load_reference(REPO_ROOT / "config" / "reference"))
    exp = explain_alert(records_from_file(out, alert.alert_id), changed, events_from_files([history]),
                        source="x", partitions=4)
    assert exp.rule_changed
    assert "the rule has changed since this alert" in exp.warnings[0]
    assert not exp.reproduced  # the edited rule fires earlier: another alert id, said so
    assert "does not reproduce" in exp.warnings[1]


def test_unknown_ids_say_what_was_searched_and_suggest(backtest: tuple[list[Alert], Path]) -> None:
    alerts, out = backtest
    real = alerts[0].alert_id
    with pytest.raises(ExplainError, match=rf"no alert .* in {out} .*did you mean '{real[:16]}"):
        records_from_file(out, real[:16] + "-1")


def test_cli_prints_and_writes_json(backtest: tuple[list[Alert], Path], history: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    alerts, out = backtest
    alert = next(a for a in alerts if a.rule_id == "reservoir.level.near_nwl")
    assert main(["explain", alert.alert_id, "--alerts", str(out), "--events", str(history), "--partitions", "4"]) == 0
    text = capsys.readouterr().out
    assert "reproduces this alert id" in text and "level_m" in text and "ICT" in text
    assert "\x1b[" not in text  # piped: no escape codes
    assert main(["explain", alert.alert_id, "--alerts", str(out), "--events", str(history), "--partitions", "4",
                 "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["reproduced"] and data["checks"][0]["holds"] is True
    assert data["fired_at"].endswith("Z")


def test_cli_errors(backtest: tuple[list[Alert], Path], history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts, out = backtest
    assert main(["explain", "nope", "--alerts", str(out), "--events", str(history)]) == 1
    assert "is not an alert id" in capsys.readouterr().err
    assert main(["explain", alerts[0].alert_id, "--alerts", str(out)]) == 1
    assert "--alerts needs --events" in capsys.readouterr().err
    assert main(["explain", alerts[0].alert_id, "--alerts", str(out), "--events", str(history / "none.jsonl")]) == 1
    assert "file not found" in capsys.readouterr().err


# -- the rendering ------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
EXPRESSIONS = ("a >= b - 0.5", "a ** 2 > b", "a * 2 > b + c", "(a - b) ** 2 <= c", "a > b and not c < 0",
               "abs(a - b) < c or a == b", "min(a, b) <= c", "a / b > c", "a in [1, 2, 3] or b != c")
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=300, deadline=None)
@given(text=st.sampled_from(EXPRESSIONS), values=st.fixed_dictionaries({name: numbers for name in NAMES}))
def test_a_substituted_expression_gives_the_same_truth(text: str, values: dict[str, Any]) -> None:
    expression = compile_expression(text, NAMES)
    literal = compile_expression(substitute(text, values), ())
    expected = expression.test(values)
    assert literal.test({}) == expected
    assert readable(text, values)  # always renders


def test_the_threshold_form_keeps_event_fields_and_folds_the_rest() -> None:
    assert with_threshold("level_m >= nwl_m - 0.5", {"nwl_m": 45.0}, {"level_m"}) == "level_m >= 44.5"
    assert with_threshold("level_m >= nwl_m - 0.3", {"nwl_m": 45.0}, {"level_m"}) == "level_m >= 44.7"
    assert with_threshold("value >= 8", {}, {"level_m"}) == "value >= 8"
    assert readable("len(url) > 7900", {"url": "x" * 8000}).endswith("= 8000 > 7900")


def test_records_carry_the_condition_with_its_threshold(backtest: tuple[list[Alert], Path]) -> None:
    alerts, _ = backtest
    near = next(a for a in alerts if a.rule_id == "reservoir.level.near_nwl")
    nwl = load_reference(REPO_ROOT / "config" / "reference").rows("reservoir")[near.key["source_id"]]["nwl_m"]
    assert near.to_record()["condition"] == f"level_m >= {round(nwl - 0.5, 9)}"
    window = next(a for a in alerts if a.rule_id == "cyber.auth.bruteforce")
    assert window.to_record()["condition"] == "value >= 8"
    sequence = next(a for a in alerts if a.kind == "sequence")
    assert sequence.to_record()["condition"] is None  # no single condition: its steps have theirs
