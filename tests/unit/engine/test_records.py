"""Rule annotations and runbook links on alert records (ioc.engine.episodes), as Alertmanager
gets them (ioc.alertmanager.payload) and as escalations carry them on (ioc.sla.tracker).

Rules are loaded with the real loader and the real reference data; events are decoded as the
pipeline decodes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kindtest
import pytest
from kindtest import T0, engine_of, restored

from ioc.alertmanager.payload import am_alert
from ioc.engine.meaning import meaning
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.sla.tracker import AlertTracker

REPO = Path(__file__).resolve().parents[3]
REFERENCE = load_reference(REPO / "config" / "reference")

RULES = """
defaults:
  stream: reservoir
  annotations:
    team: "Trực ban IOC"
    action: "Xem {name}"
rules:
  - id: test.level.at_nwl
    kind: threshold
    condition: "level_m >= nwl_m"
    severity: critical
    summary: "{name}: {level_m:.2f} m"
    runbook_url: docs/runbooks/reservoir.md#reservoir.level.at_nwl
    sla: {ack: 15m, resolve: 2h}
    annotations:
      action: "Gọi trực ban {name}: mực nước {level_m:.2f} m, MNDBT {nwl_m} m"
      dashboard: "https://grafana.example/d/ioc-overview?var-reservoir={source_id}"
