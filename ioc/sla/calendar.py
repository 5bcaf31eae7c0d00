"""Working time: office hours in local time, over weekends and public holidays.

Holidays are data (`config/calendars/vn.yaml`), not code. All times are epoch seconds; days,
hours and holidays are read in the calendar's time zone (Asia/Ho_Chi_Minh by default).

>>> cal = WorkingCalendar.default()
>>> from ioc.timeutil import parse_ts, format_ts
>>> friday_4pm = parse_ts("2025-10-24T16:00:00+07:00")
>>> format_ts(cal.add_working(friday_4pm, 2 * 3600))       # 1 h on Friday, 1 h on Monday
'2025-10-27T01:00:00Z'
>>> cal.working_seconds(friday_4pm, parse_ts("2025-10-27T08:00:00+07:00")) / 3600
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ioc.sla.exceptions import CalendarError
from ioc.sla.settings import DEFAULT_CALENDAR, WorkingHours

__all__ = ["WorkingCalendar", "Holiday", "load_holidays", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# A deadline search gives up after this many days without working time (a calendar error).
_MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    name: str
    status: str   # official | expected


@dataclass(frozen=True)
class WorkingCalendar:
    """Working periods per local day; `holidays` are off, `working_days` are on (make-up Saturdays)."""

    hours: WorkingHours = field(default_factory=WorkingHours)
    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    years: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.hours.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"timezone {self.hours.timezone!r} is not an IANA zone "
                                "(e.g. Asia/Ho_Chi_Minh)") from None

    @classmethod
    def default(cls) -> WorkingCalendar:
        """Default hours with the holidays of `config/calendars/vn.yaml`."""
        return cls.from_file(REPO_ROOT / DEFAULT_CALENDAR)

    @classmethod
    def from_file(cls, path: str | Path, hours: WorkingHours | None = None) -> WorkingCalendar:
        """A calendar with the holidays of a YAML file (relative paths: from the repository root)."""
        file = Path(path)
        if not file.is_absolute():
            file = REPO_ROOT / file
        holidays, working, years = load_holidays(file)
        return cls(hours or WorkingHours(), frozenset(h.day for h in holidays),
                   frozenset(h.day for h in working), years)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.hours.timezone)

    def covers(self, ts: float) -> bool:
        """Whether the holiday data covers the year of `ts` (outside it only weekends are off)."""
        year = datetime.fromtimestamp(ts, self.zone).year
        return self.years is not None and self.years[0] <= year <= self.years[1]

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() in self.hours.weekdays and day not in self.holidays

    def _periods(self, start: float) -> Iterator[tuple[float, float]]:
        """Working periods (epoch seconds) from the local day of `start` on, in order."""
        day = datetime.fromtimestamp(start, self.zone).date()
        spans = self.hours.seconds()
        for offset in range(_MAX_DAYS):
            current = day + timedelta(days=offset)
            if not self.is_working_day(current):
                continue
            for begin, end in spans:
                yield self._at(current, begin), self._at(current, end)
        raise CalendarError(f"no working time within {_MAX_DAYS} days after {day}")

    def _at(self, day: date, seconds: int) -> float:
        clock = time(seconds // 3600, seconds % 3600 // 60)
        return datetime.combine(day, clock, self.zone).timestamp()

    def add_working(self, start: float, seconds: float) -> float:
        """The time at which `seconds` of working time have passed since `start`.

        Zero seconds is `start` itself; otherwise the deadline falls inside (or at the end of)
        a working period.
        """
        if seconds < 0:
            raise CalendarError(f"working time to add must not be negative, not {seconds}")
        if seconds == 0:
            return start
        remaining = seconds
        for begin, end in self._periods(start):
            if end <= start:
                continue
            begin = max(begin, start)
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise CalendarError("unreachable")  # pragma: no cover - _periods raises first

    def working_seconds(self, a: float, b: float) -> float:
        """Working seconds between two times (negative when `b` is before `a`)."""
        if b < a:
            return -self.working_seconds(b, a)
        total = 0.0
        for begin, end in self._periods(a):
            if begin >= b:
                break
            total += max(0.0, min(end, b) - max(begin, a))
        return total


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def load_holidays(path: Path) -> tuple[list[Holiday], list[Holiday], tuple[int, int] | None]:
    """Holidays, make-up working days and the covered years of a calendar file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"{path}: cannot read the calendar ({exc})") from None
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: a calendar is a mapping with `holidays:` (a list)")
    holidays = list(_entries(path, "holidays", data.get("holidays") or []))
    working = list(_entries(path, "working_days", data.get("working_days") or []))
    years = data.get("years")
    if years is not None and not (isinstance(years, list) and len(years) == 2
                                  and all(isinstance(y, int) for y in years)):
        raise CalendarError(f"{path}: years: [first, last] (e.g. [2025, 2030])")
    return holidays, working, (years[0], years[1]) if years else None


def _entries(path: Path, name: str, items: Iterable[Any]) -> Iterator[Holiday]:
    if not isinstance(items, list):
        raise CalendarError(f"{path}: {name}: a list of {{date, name, status}}")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("date"), date):
            raise CalendarError(f"{path}: {name}[{index}]: needs date: YYYY-MM-DD")
        status = item.get("status", "official")
        if status not in ("official", "expected"):
            raise CalendarError(f"{path}: {name}[{index}]: status {status!r} (official or expected)")
        yield Holiday(item["date"], str(item.get("name", "")), status)
