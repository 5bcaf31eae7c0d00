"""The HTML report of a backtest: a summary table and plots of alerts over time.

>>> write_report(Path("report.html"), result, ruleset)      # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ioc.analysis.backtest import BacktestResult, RawEvent
from ioc.analysis.scoring import Score
from ioc.analysis.value_plot import trace_rules, value_svg
from ioc.rules.loader import RuleSet
from ioc.timeutil import LOCAL_TZ, format_duration, format_local

__all__ = ["write_report"]

SEVERITY_COLOURS = {"info": "#4c9be8", "warning": "#f0ad4e", "critical": "#d9534f", "emergency": "#7b1fa2"}


def _png(figure: object) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(result: BacktestResult, ruleset: RuleSet) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    firing = [a for a in result.alerts if a.status == "firing"]
    if not firing:
        return []
    plots = []
    figure, axis = plt.subplots(figsize=(10, 3.5))
    start = min(a.starts_at for a in firing)
    end = max(a.starts_at for a in firing)
    span = max(end - start, 3600.0)
    bucket = 3600.0 if span <= 7 * 86400 else 86400.0
    bottoms: dict[float, int] = {}
    for severity, colour in SEVERITY_COLOURS.items():
        counts: dict[float, int] = {}
        for alert in firing:
            if alert.severity == severity:
                slot = start + ((alert.starts_at - start) // bucket) * bucket
                counts[slot] = counts.get(slot, 0) + 1
        if not counts:
            continue
        slots = sorted(counts)
        axis.bar(
            [mdates.date2num(datetime.fromtimestamp(s, LOCAL_TZ)) for s in slots], [counts[s] for s in slots],
            width=bucket / 86400 * 0.9, bottom=[bottoms.get(s, 0) for s in slots], color=colour,
            label=severity, align="edge",
        )
        for s in slots:
            bottoms[s] = bottoms.get(s, 0) + counts[s]
    axis.set_title(f"Alerts fired per {'hour' if bucket == 3600 else 'day'} by severity (ICT, UTC+7)")
    axis.legend(loc="upper right")
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m %H:%M"))
    figure.autofmt_xdate()
    plots.append(("Alerts over time", _png(figure)))
    plt.close(figure)

    rule_ids = [r.id for r in ruleset.rules if any(a.rule_id == r.id for a in firing)]
    figure, axis = plt.subplots(figsize=(10, 0.45 * len(rule_ids) + 1.2))
    last = result.last_ts if result.last_ts is not None else end
    episodes: dict[str, tuple[str, str, float, float | None]] = {}
    for alert in result.alerts:
        known = episodes.get(alert.alert_id)
        ends = alert.ends_at if alert.ends_at is not None else (known[3] if known else None)
        episodes[alert.alert_id] = (alert.rule_id, alert.severity, alert.starts_at, ends)
    for row, rule_id in enumerate(rule_ids):
        for rid, severity, begins, ends in episodes.values():
            if rid == rule_id:
                width = max((ends if ends is not None else last) - begins, span / 400)
                axis.broken_barh([(begins / 86400, width / 86400)], (row - 0.35, 0.7),
                                 color=SEVERITY_COLOURS.get(severity, "grey"))
    axis.set_yticks(range(len(rule_ids)), labels=rule_ids)
    axis.invert_yaxis()
    axis.set_title("Episodes per rule (bars: firing time)")
    axis.xaxis.set_major_formatter(
        plt.FuncFormatter(lambda x, _: datetime.fromtimestamp(x * 86400, LOCAL_TZ).strftime("%d/%m %H:%M"))
    )
    figure.autofmt_xdate()
    plots.append(("Episodes per rule", _png(figure)))
    plt.close(figure)
    return plots


def _score_html(score: Score | None, result: BacktestResult) -> str:
    if score is None:
        return ""
    recall = score.recall
    detected: dict[str, float] = {}
    for alert in result.alerts:
        if alert.status == "firing":
            detected.setdefault(alert.alert_id, alert.detected_at)

    def delay(incident_id: str, start: float) -> str:
        alert_id = score.caught.get(incident_id)
        return format_duration(max(0.0, detected[alert_id] - start)) if alert_id in detected else "-"

    rows = "".join(
        f"<tr><td>{html.escape(i.id)}</td><td>{html.escape(i.stream)} {html.escape(i.kind)}</td>"
        f"<td>{'caught' if score.caught.get(i.id) else ('MISSED' if i.rules else 'no rule')}</td>"
        f"<td>{html.escape(delay(i.id, i.start))}</td></tr>"
        for i in score.incidents
    )
    labelled = {rule for incident in score.incidents for rule in incident.rules}
    precision = "".join(
        f"<tr><td>{html.escape(r.rule_id)}</td><td>{r.episodes}</td><td>{r.true_positives}</td>"
        f"<td>{r.precision:.2f}</td></tr>"
        for r in sorted(score.rules.values(), key=lambda r: r.rule_id) if r.rule_id in labelled
    )
    shown = f"{recall:.2f}" if recall is not None else "-"
    return (f"<h2>Detection against the ground truth</h2><p>Recall {shown}.</p>"
            f"<table><tr><th>incident</th><th>kind</th><th>result</th>"
            f"<th>detected after (from the incident's start)</th></tr>{rows}</table>"
            f"<h3>Precision per rule</h3><table><tr><th>rule</th><th>episodes</th><th>true positives</th>"
            f"<th>precision</th></tr>{precision}</table>")


def _values_html(result: BacktestResult, ruleset: RuleSet, score: Score | None,
                 events: Iterable[RawEvent] | None) -> str:
    """Per rule that alerted: its value against its threshold over time (ioc.analysis.value_plot)."""
    marks: dict[str, list[tuple[float, str, str]]] = {}
    if score is not None:
        detected: dict[str, float] = {}
        for alert in result.alerts:
            if alert.status == "firing":
                detected.setdefault(alert.alert_id, alert.detected_at)
        for incident in score.incidents:
            alert_id = score.caught.get(incident.id)
            delay = (f"detected after {format_duration(max(0.0, detected[alert_id] - incident.start))}"
                     if alert_id in detected else "missed")
            for rule_id in incident.rules:
                marks.setdefault(rule_id, []).append((incident.start, incident.id, delay))
    sections = []
    for trace in trace_rules(ruleset, result.alerts, events, result.last_ts, marks):
        what = {"events": "the value expression at each event of the keys that alerted, and the threshold",
                "alerts": "the value of each alert record",
                "none": "no measured value: its episodes only"}[trace.source]
        sections.append(f"<h3>{html.escape(trace.rule_id)}</h3><p>{what}; shaded: episodes; dashed lines: "
                        f"labelled incidents.</p>{value_svg(trace)}")
    return ("<h2>Values against thresholds</h2>" + "".join(sections)) if sections else ""


def write_report(path: Path, result: BacktestResult, ruleset: RuleSet, score: Score | None = None,
                 events: Iterable[RawEvent] | None = None) -> None:
    """Write a self-contained HTML file (plots embedded as PNG and SVG; detection scores when given).
    `events`, the backtest's events read again, give threshold rules their value series."""
    rows = []
    for row in result.summary(ruleset):
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
                row.rule_id, row.severity, row.transitions, row.episodes,
                format_local(row.first) if row.first is not None else "-",
                format_local(row.last) if row.last is not None else "-",
                format_duration(row.firing_seconds) if row.episodes else "-",
            )) + "</tr>"
        )
    images = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        for title, data in _plots(result, ruleset)
    )
    invalid = sum(result.invalid.values())
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IOC backtest report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}img{{max-width:100%}}</style></head>
<body><h1>IOC backtest report</h1>
<p>{result.events:,} events replayed, {invalid:,} invalid, {len(result.alerts):,} alert transitions.</p>
<table><tr><th>rule</th><th>severity</th><th>transitions</th><th>episodes</th><th>first start (ICT)</th>
<th>last start (ICT)</th><th>time firing</th></tr>{''.join(rows)}</table>
{_score_html(score, result)}
{images}
{_values_html(result, ruleset, score, events)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