"""


def load(tmp_path: Path, text: str = RULES) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path], REFERENCE)


def ev(t: float, level: float) -> dict[str, Any]:
    return decode("reservoir", {"source_id": "ta-trach", "ts": T0 + t, "level_m": level, "id": f"e{t:g}"})


def test_records_carry_rendered_annotations_and_the_runbook_link(tmp_path: Path) -> None:
    engine = engine_of(load(tmp_path))
    fired = engine.process("reservoir", [ev(0, 45.25)])
    resolved = engine.process("reservoir", [ev(600, 44.0)])
    expected = {
        "team": "Trực ban IOC",  # from defaults, merged like labels
        "action": "Gọi trực ban Hồ Tả Trạch: mực nước 45.25 m, MNDBT 45.0 m",  # the rule's own wins
        "dashboard": "https://grafana.example/d/ioc-overview?var-reservoir=ta-trach",
        "runbook_url": "docs/runbooks/reservoir.md#reservoir.level.at_nwl",
    }
    assert [a.to_record()["annotations"] for a in fired + resolved] == [expected, expected]
    assert [a.status for a in fired + resolved] == ["firing", "resolved"]


def test_a_rule_without_annotations_has_an_empty_mapping(tmp_path: Path) -> None:
    text = re.sub(r"(?s)defaults:.*?rules:", "rules:", RULES).replace("    kind: threshold",
                                                                      "    stream: reservoir\n    kind: threshold")
    text = re.sub(r"(?s)    runbook_url:.*?\n", "", text)
    text = re.sub(r"(?s)    annotations:.*", "", text)
    engine = engine_of(load(tmp_path, text))
    (alert,) = engine.process("reservoir", [ev(0, 45.25)])
    assert alert.to_record()["annotations"] == {}


def test_annotations_survive_a_snapshot_and_change_without_changing_meaning(tmp_path: Path) -> None:
    first = load(tmp_path)
    engine = engine_of(first)
    (fired,) = engine.process("reservoir", [ev(0, 45.25)])
    (tmp_path / "b").mkdir()
    changed = load(tmp_path / "b", RULES.replace("Gọi trực ban", "Báo trực ban"))
    assert meaning(changed.by_id["test.level.at_nwl"]) == meaning(first.by_id["test.level.at_nwl"])
    again = restored(engine, first)
    (resolved,) = again.process("reservoir", [ev(600, 44.0)])
    assert resolved.alert_id == fired.alert_id
    assert resolved.annotations == fired.annotations


def test_alertmanager_gets_the_record_annotations(tmp_path: Path) -> None:
    engine = engine_of(load(tmp_path))
    (alert,) = engine.process("reservoir", [ev(0, 45.25)])
    record = json.loads(alert.to_json())
    sent = am_alert(record, now=T0 + 60, valid_s=240.0, runbook_url="https://wiki.example/{rule_id}")
    annotations = sent["annotations"]
    # The rule's link wins over the configured template, which is for rules that give none.
    assert annotations["runbook_url"] == "docs/runbooks/reservoir.md#reservoir.level.at_nwl"
    assert annotations["action"].startswith("Gọi trực ban Hồ Tả Trạch")
    assert annotations["team"] == "Trực ban IOC"
    assert annotations["value"] == "45.25"
    record["annotations"] = {}
    assert am_alert(record, now=T0 + 60, valid_s=240.0,
                    runbook_url="https://wiki.example/{rule_id}")["annotations"]["runbook_url"] \
        == "https://wiki.example/test.level.at_nwl"


def test_escalations_carry_the_annotations_and_the_measured_value(tmp_path: Path) -> None:
    engine = engine_of(load(tmp_path))
    (alert,) = engine.process("reservoir", [ev(0, 45.25)])
    tracker = AlertTracker()
    tracker.on_alert(json.loads(alert.to_json()))
    escalations = tracker.advance(T0 + 3600).escalations
    assert escalations, "the ack deadline (15m) passed without an ack"
    for record in escalations:
        assert record["annotations"] == alert.annotations
        assert record["value"] == 45.25
        assert record["details"]["escalation"]["of_alert_id"] == alert.alert_id
        assert record["details"]["escalation"]["deadline"] == "ack"


def test_every_shipped_runbook_link_points_to_an_anchor_of_its_page() -> None:
    ruleset = load_rules([REPO / "rules"], REFERENCE)
    missing = []
    for rule in ruleset.rules:
        link = rule.spec.runbook_url
        assert link is not None, f"{rule.id} has no runbook_url"
        page, _, anchor = link.partition("#")
        if f'<a id="{anchor}"></a>' not in (REPO / page).read_text(encoding="utf-8"):
            missing.append(link)
    assert missing == []


@pytest.mark.parametrize("link", ["https://wiki.example/runbooks/at_nwl", "http://10.0.0.5/rb",
                                  "docs/kinds/absence.md", "docs/runbooks/reservoir.md#x"])
def test_runbook_links_that_load(tmp_path: Path, link: str) -> None:
    text = RULES.replace("docs/runbooks/reservoir.md#reservoir.level.at_nwl", link)
    assert load(tmp_path, text).by_id["test.level.at_nwl"].spec.runbook_url == link


@pytest.mark.parametrize("link", ["javascript:alert(1)", "file:///etc/passwd", "/etc/passwd", "docs/../README.md",
                                  "README.md", "https://", "https://wiki example/x", "docs/runbooks/nope.md"])
def test_runbook_links_that_do_not_load(tmp_path: Path, link: str) -> None:
    text = RULES.replace("docs/runbooks/reservoir.md#reservoir.level.at_nwl", link)
    error = kindtest.rule_error(tmp_path, text, REFERENCE)
    (problem,) = error.problems
    assert problem.field == "runbook_url" and "(allowed: an http(s) URL" in str(problem), str(problem)


# -- the measured value ---------------------------------------------------------------------------

CROWD = """
rules:
  - id: test.crowd
    stream: camera
    kind: threshold
    condition: "event_type == 'crowd' and count > 200"
    summary: "{source_id}: {value} người"
"""


def cam(t: float, **fields: Any) -> dict[str, Any]:
    return decode("camera", {"source_id": "cam-008", "ts": T0 + t, **fields})


def test_threshold_value_defaults_to_the_first_numeric_field_of_the_condition(tmp_path: Path) -> None:
    # `event_type` comes first but is text: the measured quantity is `count`.
    engine = engine_of(load(tmp_path, CROWD))
    (alert,) = engine.process("camera", [cam(0, event_type="crowd", count=270)])
    assert alert.value == 270 and alert.summary == "cam-008: 270 người"
    assert alert.details == {}


def test_a_value_expression_that_gives_no_number_gives_null(tmp_path: Path) -> None:
    engine = engine_of(load(tmp_path, CROWD.replace("    summary:", "    value: \"lower(event_type)\"\n    summary:")))
    (alert,) = engine.process("camera", [cam(0, event_type="crowd", count=270)])
    assert alert.value is None and alert.summary == "cam-008: ? người"
