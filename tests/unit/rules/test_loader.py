"""Rule loading (ioc.rules.loader): analyst-facing errors, defaults, enabled, `ioc rules check`.

Every file in tests/files/invalid/ holds one mistake and starts with
`# expect: <message>`, `{file}` standing for the file's path. The message is what an
analyst should read: `file:line: rule 'id': field: problem (allowed: ...)`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from ioc.cli.main import main
from ioc.exceptions import IocError
from ioc.refdata import Reference, load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import RuleSet, load_rules

REPO = Path(__file__).resolve().parents[3]
RULES_DIR = REPO / "rules"
REFERENCE_DIR = REPO / "config" / "reference"
INVALID_DIR = REPO / "tests" / "files" / "invalid"
INVALID_FILES = sorted(INVALID_DIR.glob("*.yaml"))
EXPECT_PREFIX = "# expect: "


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(REFERENCE_DIR)


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(EXPECT_PREFIX), f"{path.name}: first line must be '{EXPECT_PREFIX}<message>'"
    return first.removeprefix(EXPECT_PREFIX).replace("{file}", str(path))


def load_errors(paths: list[Path], reference: Reference) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules(paths, reference)
    return [str(problem) for problem in info.value.problems]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --- one error per invalid fixture --------------------------------------------------------


def test_invalid_fixtures_cover_the_cases() -> None:
    assert len(INVALID_FILES) >= 20
    for path in INVALID_FILES:
        message = expected_message(path)
        assert message.startswith(f"{path}:"), path.name
        assert "{file}" not in message


@pytest.mark.parametrize("path", INVALID_FILES, ids=[p.stem for p in INVALID_FILES])
def test_invalid_file_reports_exactly_its_error(path: Path, reference: Reference) -> None:
    assert load_errors([path], reference) == [expected_message(path)]


def test_rule_error_is_an_ioc_error_and_lists_every_problem(reference: Reference) -> None:
    path = INVALID_DIR / "bad_severity.yaml"
    with pytest.raises(IocError) as info:
        load_rules([path], reference)
    assert isinstance(info.value, RuleError)
    assert str(info.value).splitlines() == ["1 error in the rules", expected_message(path)]


# --- every error collected -----------------------------------------------------------------

THREE_ERRORS = """
    defaults:
      stream: reservoir
      kind: threshold
    rules:
      - id: reservoir.level.near_nwl
        condition: "level_m >= nwl_m - 0.5"
        for: 10 minutes
        severity: warning
      - id: reservoir.level.at_nwl
        condition: "level_m >= nwl"
        severity: critical
      - id: gauge.level.above_bd1
        condition: "level_m >= bd1_m"
        severity: warning
        summary: "{name}: {level_m} m > BD1 {bd_1}"
