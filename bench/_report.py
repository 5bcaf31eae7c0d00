"""The report: one table per kind of phase, or the same figures as one JSON object.

Throughput rows also carry their events/s and CPU as ratios to `quix-threshold`
(events/s: > 1 is faster than Quix; CPU: > 1 costs more CPU per event than Quix).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _context import Row

__all__ = ["add_ratios", "add_scaling", "render", "to_json"]

THROUGHPUT = ("worker-shipped", "workers-2-shipped", "worker-threshold", "quix-threshold", "aiokafka-ceiling",
              "confluent-ceiling")
BASELINE = "quix-threshold"

Column = tuple[str, str, Callable[[Any], str]]


def _num(digits: int = 0) -> Callable[[Any], str]:
    return lambda value: "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


THROUGHPUT_COLUMNS: list[Column] = [
    ("rules", "rules", _num()),
    ("events", "events", _num()),
    ("events_per_s", "events/s", _num()),
    ("cpu_s_per_100k", "CPU s/100k", _num(2)),
    ("startup_s", "start-up s", _num(1)),
    ("stop_s", "stop s", _num(1)),
    ("alerts", "alerts", _num()),
    ("broker_cpu_s", "broker CPU s", _num(1)),
    ("vs_quix_events_per_s", "ev/s vs quix", _ratio),
    ("vs_quix_cpu", "CPU vs quix", _ratio),
]
LATENCY_COLUMNS: list[Column] = [
    ("sent_rate", "events/s", _num()),
    ("seconds", "s", _num()),
    ("p50_ms", "p50 ms", _num(1)),
    ("p99_ms", "p99 ms", _num(1)),
    ("max_ms", "max ms", _num(1)),
    ("expected", "alerts expected", _num()),
    ("received", "received", _num()),
    ("lost", "lost", _num()),
    ("warmup_s", "join s", _num(1)),
    ("stop_s", "stop s", _num(1)),
    ("broker_cpu_s", "broker CPU s", _num(1)),
]
STATE_COLUMNS: list[Column] = [
    ("keys", "keys", _num()),
    ("rss_before_mib", "RSS before MiB", _num(1)),
    ("rss_after_mib", "RSS after MiB", _num(1)),
    ("bytes_per_key", "bytes/key", _num()),
    ("rss_after_quiet_mib", "rss-after-quiet MiB", _num(1)),
    ("quiet_s", "quiet s", _num()),
    ("late", "late", _num()),
    ("invalid", "invalid", _num()),
    ("stop_s", "stop s", _num(1)),
]


ENGINE_COLUMNS: list[Column] = [
    ("rules", "rules", _num()),
    ("events", "events", _num()),
    ("decode_us_per_event", "decode µs/event", _num(2)),
    ("engine_us_per_event", "engine µs/event", _num(2)),
    ("events_per_s", "decode+engine events/s", _num()),
    ("alerts", "alerts", _num()),
]


def _curves(row: Row, title: str, unit: str) -> list[str]:
    """A curve per shape: its points as `n: µs/event (ratio)` (or the figures of the point)."""
    if row.error:
        return [title, f"FAILED: {row.error}"]
    lines = [title]
    for shape, curve in row.figures.items():
        points = []
        for size, point in curve.items():
            extra = (f" ({point['vs_10_rules']:.1f}x)" if point.get("vs_10_rules") is not None
                     else f", {point['bytes_per_vessel']:,} B/vessel ({point['rule_keys']:,} rule keys, "
                          f"{point['bytes_per_rule_key']:,} B each)"
                     if "bytes_per_vessel" in point else "")
            points.append(f"{int(size):,} {unit}: {point['us_per_event']:,.1f} µs/event{extra}")
        lines.append(f"  {shape:<13} " + "; ".join(points))
    return lines


def add_ratios(rows: dict[str, Row]) -> None:
    """Each throughput row's events/s and CPU per event relative to quix-threshold."""
    base = rows.get(BASELINE)
    if base is None or base.error:
        return
    for name in THROUGHPUT:
        row = rows.get(name)
        if row is None or row.error:
            continue
        row.figures["vs_quix_events_per_s"] = _divide(row.figures.get("events_per_s"), base.figures.get("events_per_s"))
        row.figures["vs_quix_cpu"] = _divide(row.figures.get("cpu_s_per_100k"), base.figures.get("cpu_s_per_100k"))


