"""Periods when a rule applies (`active:`), in event time.

A rule's `active` is one period `{from, to}`, a list of them, or the name of a calendar file
`config/calendars/<name>.yaml` holding `periods:` (a storm ban, a seasonal closure). Times are
RFC 3339; a time written without an offset is in ICT (Asia/Ho_Chi_Minh, +07:00); a date alone
is its start of day (ICT). A period is `[from, to)`: an event at `to` is outside it. Overlapping
or touching periods are merged.

>>> periods = Periods.of([(10.0, 20.0), (15.0, 30.0), (40.0, 50.0)])
>>> periods.spans, periods.inside(29.9), periods.inside(30.0), periods.end_of(12.0)
(((10.0, 30.0), (40.0, 50.0)), True, False, 30.0)

The engine (ioc.engine) applies them to every kind alike: outside the periods the rule ignores
events, as if `where` were false (`guard`), and its timers do nothing; when the watermark passes
a period's end, every alert of the rule still firing resolves with `ends_at` = that end, and the
rule's state is dropped, so that the next period starts afresh (docs/rules.md, "Periods").
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from ioc.exceptions import IocError
from ioc.rules.exceptions import did_you_mean, shorten
from ioc.rules.expr import Expression
from ioc.timeutil import parse_ts

__all__ = ["ICT", "Periods", "PeriodError", "calendar_names", "load_periods"]

ICT = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh: UTC+7 all year
CALENDARS = "calendars"


class PeriodError(IocError):
    """An `active:` value or a calendar file that cannot be read as periods."""


@dataclass(frozen=True)
class Periods:
    """Sorted, disjoint `[start, end)` spans in epoch seconds."""

    spans: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, spans: Iterable[tuple[float, float]]) -> Periods:
        merged: list[tuple[float, float]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return cls(tuple(merged))

    def _index(self, ts: float) -> int:
        return bisect_right(self.spans, (ts, float("inf"))) - 1

    def inside(self, ts: float) -> bool:
        """Whether `ts` is in a period."""
        i = self._index(ts)
        return i >= 0 and ts < self.spans[i][1]

    def end_of(self, ts: float) -> float | None:
        """The end of the period holding `ts` (None: outside every period)."""
        i = self._index(ts)
        return self.spans[i][1] if i >= 0 and ts < self.spans[i][1] else None

    def guard(self, where: Expression | None) -> Expression:
        """`where`, false for events outside the periods (tested first)."""
        inside = self.inside
        if where is None:
            def fn(event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
                return inside(event["ts"])
            return Expression(text="", names=frozenset(), fn=fn)
        test = where.fn

        def guarded(event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
            return inside(event["ts"]) and test(event, ref)
        return Expression(text=where.text, names=where.names, fn=guarded, requires=where.requires)


def _instant(value: Any, what: str) -> float:
    """Epoch seconds of a period bound: text, a YAML datetime or a YAML date (ICT when naive)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=ICT)).timestamp()
    if isinstance(value, date):
        return datetime.combine(value, time(0), ICT).timestamp()
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                return parse_ts(text)
            except ValueError:
                raise PeriodError(f"{what}: {shorten(value)} is not a time (e.g. 2025-10-28T06:00, "
                                  "ICT unless an offset is written)") from None
        return _instant(parsed, what)
    raise PeriodError(f"{what}: {shorten(value)} is not a time (e.g. 2025-10-28T06:00)")


def _spans(items: Sequence[Any], where: str) -> list[tuple[float, float]]:
    """Spans of period items; `where` starts each message (e.g. "calendar 'x': ")."""
    spans = []
    for index, item in enumerate(items):
        what = f"{where}period {index + 1}" if len(items) > 1 or where else "period"
        if not isinstance(item, Mapping) or "from" not in item or "to" not in item:
            raise PeriodError(f"{what}: needs from and to (e.g. {{from: 2025-10-28T06:00, to: 2025-10-28T18:00}};"
                              " allowed keys: from, name, to)")
        unknown = sorted(set(item) - {"from", "to", "name"})
        if unknown:
            raise PeriodError(f"{what}: unknown key '{unknown[0]}' (allowed: from, name, to"
                              f"{did_you_mean(str(unknown[0]), ('from', 'to', 'name'))})")
        start, end = _instant(item["from"], f"{what}: from"), _instant(item["to"], f"{what}: to")
        if end <= start:
            raise PeriodError(f"{what}: 'to' must be after 'from'")
        spans.append((start, end))
    return spans


def calendar_names(config_dir: Path) -> list[str]:
    """Calendars under config/calendars/ that hold periods."""
    folder = config_dir / CALENDARS
    names = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and "periods" in data:
            names.append(path.stem)
    return names


def load_periods(value: Any, config_dir: Path, read: Callable[[Path], str] | None = None) -> Periods:
    """The periods an `active:` value names (see the module docstring)."""
    if isinstance(value, str):
        return _calendar(value, config_dir, read)
    if isinstance(value, Mapping):
        return Periods.of(_spans([value], ""))
    if isinstance(value, list) and value:
        return Periods.of(_spans(value, ""))
    raise PeriodError(f"{shorten(value)} is not a period (allowed: a calendar name from "
                      f"config/{CALENDARS}/, {{from, to}}, or a list of them)")


def _calendar(name: str, config_dir: Path, read: Callable[[Path], str] | None) -> Periods:
    known = calendar_names(config_dir)
    path = config_dir / CALENDARS / f"{name}.yaml"
    if name not in known:
        listed = ", ".join(known) or "none"
        raise PeriodError(f"no calendar of periods named {shorten(name)} in config/{CALENDARS}/ (allowed: {listed}"
                          f"{did_you_mean(name, known)})")
    text = read(path) if read is not None else path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    items = data.get("periods")
    if not isinstance(items, list) or not items:
        raise PeriodError(f"calendar '{name}' ({path}): periods: a list of {{from, to, name}}")
    try:
        return Periods.of(_spans(items, f"calendar '{name}': "))
    except PeriodError as exc:
        raise PeriodError(f"{exc} ({path})") from None
