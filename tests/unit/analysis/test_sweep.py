"""`ioc backtest --sweep`: each value's figures equal those of a separate, whole backtest of the
rule files changed by hand (PyYAML, not the sweep's own rewriting) to that value."""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.analysis.scoring import TruthIncident
from ioc.analysis.sweep import SweepError, figures_of, parse_sweep, run_sweep, variant
from ioc.cli.main import main
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.runtime.shards import SHARD_LIMITS
from sensors_sim.scenario import build, load_scenario

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")
START = 1761498000.0

# (sweep text without values, how to write a value into the rule's YAML dict, candidate values)
CASES: dict[str, tuple[str, Any, list[str]]] = {
    "near_nwl.condition": ("reservoir.level.near_nwl.condition",
                           lambda rule, v: rule.update(condition=f"level_m >= nwl_m - {v}"), ["0.1", "0.5", "1", "3"]),
    "near_nwl.for": ("reservoir.level.near_nwl.for",
                     lambda rule, v: rule.update({"for": f"{v}"}), ["5m", "10m", "1h", "3h"]),
    "bruteforce.condition": ("cyber.auth.bruteforce.condition",
                             lambda rule, v: rule.update(condition=f"value >= {v}"), ["3", "8", "12", "40"]),
    "bruteforce.window": ("cyber.auth.bruteforce.window",
                          lambda rule, v: rule.update(window=v), ["30s", "2m", "10m"]),
    # Keyed by [src_ip, dst_ip]: it runs in the key space of src_ip when the other rules are there.
    "portscan.condition": ("cyber.net.portscan.condition",
                           lambda rule, v: rule.update(condition=f"value >= {v}"), ["3", "10", "50"]),
}


@pytest.fixture(scope="module")
def history() -> tuple[list[RawEvent], list[TruthIncident]]:
    """A day of the flood scenario and four hours of the cyber campaign, with their ground truth."""
    events: list[RawEvent] = []
    truth: list[TruthIncident] = []
    for name, hours in (("flood", 24), ("cyber-campaign", 4)):
        run = build(load_scenario(name), seed=1, start=START, duration_s=hours * 3600.0)
        events += [RawEvent(stream, orjson.dumps({"stream": stream, **event}), name)
                   for stream, event in run.events() if stream in ("reservoir", "cyber")]
        truth += [TruthIncident.from_record(incident.to_record()) for incident in run.incidents]
    return events, truth


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules([REPO_ROOT / "rules"], REFERENCE)


def _by_hand(folder: Path, rule_id: str, changes: list[tuple[Any, str]]) -> RuleSet:
    """The shipped rules, with `rule_id` changed by `changes`, written and loaded again."""
    target = folder / "rules"
    shutil.copytree(REPO_ROOT / "rules", target, dirs_exist_ok=True)
    for path in target.glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for rule in document.get("rules") or ():
            if rule.get("id") == rule_id:
                for write, value in changes:
                    write(rule, value)
                path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_rules([target], REFERENCE)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(st.sampled_from(sorted(CASES)), min_size=1, max_size=2, unique=True), data=st.data(),
       workers=st.sampled_from([1, 2]), partitions=st.sampled_from([1, 4]), keys=st.sampled_from([None, 2]))
def test_each_value_gives_the_figures_of_a_whole_backtest(
    history: tuple[list[RawEvent], list[TruthIncident]], shipped: RuleSet, tmp_path_factory: pytest.TempPathFactory,
    cases: list[str], data: st.DataObject, workers: int, partitions: int, keys: int | None,
) -> None:
    """Whatever the partitions and however tight the key limit: a swept rule runs where the whole
    rule set would run it (its key space), so it refuses the same keys."""
    events, truth = history
    limits = SHARD_LIMITS if keys is None else dataclasses.replace(SHARD_LIMITS, keys_per_rule=keys)
    chosen = {name: data.draw(st.lists(st.sampled_from(CASES[name][2]), min_size=1, max_size=2, unique=True))
              for name in cases}
    sweeps = [parse_sweep(f"{CASES[name][0]}={','.join(values)}", shipped) for name, values in chosen.items()]
    points = run_sweep(shipped, sweeps, events, truth=truth, workers=workers, partitions=partitions, limits=limits)
    assert len(points) == len(list(_grid(chosen)))
    for point, written in zip(points, _grid(chosen), strict=True):
        for sweep in sweeps:
            mine = [(CASES[name][1], value) for name, value in written.items() if CASES[name][0].startswith(
                sweep.rule_id + ".")]
            whole = _by_hand(tmp_path_factory.mktemp("rules"), sweep.rule_id, mine)
            result = run_backtest(whole, events, partitions=partitions, limits=limits)
            assert point.figures[sweep.rule_id] == figures_of(whole.by_id[sweep.rule_id], result, truth)


def _grid(chosen: dict[str, list[str]]) -> list[dict[str, str]]:
    names = list(chosen)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(chosen[n] for n in names))]


def test_the_current_value_is_marked_and_figures_are_known(history: tuple[list[RawEvent], list[TruthIncident]],
                                                           shipped: RuleSet) -> None:
    events, truth = history
    sweep = parse_sweep("cyber.auth.bruteforce.condition=4..12/4", shipped)
    assert (sweep.values, sweep.current, sweep.nth) == ((4.0, 8.0, 12.0), 8.0, 1)
    points = run_sweep(shipped, [sweep], events, truth=truth, workers=1)
    assert [point.current for point in points] == [False, True, False]
    figures = [point.figures["cyber.auth.bruteforce"] for point in points]
    assert figures[0].episodes >= figures[1].episodes >= figures[2].episodes
    assert figures[1].incidents >= 1 and figures[1].recall == 1.0 and figures[1].detect_s is not None


