"""The HTML report of a sweep: per swept rule, its figures against the swept value, the current
value marked, and a table of every point.

>>> write_sweep_report(Path("sweep.html"), sweeps, points, scored=True)      # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path

from ioc.analysis.report import _png
from ioc.analysis.sweep import Figures, Point, Sweep

__all__ = ["write_sweep_report", "curves"]


def curves(points: list[Point]) -> dict[tuple[float, ...], list[Point]]:
    """The points of the grid as curves over the first sweep's values: one curve per combination
    of the other sweeps' values (one curve when there is one sweep)."""
    out: dict[tuple[float, ...], list[Point]] = {}
    for point in points:
        out.setdefault(point.values[1:], []).append(point)
    return out


def _plot(sweeps: list[Sweep], points: list[Point], rule_id: str, scored: bool) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = sweeps[0]
    figure, left = plt.subplots(figsize=(9, 4))
    right = left.twinx() if scored else None
    for others, line in curves(points).items():
        label = ", ".join(f"{sweep.label}={sweep.show(value)}" for sweep, value in zip(sweeps[1:], others,
                                                                                        strict=True))
        line = sorted(line, key=lambda point: point.values[0])  # values listed in any order: one curve
        xs = [point.values[0] / 60 if first.durations else point.values[0] for point in line]
        figures = [point.figures.get(rule_id, Figures()) for point in line]
        left.plot(xs, [f.per_day for f in figures], marker="o", label=f"alerts per day {label}".strip())
        if right is not None:
            right.plot(xs, [f.recall if f.recall is not None else float("nan") for f in figures], marker="s",
                       linestyle="--", label=f"recall {label}".strip())
            right.plot(xs, [f.precision if f.precision is not None else float("nan") for f in figures],
                       marker="^", linestyle=":", label=f"precision {label}".strip())
    if first.current is not None:
        left.axvline(first.current / 60 if first.durations else first.current, color="grey", linestyle="-.",
                     label=f"current {first.label} = {first.show(first.current)}")
    left.set_xlabel(f"{first.label}" + (" (minutes)" if first.durations else ""))
    left.set_ylabel("alerts per day")
    left.set_ylim(bottom=0)
    handles, labels = left.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel("recall, precision")
        right.set_ylim(-0.05, 1.05)
        more, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more, labels + more_labels
    left.legend(handles, labels, loc="best", fontsize="small")
    left.set_title(rule_id)
    image = _png(figure)
    plt.close(figure)
    return image


def write_sweep_report(path: Path, sweeps: list[Sweep], points: list[Point], scored: bool) -> None:
    """A self-contained HTML file: a plot per swept rule and the table of every point."""
    rules = list(dict.fromkeys(sweep.rule_id for sweep in sweeps))
    sections = []
    for rule_id in rules:
        heads = "".join(f"<th>{html.escape(sweep.label)}</th>" for sweep in sweeps)
        heads += "<th>alerts</th><th>per day</th>" + (
            "<th>recall</th><th>precision</th><th>time to detect (s)</th>" if scored else "")
        rows = []
        for point in points:
            figures = point.figures.get(rule_id, Figures())
            cells = [sweep.show(value) for sweep, value in zip(sweeps, point.values, strict=True)]
            cells += [str(figures.episodes), f"{figures.per_day:.2f}"]
            if scored:
                cells += ["-" if figures.recall is None else f"{figures.recall:.2f}",
                          "-" if figures.precision is None else f"{figures.precision:.2f}",
                          "-" if figures.detect_s is None else f"{figures.detect_s:.0f}"]
            style = ' style="font-weight:bold"' if point.current else ""
            rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
        image = _plot(sweeps, points, rule_id, scored)
        sections.append(f"<h2>{html.escape(rule_id)}</h2>"
                        f'<img alt="{html.escape(rule_id)} against the swept values" src="data:image/png;base64,'
                        f'{image}"><table><tr>{heads}</tr>{"".join(rows)}</table>')
    swept = ", ".join(html.escape(sweep.text) for sweep in sweeps)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IOC sweep report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%}}</style></head>
<body><h1>IOC sweep report</h1><p>Swept: {swept}. The current value is in bold (the dashed line).</p>
{''.join(sections)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