def add_scaling(rows: dict[str, Row]) -> None:
    """Two workers' events/s relative to one worker's (both with the shipped rules, same run)."""
    one, two = rows.get("worker-shipped"), rows.get("workers-2-shipped")
    if one is None or two is None or one.error or two.error:
        return
    two.figures["vs_one_worker"] = _divide(two.figures.get("events_per_s"), one.figures.get("events_per_s"))


def _divide(value: Any, base: Any) -> float | None:
    return round(value / base, 3) if value is not None and base else None


def _table(title: str, rows: list[Row], columns: list[Column]) -> list[str]:
    header = ["system", *(label for _, label, _ in columns)]
    body = []
    for row in rows:
        if row.error:
            body.append([row.name, f"FAILED: {row.error}"])
            continue
        figures = dict(row.figures)
        if "alerts" not in figures and "matches" in figures:
            figures["alerts"] = figures["matches"]
        body.append([row.name, *(render_value(figures.get(key)) for key, _, render_value in columns)])
    widths = [max(len(line[i]) for line in [header, *body] if i < len(line) and len(line) > 2)
              for i in range(len(header))]
    lines = [title, "  ".join(text.rjust(width) if i else text.ljust(width)
                              for i, (text, width) in enumerate(zip(header, widths, strict=True)))]
    for line in body:
        if len(line) == 2:
            lines.append(f"{line[0].ljust(widths[0])}  {line[1]}")
        else:
            lines.append("  ".join(text.rjust(width) if i else text.ljust(width)
                                   for i, (text, width) in enumerate(zip(line, widths, strict=True))))
    return lines


def render(meta: dict[str, Any], rows: dict[str, Row]) -> str:
    lines = [f"{key:<14} {f'{value:,}' if isinstance(value, int) else value}" for key, value in meta.items()]
    throughput = [rows[name] for name in THROUGHPUT if name in rows]
    if throughput:
        lines += ["", *_table("throughput over the preloaded events", throughput, THROUGHPUT_COLUMNS)]
        lines.append("  (alerts: firing alerts for the worker, matches for the others; "
                     "ratios: to quix-threshold, events/s > 1 faster, CPU > 1 costlier)")
        two = rows.get("workers-2-shipped")
        if two is not None and two.figures.get("vs_one_worker") is not None:
            lines.append(f"  two workers: {two.figures['vs_one_worker']:.2f}x one worker's events/s "
                         f"(shipped rules, over the span both process)")
    measured = [rows[name] for name in ("latency-1000", "latency") if name in rows]
    if measured:
        lines += ["", *_table("event -> alert latency (new alert per event)", measured, LATENCY_COLUMNS)]
    if "engine-shipped" in rows:
        lines += ["", *_table("the engine alone (no broker), storm-day events, stream after stream",
                              [rows["engine-shipped"]],
                              ENGINE_COLUMNS)]
    if "rule-curve" in rows:
        lines += ["", *_curves(rows["rule-curve"], "engine cost by rule count, reservoir threshold rules "
                               "(ratio to 10 rules)", "rules")]
    if "key-curve" in rows:
        lines += ["", *_curves(rows["key-curve"], "engine cost by tracked vessels, shipped rules", "vessels")]
    if "state-bytes-per-key" in rows:
        lines += ["", *_table("worker state per key (shipped rules)", [rows["state-bytes-per-key"]], STATE_COLUMNS)]
    return "\n".join(lines)


def to_json(meta: dict[str, Any], rows: dict[str, Row]) -> str:
    return json.dumps({"meta": meta, "rows": {name: {**row.figures, "error": row.error} for name, row in rows.items()}},
                      indent=2)
