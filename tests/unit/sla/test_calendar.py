"""Working time in Asia/Ho_Chi_Minh over lunch breaks, weekends and Vietnam's public holidays."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.sla.calendar import REPO_ROOT, WorkingCalendar, load_holidays
from ioc.sla.exceptions import CalendarError
from ioc.sla.settings import WorkingHours
from ioc.timeutil import parse_ts

H = 3600.0
CAL = WorkingCalendar.default()


def local(text: str) -> float:
    return parse_ts(text + "+07:00")


def test_within_a_morning_and_across_the_lunch_break():
    assert CAL.add_working(local("2025-10-27T08:00:00"), 2 * H) == local("2025-10-27T10:00:00")
    assert CAL.add_working(local("2025-10-27T11:00:00"), 1 * H) == local("2025-10-27T14:00:00")
    assert CAL.working_seconds(local("2025-10-27T11:00:00"), local("2025-10-27T14:00:00")) == 1 * H


def test_across_a_weekend():
    friday = local("2025-10-24T16:30:00")
    assert CAL.add_working(friday, 1 * H) == local("2025-10-27T07:30:00")
    assert CAL.working_seconds(friday, local("2025-10-27T07:30:00")) == 1 * H


def test_across_a_weekend_and_the_national_day_holidays():
    # Fri 29/08/2025 16:00: 1 h that day, Sat-Sun weekend, Mon 01/09 and Tue 02/09 Quốc khánh.
    start = local("2025-08-29T16:00:00")
    assert CAL.add_working(start, 2 * H) == local("2025-09-03T08:00:00")
    assert CAL.add_working(start, 8 * H) == local("2025-09-03T16:00:00")
    assert CAL.working_seconds(start, local("2025-09-03T07:00:00")) == 1 * H


def test_across_tet_2025_and_its_make_up_saturday():
    start = local("2025-01-24T16:00:00")   # Friday before Tết Ất Tỵ: off 25/01 - 02/02
    assert CAL.add_working(start, 8 * H) == local("2025-02-03T16:00:00")
    assert CAL.is_working_day(date(2025, 2, 8))      # Saturday worked in exchange for 27/01
    assert not CAL.is_working_day(date(2025, 1, 27))
    assert not CAL.is_working_day(date(2025, 2, 9))


def test_start_outside_working_hours_and_zero():
    saturday = local("2025-10-25T10:00:00")
    assert CAL.add_working(saturday, 1800) == local("2025-10-27T07:30:00")
    assert CAL.add_working(saturday, 0) == saturday
    assert CAL.add_working(local("2025-10-27T12:00:00"), 1) == local("2025-10-27T13:30:01")
    assert CAL.working_seconds(local("2025-10-28T00:00:00"), local("2025-10-27T00:00:00")) == -8 * H


def test_negative_time_is_refused():
    with pytest.raises(CalendarError, match="negative"):
        CAL.add_working(local("2025-10-27T08:00:00"), -1)


def test_without_holidays_a_public_holiday_is_a_working_day():
    plain = WorkingCalendar()
    assert plain.add_working(local("2025-08-29T16:00:00"), 2 * H) == local("2025-09-01T08:00:00")


def test_custom_hours_and_zone():
    cal = WorkingCalendar(WorkingHours(timezone="UTC", weekdays=(0, 1, 2, 3, 4, 5), periods=(("09:00", "17:00"),)))
    assert cal.add_working(parse_ts("2025-10-25T16:00:00Z"), 2 * H) == parse_ts("2025-10-27T10:00:00Z")
    with pytest.raises(CalendarError, match="IANA"):
        WorkingCalendar(WorkingHours(timezone="Mars/Olympus"))


def test_the_vietnam_file_lists_every_statutory_holiday_2025_to_2030():
    holidays, working, years = load_holidays(REPO_ROOT / "config" / "calendars" / "vn.yaml")
    assert years == (2025, 2030)
    for year in range(2025, 2031):
        names = " | ".join(h.name for h in holidays if h.day.year == year)
        for holiday in ("Tết Dương lịch", "Tết Nguyên đán", "Giỗ Tổ Hùng Vương", "Quốc tế Lao động", "Quốc khánh"):
            assert holiday in names, (year, holiday)
        tet_workdays = [h for h in holidays if h.day.year == year and "Tết Nguyên đán" in h.name
                        and h.day.weekday() < 5]
        assert len(tet_workdays) >= 5, year
        quoc_khanh = [h for h in holidays if h.day.year == year and "Quốc khánh" in h.name]
        assert len(quoc_khanh) == 2, year
    assert all(h.status in ("official", "expected") for h in holidays)
    assert all(w.day.weekday() == 5 for w in working)
    assert not {h.day for h in holidays} & {w.day for w in working}
    assert CAL.covers(local("2030-06-01T00:00:00")) and not CAL.covers(local("2031-01-02T00:00:00"))


def test_bad_calendar_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("holidays:\n  - {date: 2025-01-01, name: x, status: maybe}\n", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"holidays\[0\]: status 'maybe'"):
        WorkingCalendar.from_file(bad)
    bad.write_text("holidays:\n  - {name: x}\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="needs date"):
        WorkingCalendar.from_file(bad)
    with pytest.raises(CalendarError, match="cannot read"):
        WorkingCalendar.from_file(tmp_path / "missing.yaml")


@settings(max_examples=150, deadline=None)
@given(start=st.floats(min_value=parse_ts("2025-01-01T00:00:00Z"), max_value=parse_ts("2030-12-01T00:00:00Z")),
       seconds=st.integers(min_value=1, max_value=200 * 3600))
def test_working_seconds_inverts_add_working(start, seconds):
    deadline = CAL.add_working(start, seconds)
    assert deadline > start
    assert CAL.working_seconds(start, deadline) == pytest.approx(seconds, abs=1e-3)
    assert CAL.add_working(start, seconds - 1) <= deadline