@pytest.mark.parametrize(("text", "message"), [
    ("reservoir.level.near_nwl.fo=1..3/1", "has no field 'fo' (did you mean 'for'?"),
    ("reservoir.levle.near_nwl.for=1m", "no rule id starts"),
    ("reservoir.level.near_nwl.for", "expected RULE_ID.PARAM=FROM..TO/STEP"),
    ("reservoir.level.near_nwl.for=5m..1m/1m", "the range goes down"),
    ("reservoir.level.near_nwl.for=1m..5m", "a range needs a step"),
    ("reservoir.level.near_nwl.for=1m..5m/0s", "the step must be more than 0"),
    ("reservoir.level.near_nwl.condition[2]=1", "has only 1 number(s)"),
    ("reservoir.level.near_nwl.severity[1]=1", "severity is not an expression"),
    ("cyber.auth.bruteforce.where=1", "has no number to sweep"),
    ("reservoir.level.near_nwl.for=0..100000/1", "more than 1,000"),
])
def test_sweeps_that_cannot_run_say_why(shipped: RuleSet, text: str, message: str) -> None:
    with pytest.raises(SweepError) as info:
        parse_sweep(text, shipped)
    assert message in str(info.value)


def test_a_value_the_rule_refuses_is_a_rule_problem_before_any_replay(
    history: tuple[list[RawEvent], list[TruthIncident]], shipped: RuleSet,
) -> None:
    sweep = parse_sweep("cyber.auth.bruteforce.max_keys=5,0", shipped)
    with pytest.raises(SweepError) as info:
        run_sweep(shipped, [sweep], history[0][:10], workers=1)
    assert "rule 'cyber.auth.bruteforce' with max_keys=0" in str(info.value) and "max_keys" in str(info.value)


def test_a_duration_field_takes_seconds_and_marks_the_current_value(shipped: RuleSet) -> None:
    sweep = parse_sweep("cyber.auth.bruteforce.window=60,120", shipped)
    assert (sweep.durations, sweep.values, sweep.current) == (True, (60.0, 120.0), 120.0)
    assert [sweep.show(v) for v in sweep.values] == ["1m", "2m"]


def test_a_number_after_text_with_diacritics_is_the_one_replaced(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - id: camera.crowd.phu_xuan\n    stream: camera\n    kind: threshold\n"
        "    condition: \"district == 'Phú Xuân' and count > 50\"\n", encoding="utf-8")
    rules = load_rules([tmp_path], REFERENCE)
    sweep = parse_sweep("camera.crowd.phu_xuan.condition=30,500", rules)
    assert (sweep.nth, sweep.current) == (1, 50)
    assert [variant(rules, [sweep], [v]).by_id["camera.crowd.phu_xuan"].spec.condition  # type: ignore[attr-defined]
            for v in sweep.values] == ["district == 'Phú Xuân' and count > 30",
                                       "district == 'Phú Xuân' and count > 500"]


def test_numbers_of_an_expression_and_their_labels(shipped: RuleSet) -> None:
    sweep = parse_sweep("reservoir.level.near_nwl.condition[1]=0.25", shipped)
    assert (sweep.label, sweep.nth, sweep.current) == ("condition[1]", 1, 0.5)
    with pytest.raises(SweepError, match="no values to sweep"):
        parse_sweep("reservoir.level.near_nwl.condition=,", shipped)


def test_cli_prints_the_table_and_writes_figures_and_the_report(
    history: tuple[list[RawEvent], list[TruthIncident]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    events, truth = history
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(bytes(row.body) + b"\n" for row in events if row.stream == "cyber"))  # type: ignore[arg-type]
    truth_path = tmp_path / "truth.jsonl"
    truth_path.write_bytes(b"".join(orjson.dumps({**vars(i), "start": i.start, "end": i.end}) + b"\n" for i in truth))
    out, report = tmp_path / "sweep.jsonl", tmp_path / "sweep.html"
    code = main(["backtest", "--events", str(path), "--truth", str(truth_path), "--out", str(out), "--report",
                 str(report), "--sweep", "cyber.auth.bruteforce.condition=4,8", "--workers", "2"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "sweep of cyber.auth.bruteforce" in printed and "8 *" in printed and "recall" in printed
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["values"]["cyber.auth.bruteforce.condition"] for r in records] == [4.0, 8.0]
    assert [r["current"] for r in records] == [False, True]
    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 and "cyber.auth.bruteforce" in html


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("", encoding="utf-8")
    code = main(["backtest", "--events", str(path), "--sweep", "reservoir.level.near_nwl.condition[3]=1"])
    assert code == 1
    assert "condition (" in capsys.readouterr().err



def test_a_rule_that_shares_a_key_space_is_swept_in_it(history: tuple[list[RawEvent], list[TruthIncident]],
                                                       shipped: RuleSet) -> None:
    """cyber.net.portscan ([src_ip, dst_ip]) runs in the key space of src_ip beside the other
    cyber rules: alone it would have a space of its own, spread over 4 partitions another way,
    and with 2 keys per rule and partition it would refuse other keys."""
    events, truth = history
    limits = dataclasses.replace(SHARD_LIMITS, keys_per_rule=2)
    [point] = run_sweep(shipped, [parse_sweep("cyber.net.portscan.condition=50", shipped)], events, truth=truth,
                        workers=1, partitions=4, limits=limits)
    assert point.current  # 50: the shipped rule as it is
    whole = run_backtest(shipped, events, partitions=4, limits=limits)
    assert point.figures["cyber.net.portscan"] == figures_of(shipped.by_id["cyber.net.portscan"], whole, truth)
