"""The backtest report's value plots (ioc.analysis.value_plot via ioc.analysis.report): for a
threshold rule, the SVG holds the value series of the keys that alerted, the threshold line and
the shaded episodes, each computed here from the same events independently."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.analysis.report import write_report
from ioc.analysis.scoring import TruthIncident, score_alerts
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules

T0 = 1761526800.0  # 2025-10-27T01:00:00Z
NWL = 45.0  # Tả Trạch (config/reference/reservoir.yaml)
RULES = """
rules:
  - id: test.level.near_nwl
    stream: reservoir
    kind: threshold
    where: "nwl_m is not None"
    condition: "level_m >= nwl_m - 0.5"
    for: 10m
    severity: warning
  - id: test.press.words
    stream: press
    kind: match
    fields: [title]
    any: [xả lũ]
"""
# Tả Trạch rises over its threshold (44.5 m) for 40 min, twice; Bình Điền (NWL 85) stays low.
LEVELS = [44.0, 44.3, 44.6, 44.8, 44.9, 44.7, 44.2, 44.1, 44.6, 44.7, 44.8, 44.1]


def _rows() -> list[RawEvent]:
    rows = []
    for i, level in enumerate(LEVELS):
        at = T0 + i * 600
        rows.append(RawEvent("reservoir", {"source_id": "ta-trach", "ts": at, "level_m": level, "id": f"t{i}"},
                             f"r:{i}"))
        rows.append(RawEvent("reservoir", {"source_id": "binh-dien", "ts": at, "level_m": 70.0, "id": f"b{i}"},
                             f"b:{i}"))
    rows.append(RawEvent("press", {"source_id": "tuoitre", "ts": T0 + 900, "url": "https://x.vn/1",
                                   "title": "Hồ Tả Trạch xả lũ", "id": "p1"}, "p:1"))
    return rows


def _svgs(page: str) -> dict[str, ET.Element]:
    found = {}
    for text in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        element = ET.fromstring(text)
        found[element.get("data-rule", "")] = element
    return found


def _pairs(text: str) -> list[tuple[float, float]]:
    return [(float(t), float(v)) for t, v in (item.split(",") for item in text.split())]


def _report(tmp_path: Path, with_events: bool = True) -> dict[str, ET.Element]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    ruleset = load_rules([tmp_path / "rules.yaml"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(ruleset, _rows())
    incident = TruthIncident("flood-1", "reservoir", "flood", {"source_id": "ta-trach"}, T0 + 600, T0 + 3600,
                             ("test.level.near_nwl",))
    score = score_alerts(result.alerts, [incident])
    path = tmp_path / "report.html"
    write_report(path, result, ruleset, score, events=_rows() if with_events else None)
    return _svgs(path.read_text(encoding="utf-8"))


def _ns(tag: str) -> str:
    return f"{{http://www.w3.org/2000/svg}}{tag}"


def test_threshold_rule_plot_has_its_series_threshold_and_episodes(tmp_path: Path) -> None:
    svg = _report(tmp_path)["test.level.near_nwl"]
    assert svg.get("data-source") == "events"
    series = svg.findall(f".//{_ns('polyline')}[@class='series']")
    # Only the key that alerted; every one of its events, its level as the value.
    assert [s.get("data-key") for s in series] == ["source_id=ta-trach"]
    expected = [(T0 + i * 600, level) for i, level in enumerate(LEVELS)]
    assert _pairs(series[0].get("data-points", "")) == expected
    # Drawn where the values are: higher values higher up (smaller y), equal values level.
    ys = [float(p.split(",")[1]) for p in series[0].get("points", "").split()]
    for (_, a), (_, b), ya, yb in zip(expected, expected[1:], ys, ys[1:], strict=False):
        assert (a > b) == (ya < yb) and (a == b) == (ya == yb)
    (threshold,) = svg.findall(f".//{_ns('polyline')}[@class='threshold']")
    assert _pairs(threshold.get("data-points", "")) == [(t, NWL - 0.5) for t, _ in expected]
    # Episodes: the condition holds from the 44.6 at 20m to the 44.2 at 60m, and from the 44.6 at
    # 80m to the 44.1 at 110m (each fires once it held for 10m; it starts when it began to hold).
    episodes = [(float(r.get("data-start", "")), float(r.get("data-end", "")))
                for r in svg.findall(f".//{_ns('rect')}[@class='episode']")]
    assert episodes == [(T0 + 1200, T0 + 3600), (T0 + 4800, T0 + 6600)]
    (incident,) = svg.findall(f".//{_ns('line')}[@class='incident']")
    assert incident.get("data-incident") == "flood-1"
    assert incident.get("data-delay") == "detected after 20m"  # fired at 30m (20m + for), incident at 10m


def test_without_events_or_a_measured_value_the_plot_shows_what_the_alerts_give(tmp_path: Path) -> None:
    svgs = _report(tmp_path, with_events=False)
    threshold_rule = svgs["test.level.near_nwl"]
    assert threshold_rule.get("data-source") == "alerts"  # the values of the alert records only
    (series,) = threshold_rule.findall(f".//{_ns('polyline')}[@class='series']")
    points: list[Any] = _pairs(series.get("data-points", ""))
    # Fired (and resolved) with the level of the event at which `for` had elapsed, twice.
    assert [v for _, v in points] == [44.8, 44.8, 44.7, 44.7]
    match = svgs["test.press.words"]
    assert match.get("data-source") == "none"
    assert not match.findall(f".//{_ns('polyline')}")
    assert len(match.findall(f".//{_ns('rect')}[@class='episode']")) == 1
