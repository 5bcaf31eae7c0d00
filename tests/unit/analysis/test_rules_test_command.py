"""`ioc rules test`: passing and failing rule tests, with a readable diff."""

from __future__ import annotations

import textwrap

import pytest

from ioc.analysis.rulestest import RuleTestError, run_test_file
from ioc.cli.main import main
from ioc.config import REPO_ROOT

RULE = """\
rules:
  - id: demo.high
    stream: reservoir
    kind: threshold
    condition: "level_m >= 50"
    for: 10m
"""


def _files(tmp_path, expect: str):
    (tmp_path / "demo.yaml").write_text(RULE, encoding="utf-8")
    test = tmp_path / "demo.test.yaml"
    test.write_text(textwrap.dedent(f"""\
        rule_files: [demo.yaml]
        tests:
          - name: high for 10 minutes
            start: "2025-10-27T08:00:00+07:00"
            events:
              - {{stream: reservoir, at: 0m, source_id: a, level_m: 55}}
              - {{stream: reservoir, at: 10m, source_id: a, level_m: 56}}
            expect:
{textwrap.indent(expect, " " * 14)}
        """), encoding="utf-8")
    return test


def test_a_passing_case(tmp_path):
    test = _files(tmp_path, "- {rule: demo.high, status: firing, key: {source_id: a}, starts_at: 0m, value: 56}")
    [result] = run_test_file(test)
    assert result.passed, result.problems