"""


def test_three_errors_in_a_file_are_reported_in_line_order(tmp_path: Path, reference: Reference) -> None:
    path = write(tmp_path, "reservoir.yaml", THREE_ERRORS)
    with pytest.raises(RuleError) as info:
        load_rules([path], reference)
    problems = info.value.problems
    assert [(p.file, p.line, p.rule_id, p.field) for p in problems] == [
        (str(path), 7, "reservoir.level.near_nwl", "for"),
        (str(path), 10, "reservoir.level.at_nwl", "condition"),
        (str(path), 15, "gauge.level.above_bd1", "summary"),
    ]
    texts = [str(p) for p in problems]
    assert texts[0] == (
        f"{path}:7: rule 'reservoir.level.near_nwl': for: '10 minutes' is not a duration"
        " (e.g. 30s, 5m, 2h, 1d, 1h30m)"
    )
    assert "unknown field 'nwl'" in texts[1] and "did you mean 'nwl_m'?" in texts[1]
    assert "unknown field 'bd_1'" in texts[2]


def test_errors_in_two_files_are_all_reported(tmp_path: Path, reference: Reference) -> None:
    first = write(
        tmp_path,
        "a_reservoir.yaml",
        """
        rules:
          - id: reservoir.level.near_nwl
            stream: reservoir
            kind: threshold
            condition: "level_m >= nwl_m - 0.5"
            severity: high
    """,
    )
    second = write(
        tmp_path,
        "b_gauges.yaml",
        """
        rules:
          - id: gauge.level.above_bd2
            stream: reservoir
            kind: threshold
            condition: "level_m >= bd2_m"
            keep_firing_for: half an hour
          - id: gauge.level.above_bd3
            stream: reservoir
            kind: thresold
            condition: "level_m >= bd3_m"
    """,
    )
    with pytest.raises(RuleError) as info:
        load_rules([tmp_path], reference)
    located = [(p.file, p.line, p.rule_id, p.field) for p in info.value.problems]
    assert located == [
        (str(first), 6, "reservoir.level.near_nwl", "severity"),
        (str(second), 6, "gauge.level.above_bd2", "keep_firing_for"),
        (str(second), 9, "gauge.level.above_bd3", "kind"),
    ]


def test_schema_and_expression_errors_of_one_rule_are_both_reported(
    tmp_path: Path, reference: Reference
) -> None:
    # A bad `for` must not hide a bad condition in the same rule: the analyst fixes both at once.
    path = write(
        tmp_path,
        "reservoir.yaml",
        """
        rules:
          - id: reservoir.level.near_nwl
            stream: reservoir
            kind: threshold
            condition: "levl_m >= nwl_m - 0.5"
            for: 10 minutes
    """,
    )
    with pytest.raises(RuleError) as info:
        load_rules([path], reference)
    assert [(p.line, p.field) for p in info.value.problems] == [(5, "condition"), (6, "for")]


def test_duplicate_yaml_key_does_not_hide_other_errors(tmp_path: Path, reference: Reference) -> None:
    path = write(
        tmp_path,
        "reservoir.yaml",
        """
        rules:
          - id: reservoir.level.at_nwl
            stream: reservoir
            kind: threshold
            condition: "level_m >= nwl_m"
            for: 5m
            for: 10m
          - id: reservoir.inflow.high
            stream: reservoir
            kind: threshold
            condition: "inflow >= 2000"
    """,
    )
    with pytest.raises(RuleError) as info:
        load_rules([path], reference)
    assert [(p.line, p.rule_id, p.field) for p in info.value.problems] == [
        (7, "reservoir.level.at_nwl", "for"),
        (11, "reservoir.inflow.high", "condition"),
    ]


# --- the shipped rules -----------------------------------------------------------------------


def test_shipped_rules_load_with_reference_data(reference: Reference) -> None:
    ruleset = load_rules([RULES_DIR], reference)
    assert isinstance(ruleset, RuleSet)
    assert len(ruleset) > 0
    assert str(RULES_DIR / "reservoir.yaml") in ruleset.files
    assert "reservoir.level.near_nwl" in ruleset.by_id
    assert {rule.id for rule in ruleset.for_stream("reservoir")} >= {
        "reservoir.level.near_nwl",
        "reservoir.level.at_nwl",
        "gauge.level.above_bd3",
    }


def test_shipped_rule_ids_are_unique(reference: Reference) -> None:
    written: list[str] = []
    for path in sorted(p for p in RULES_DIR.rglob("*.yaml") if not p.name.endswith(".test.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        written.extend(rule["id"] for rule in document["rules"])
    assert written, "no rules found in rules/"
    assert len(written) == len(set(written)), sorted(i for i in written if written.count(i) > 1)
    ruleset = load_rules([RULES_DIR], reference)
    assert len(ruleset) == len(ruleset.by_id)
    assert set(ruleset.by_id) <= set(written)


# --- defaults and enabled --------------------------------------------------------------------


def test_defaults_are_merged_into_rules_and_rule_labels_win(tmp_path: Path, reference: Reference) -> None:
    path = write(
        tmp_path,
        "reservoir.yaml",
        """
        defaults:
          stream: reservoir
          kind: threshold
          severity: critical
          for: 10m
          labels: {domain: water, agency: "Sở NN&PTNT"}
        rules:
          - id: reservoir.level.at_nwl
            condition: "level_m >= nwl_m"
          - id: gauge.level.above_bd1
            condition: "level_m >= bd1_m"
            severity: warning
            for: 5m
            labels: {agency: "Đài KTTV", basin: huong}
    """,
    )
    ruleset = load_rules([path], reference)
    plain = ruleset.by_id["reservoir.level.at_nwl"].spec
    assert (plain.stream, plain.kind, plain.severity) == ("reservoir", "threshold", "critical")
    assert plain.for_ == 600.0
    assert plain.labels == {"domain": "water", "agency": "Sở NN&PTNT"}
    own = ruleset.by_id["gauge.level.above_bd1"].spec
    assert own.severity == "warning"
    assert own.for_ == 300.0
    assert own.labels == {"domain": "water", "agency": "Đài KTTV", "basin": "huong"}


def test_disabled_rules_are_left_out(tmp_path: Path, reference: Reference) -> None:
    path = write(
        tmp_path,
        "reservoir.yaml",
        """
        defaults: {stream: reservoir, kind: threshold}
        rules:
          - id: reservoir.level.near_nwl
            condition: "level_m >= nwl_m - 0.5"
            enabled: false
          - id: reservoir.level.at_nwl
            condition: "level_m >= nwl_m"
    """,
    )
    ruleset = load_rules([path], reference)
    assert [rule.id for rule in ruleset.rules] == ["reservoir.level.at_nwl"]
    assert "reservoir.level.near_nwl" not in ruleset.by_id
    assert [rule.id for rule in ruleset.for_stream("reservoir")] == ["reservoir.level.at_nwl"]
    assert len(ruleset) == 1


def test_duplicate_id_across_files_names_the_first_location(tmp_path: Path, reference: Reference) -> None:
    first = write(
        tmp_path,
        "a.yaml",
        """
        rules:
          - id: reservoir.level.at_nwl
            stream: reservoir
            kind: threshold
            condition: "level_m >= nwl_m"
    """,
    )
    second = write(
        tmp_path,
        "b.yaml",
        """
        defaults: {stream: reservoir, kind: threshold}
        rules:
          - id: reservoir.spill.started
            condition: "spill_m3s > 0"
          - id: reservoir.level.at_nwl
            condition: "level_m >= nwl_m + 1"
    """,
    )
    assert load_errors([first, second], reference) == [
        f"{second}:5: rule 'reservoir.level.at_nwl': id: duplicate rule id (first defined at {first}:2)"
    ]


# --- `ioc rules check` --------------------------------------------------------------------------


def test_rules_check_prints_every_error_and_fails(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "reservoir.yaml", THREE_ERRORS)
    expected = load_errors([path], reference)
    assert len(expected) == 3
    code = main(["rules", "check", str(path), "--reference", str(REFERENCE_DIR)])
    captured = capsys.readouterr()
    assert code == 1
    err_lines = captured.err.splitlines()
    for line in expected:
        assert line in err_lines
    assert "OK" not in captured.out


def test_rules_check_prints_a_fixture_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID_DIR / "for_not_duration.yaml"
    code = main(["rules", "check", str(path), "--reference", str(REFERENCE_DIR)])
    captured = capsys.readouterr()
    assert code == 1
    assert expected_message(path) in captured.err.splitlines()


def test_rules_check_passes_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "check", str(RULES_DIR), "--reference", str(REFERENCE_DIR)])
    captured = capsys.readouterr()
    assert code == 0
    assert "OK" in captured.out
    assert captured.err == ""


def test_a_shipped_rule_s_place_is_relative_to_the_repository_wherever_it_is_loaded_from(monkeypatch) -> None:
    import os

    from ioc.config import REPO_ROOT
    from ioc.refdata import load_reference
    from ioc.rules.loader import load_rules

    reference = load_reference(REPO_ROOT / "config" / "reference")
    absolute = load_rules([REPO_ROOT / "rules" / "reservoir.yaml"], reference).by_id["reservoir.level.near_nwl"]
    monkeypatch.chdir(REPO_ROOT)
    relative = load_rules([os.path.join("rules", "reservoir.yaml")], reference).by_id["reservoir.level.near_nwl"]
    line = (REPO_ROOT / "rules" / "reservoir.yaml").read_text(encoding="utf-8").splitlines().index(
        "  - id: reservoir.level.near_nwl") + 1
    assert absolute.place == relative.place == f"rules/reservoir.yaml:{line}"


def test_every_expression_error_of_a_rule_is_reported_at_once(tmp_path) -> None:
    from ioc.config import REPO_ROOT
    from ioc.refdata import load_reference
    from ioc.rules.exceptions import RuleError
    from ioc.rules.loader import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: a.b\n    stream: reservoir\n    kind: threshold\n"
                    "    where: \"levle_m > 0\"\n    condition: \"level_m >>= 1\"\n    value: \"lvel_m * 2\"\n",
                    encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules([path], load_reference(REPO_ROOT / "config" / "reference"))
    assert [(problem.line, problem.field) for problem in info.value.problems] == [
        (5, "where"), (6, "condition"), (7, "value")]