def test_a_failing_case_explains_the_difference(tmp_path, capsys):
    test = _files(tmp_path, "- {rule: demo.high, status: firing, starts_at: 5m}\n- {rule: demo.high, status: resolved}")
    [result] = run_test_file(test)
    assert not result.passed
    assert result.problems == [
        "transition 1: starts_at: expected 5m, got 0s (2025-10-27 08:00 ICT)",
        "expected transition 2 did not happen: demo.high resolved",
    ]
    code = main(["rules", "test", str(test)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL demo.test.yaml: high for 10 minutes" in out
    assert "expected:" in out and "actual:" in out
    assert "demo.high firing [source_id=a] starts 0s" in out
    assert "0 passed, 1 failed" in out


def test_unexpected_transitions_are_reported(tmp_path):
    test = _files(tmp_path, "[]")
    [result] = run_test_file(test)
    assert result.problems == ["unexpected transition: demo.high firing [source_id=a] starts 0s (2025-10-27 08:00 ICT)"]


def test_malformed_test_files_are_errors_not_failures(tmp_path):
    test = tmp_path / "bad.test.yaml"
    test.write_text("rule_files: [x.yaml]\ntests: {name: t}\n", encoding="utf-8")
    (tmp_path / "x.yaml").write_text(RULE, encoding="utf-8")
    with pytest.raises(RuleTestError, match=r"expected a mapping with `rule_files:` and a `tests:` list"):
        run_test_file(test)


def test_a_malformed_case_is_an_error_at_its_line_and_the_others_still_run(tmp_path, capsys):
    test = tmp_path / "bad.test.yaml"
    test.write_text(textwrap.dedent("""\
        rule_files: [x.yaml]
        tests:
          - {name: t, evnts: []}
          - name: relative without a start
            events:
              - {stream: reservoir, at: 10m, source_id: a, level_m: 1}
          - {name: fine, events: []}
        """), encoding="utf-8")
    (tmp_path / "x.yaml").write_text(RULE, encoding="utf-8")
    results = run_test_file(test)
    assert [(r.name, r.passed) for r in results] == [("t", False), ("relative without a start", False), ("fine", True)]
    assert results[0].error == (f"{test}:3: test 't': unknown key(s) evnts (allowed: advance_to, events, expect, "
                                "lateness, name, order, rules, start; did you mean 'events'?)")
    assert results[1].error is not None and results[1].error.startswith(f"{test}:4: test 'relative without a start'")
    code = main(["rules", "test", str(test)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("ERROR") == 2 and "PASS bad.test.yaml: fine" in captured.out
    assert "1 passed, 2 failed" in captured.out


def test_shipped_rule_tests_pass(capsys):
    code = main(["rules", "test", str(REPO_ROOT / "rules")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert " 0 failed" in out


def test_a_typo_in_an_expectation_names_the_unknown_key(tmp_path):
    test = _files(tmp_path, "- {rule: demo.high, status: firing, start_at: 0m}")
    [result] = run_test_file(test)
    assert result.error is not None
    assert "expect 1: unknown key(s) start_at (allowed: " in result.error
    assert result.error.endswith("did you mean 'starts_at'?)")


def test_order_as_written_lets_a_case_show_a_late_event(tmp_path):
    (tmp_path / "demo.yaml").write_text(RULE.replace("for: 10m", "for: 0s"), encoding="utf-8")
    test = tmp_path / "late.test.yaml"
    test.write_text(textwrap.dedent("""\
        rule_files: [demo.yaml]
        tests:
          - name: an event older than the watermark is late and ignored
            start: "2025-10-27T08:00:00+07:00"
            order: as_written
            events:
              - {stream: reservoir, at: 10m, source_id: a, level_m: 10}
              - {stream: reservoir, at: 5m, source_id: b, level_m: 60}
            expect: []
          - name: the same events in event-time order fire
            start: "2025-10-27T08:00:00+07:00"
            events:
              - {stream: reservoir, at: 10m, source_id: a, level_m: 10}
              - {stream: reservoir, at: 5m, source_id: b, level_m: 60}
            expect:
              - {rule: demo.high, status: firing, key: {source_id: b}, starts_at: 5m}
        """), encoding="utf-8")
    late, sorted_case = run_test_file(test)
    assert late.passed, late.problems
    assert sorted_case.passed, sorted_case.problems


def test_values_of_the_wrong_kind_and_odd_names_are_errors_of_their_case(tmp_path, capsys):
    (tmp_path / "x.yaml").write_text(RULE, encoding="utf-8")
    test = tmp_path / "odd.test.yaml"
    test.write_text(textwrap.dedent("""\
        rule_files: [x.yaml]
        tests:
          - {name: "[/x] unquoted start", start: 2025-10-27T08:00:00+07:00, events: [], expect: []}
          - {name: five events, events: 5}
          - {name: bad start, start: "yesterday"}
        """), encoding="utf-8")
    results = run_test_file(test)
    assert [(r.name, r.passed, r.error is None) for r in results] == [
        ("[/x] unquoted start", True, True), ("five events", False, False), ("bad start", False, False)]
    assert results[1].error is not None and results[1].error.startswith(f"{test}:4: test 'five events': ")
    assert results[2].error is not None and "start: ts 'yesterday' is not RFC 3339" in results[2].error
    assert main(["rules", "test", str(test)]) == 1
    assert "PASS odd.test.yaml: [/x] unquoted start" in capsys.readouterr().out


def test_a_key_written_twice_is_an_error(tmp_path):
    (tmp_path / "x.yaml").write_text(RULE, encoding="utf-8")
    test = tmp_path / "twice.test.yaml"
    test.write_text("rule_files: [x.yaml]\ntests:\n  - name: t\n    expect: []\n    expect: [1]\n", encoding="utf-8")
    with pytest.raises(RuleTestError, match="twice.test.yaml:5"):
        run_test_file(test)


MATCH_RULE = """\
rules:
  - id: demo.flood_words
    stream: press
    kind: match
    fields: [title]
    any: [xả lũ, ngập]
"""


@pytest.mark.parametrize(("details", "problems"), [
    ("{matched: [xả lũ, ngập]}", []),
    ("{matched: [ngập]}", ["transition 1: details.matched: expected ['ngập'], got ['xả lũ', 'ngập']"]),
    ("{zone: x}", ["transition 1: details.zone: expected 'x', got None"]),
])
def test_details_are_compared_name_by_name(tmp_path, details, problems):
    (tmp_path / "demo.yaml").write_text(MATCH_RULE, encoding="utf-8")
    test = tmp_path / "demo.test.yaml"
    test.write_text(textwrap.dedent(f"""\
        rule_files: [demo.yaml]
        tests:
          - name: flood words
            start: "2025-10-27T08:00:00+07:00"
            events:
              - {{stream: press, at: 0m, source_id: tuoitre, url: "https://x.vn/1", title: "Thủy điện XẢ LŨ, ngập"}}
            expect:
              - {{rule: demo.flood_words, status: firing, value: null, details: {details}}}
        """), encoding="utf-8")
    [result] = run_test_file(test)
    assert result.problems == problems
    assert result.passed is (not problems)
