"""contracts.calendar: working days and due dates in Asia/Ho_Chi_Minh, with make-up Saturdays, the
government's late decisions and an operator's own days."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import holidays
import pytest

from contracts.calendar import (
    DECISIONS,
    NATIONAL,
    TABLE_PATH,
    TABLE_YEARS,
    VN_TZ,
    WorkCalendar,
    add_working_days,
    due_after_supplement,
    is_working_day,
    package_table,
    stored_table,
    supplement_deadline,
    working_days_between,
)

ROOT = Path(__file__).resolve().parents[2]

ICT = timezone(timedelta(hours=7))


def vn(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 11, 24), True),  # Monday
        (date(2025, 11, 21), True),  # Friday
        (date(2025, 11, 22), False),  # Saturday
        (date(2025, 11, 23), False),  # Sunday
        (date(2026, 2, 13), True),  # Friday before Tết
        (date(2026, 2, 16), False),  # Tết 2026: Monday 16 ...
        (date(2026, 2, 17), False),
        (date(2026, 2, 18), False),
        (date(2026, 2, 19), False),
        (date(2026, 2, 20), False),  # ... to Friday 20 February
        (date(2026, 2, 23), True),  # back to work
        (date(2026, 4, 27), False),  # Hùng Kings (Sunday 26 April), observed on Monday
        (date(2026, 4, 30), False),  # Reunification Day
        (date(2026, 5, 1), False),  # Labour Day
        (date(2026, 5, 4), True),
        (date(2025, 9, 1), False),  # National Day 2025 (1-2 September)
        (date(2025, 9, 2), False),
        (date(2026, 1, 1), False),
        (date(2025, 12, 31), True),
        (date(2026, 1, 2), False),  # VPCP notice 12729/VPCP-KGVX: Friday 2 January 2026 off ...
        (date(2026, 1, 10), True),  # ... made up on Saturday 10 January
        (date(2025, 4, 26), True),  # a make-up Saturday the holidays package lists (for Friday 2 May 2025)
        (date(2026, 8, 22), True),  # another (for Monday 31 August 2026)
        (date(2026, 8, 31), False),
        (date(2026, 11, 24), False),  # Vietnam Cultural Day, a holiday from 2026
        (date(2027, 2, 4), False),  # Tết 2027: Thursday 4 ...
        (date(2027, 2, 10), False),  # ... to Wednesday 10 February
        (date(2027, 2, 11), True),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (vn(2025, 11, 21, 9, 30), 1, vn(2025, 11, 24, 9, 30)),  # Friday + 1 = Monday, same time
        (vn(2025, 11, 24, 10), 5, vn(2025, 12, 1, 10)),  # a full week
        (vn(2025, 11, 24, 10), 0, vn(2025, 11, 24, 10)),
        (vn(2025, 11, 20, 16), 10, vn(2025, 12, 4, 16)),
        # Tết 2026: nothing counts from Saturday 14 to Sunday 22 February
        (vn(2026, 2, 12, 14), 3, vn(2026, 2, 24, 14)),
        (vn(2026, 2, 13, 14), 1, vn(2026, 2, 23, 14)),
        (vn(2026, 2, 9, 8), 7, vn(2026, 2, 25, 8)),  # 7 working days to supply missing documents
        # 30 April and 1 May 2026 fall on Thursday and Friday
        (vn(2026, 4, 29), 1, vn(2026, 5, 4)),
        (vn(2026, 4, 28), 3, vn(2026, 5, 5)),
        # 2025: 30 April, 1 May and the substitute day off on Friday 2 May
        (vn(2025, 4, 29), 1, vn(2025, 5, 5)),
        # across the new year: 1 January, then Friday 2 January 2026 off (VPCP notice 12729/VPCP-KGVX)
        (vn(2025, 12, 31, 11), 1, vn(2026, 1, 5, 11)),
    ],
)
def test_add_working_days(start: datetime, days: int, due: datetime) -> None:
    result = add_working_days(start, days)
    assert result == due
    assert result.tzinfo is VN_TZ
    assert (result.hour, result.minute) == (due.hour, due.minute)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # received on Saturday afternoon: counting starts Monday at 08:00
        (vn(2025, 11, 22, 15), 0, vn(2025, 11, 24, 8)),
        (vn(2025, 11, 22, 15), 1, vn(2025, 11, 25, 8)),
        (vn(2025, 11, 23, 20), 5, vn(2025, 12, 1, 8)),  # Sunday evening
        # received during Tết: counting starts on Monday 23 February
        (vn(2026, 2, 17, 10), 1, vn(2026, 2, 24, 8)),
        (vn(2026, 2, 14, 10), 0, vn(2026, 2, 23, 8)),
        # received on 30 April 2026
        (vn(2026, 4, 30, 9), 2, vn(2026, 5, 6, 8)),
    ],
)
def test_received_on_a_non_working_day(start: datetime, days: int, due: datetime) -> None:
    assert add_working_days(start, days) == due
    assert add_working_days(start, days).hour == 8


def test_start_in_another_zone_is_counted_in_vietnam() -> None:
    # 02:30 UTC on Friday is 09:30 in Hà Nội
    assert add_working_days(datetime(2025, 11, 21, 2, 30, tzinfo=UTC), 1) == vn(2025, 11, 24, 9, 30)
    # 18:00 UTC on Friday is already 01:00 on Saturday in Hà Nội: a non-working day
    assert add_working_days(datetime(2025, 11, 21, 18, 0, tzinfo=UTC), 0) == vn(2025, 11, 24, 8)
    # a fixed +07:00 offset gives the same result as the named zone
    assert add_working_days(datetime(2025, 11, 21, 9, 30, tzinfo=ICT), 1) == vn(2025, 11, 24, 9, 30)


def test_add_working_days_rejects_negative_days() -> None:
    with pytest.raises(ValueError, match=r"^days must be >= 0$"):
        add_working_days(vn(2025, 11, 24), -1)


def test_add_working_days_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match=r"^start must be timezone-aware$"):
        add_working_days(datetime(2025, 11, 24, 9), 1)


@pytest.mark.parametrize(
    ("start", "end", "n"),
    [
        (date(2025, 11, 21), date(2025, 11, 24), 1),  # Friday -> Monday
        (date(2025, 11, 24), date(2025, 11, 24), 0),
        (date(2025, 11, 24), date(2025, 11, 21), -1),
        (date(2025, 11, 22), date(2025, 11, 23), 0),  # a weekend
        (date(2026, 2, 13), date(2026, 2, 23), 1),  # over Tết
        (date(2026, 2, 12), date(2026, 2, 24), 3),
        (date(2026, 4, 29), date(2026, 5, 4), 1),
        (date(2025, 11, 24), date(2025, 12, 24), 22),
    ],
)
def test_working_days_between(start: date, end: date, n: int) -> None:
    assert working_days_between(start, end) == n


@pytest.mark.parametrize("days", [0, 1, 3, 7, 10, 15, 30])
@pytest.mark.parametrize("start", [vn(2026, 2, 9), vn(2026, 4, 24), vn(2025, 8, 28), vn(2025, 12, 29)])
def test_due_date_is_that_many_working_days_later(start: datetime, days: int) -> None:
    assert is_working_day(start.date())
    due = add_working_days(start, days)
    assert is_working_day(due.date())
    assert working_days_between(start.date(), due.date()) == days


def test_supplement_deadline_is_seven_working_days() -> None:
    assert supplement_deadline(vn(2026, 12, 4, 10, 30)) == vn(2026, 12, 15, 10, 30)  # Friday -> Tuesday
    assert supplement_deadline(vn(2026, 4, 29)) == vn(2026, 5, 12)  # 30 April and 1 May do not count


@pytest.mark.parametrize(
    ("requested", "answered", "due_after"),
    [
        (vn(2026, 12, 7, 10), vn(2026, 12, 7, 16), vn(2026, 12, 11, 17)),  # answered the same day: unchanged
        (vn(2026, 12, 7, 10), vn(2026, 12, 9, 8), vn(2026, 12, 15, 17)),  # two working days waited
        (vn(2026, 12, 4, 16), vn(2026, 12, 7, 9), vn(2026, 12, 14, 17)),  # over a weekend: one
        (vn(2026, 4, 29), vn(2026, 5, 4), vn(2026, 12, 14, 17)),  # over 30 April, 1 May and a weekend: one
    ],
)
def test_due_date_moves_by_the_working_days_spent_waiting(
    requested: datetime, answered: datetime, due_after: datetime
) -> None:
    assert due_after_supplement(vn(2026, 12, 11, 17), requested, answered) == due_after


def test_due_date_after_a_supplement_keeps_its_time_and_zone() -> None:
    due = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)  # 17:00 in Hà Nội
    moved = due_after_supplement(due, vn(2026, 12, 8), vn(2026, 12, 10))
    assert moved == vn(2026, 12, 15, 17)


# --- what the installed holidays release knows, and what the gateway adds ---------------------------


def test_the_stored_national_table_is_what_the_installed_holidays_release_says() -> None:
    """contracts/vn_holidays.json spares every process the package's import; after an upgrade of
    `holidays`, regenerate it: `python -m contracts.calendar`."""
    stored = json.loads(TABLE_PATH.read_bytes())
    assert stored["source"] == f"holidays=={version('holidays')}, country VN"
    assert stored_table() == package_table(TABLE_YEARS)


def test_preloading_the_calendar_does_not_import_the_holidays_package() -> None:
    code = (
        "import sys; from contracts.calendar import preload, TABLE_YEARS; "
        "preload(range(TABLE_YEARS.start, TABLE_YEARS.stop)); "
        "assert 'holidays' not in sys.modules, 'holidays was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_the_installed_holidays_release_for_2025_to_2027() -> None:
    """Pinned: an upgrade of `holidays` that changes any of these (or learns DECISIONS) shows up here."""
    table = holidays.country_holidays("VN", years=range(2025, 2028))
    assert sorted(table) == [
        date(2025, 1, 1), *(date(2025, 1, d) for d in range(27, 32)), date(2025, 2, 1),
        date(2025, 4, 7), date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2),
        date(2025, 9, 1), date(2025, 9, 2),
        date(2026, 1, 1), *(date(2026, 2, d) for d in range(16, 21)),
        date(2026, 4, 26), date(2026, 4, 27), date(2026, 4, 30), date(2026, 5, 1),
        date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2), date(2026, 11, 24),
        date(2027, 1, 1), *(date(2027, 2, d) for d in range(4, 11)),
        date(2027, 4, 16), date(2027, 4, 30), date(2027, 5, 1), date(2027, 5, 3),
        date(2027, 9, 2), date(2027, 9, 3), date(2027, 11, 24),
    ]  # fmt: skip
    worked = sorted(d for d in table.weekend_workdays if 2025 <= d.year <= 2027)
    assert worked == [date(2025, 4, 26), date(2026, 8, 22)]
    # What DECISIONS adds is still unknown to it; once the package knows, the entry can go.
    for decision in DECISIONS:
        assert decision.day not in table and decision.day not in table.weekend_workdays


@pytest.mark.parametrize(
    ("start", "days", "due", "why"),
    [
        (vn(2025, 12, 31, 11), 1, vn(2026, 1, 5, 11), "1 and 2 January 2026 off"),
        (vn(2025, 12, 30, 15), 2, vn(2026, 1, 5, 15), "31 December counts, then 1-4 January do not"),
        (vn(2026, 1, 2, 10), 0, vn(2026, 1, 5, 8), "received on the day off: counting starts Monday"),
        (vn(2026, 1, 9, 10), 1, vn(2026, 1, 10, 10), "Friday + 1 is the make-up Saturday 10 January"),
        (vn(2026, 1, 10, 10), 0, vn(2026, 1, 10, 10), "received on the make-up Saturday: a working day"),
        (vn(2026, 1, 8, 10), 3, vn(2026, 1, 12, 10), "Friday, Saturday 10, Monday"),
        (vn(2026, 2, 13, 14), 1, vn(2026, 2, 23, 14), "Tết 2026"),
        (vn(2027, 2, 3, 9), 1, vn(2027, 2, 11, 9), "Tết 2027: 4 to 10 February"),
        (vn(2027, 2, 1, 9), 3, vn(2027, 2, 11, 9), "Tết 2027 from Monday"),
        (vn(2025, 4, 25, 9), 3, vn(2025, 4, 29, 9), "make-up Saturday 26 April 2025 (holidays' weekend_workdays)"),
        (vn(2025, 4, 29, 9), 1, vn(2025, 5, 5, 9), "30 April, 1 May and 2 May 2025 off"),
        (vn(2026, 4, 29, 9), 1, vn(2026, 5, 4, 9), "30 April and 1 May 2026"),
        (vn(2027, 4, 29, 9), 1, vn(2027, 5, 4, 9), "30 April 2027, and 1 May (a Saturday) observed on Monday 3"),
        (vn(2025, 8, 29, 9), 1, vn(2025, 9, 3, 9), "1 and 2 September 2025"),
        (vn(2026, 8, 21, 9), 1, vn(2026, 8, 22, 9), "make-up Saturday 22 August 2026"),
        (vn(2026, 8, 28, 9), 1, vn(2026, 9, 3, 9), "31 August (swapped), 1 and 2 September 2026"),
        (vn(2027, 9, 1, 9), 1, vn(2027, 9, 6, 9), "2 and 3 September 2027"),
    ],
)
def test_due_dates_across_the_days_off_of_2025_to_2027(start: datetime, days: int, due: datetime, why: str) -> None:
    assert add_working_days(start, days) == due, why


def test_an_operators_day_off_and_working_day() -> None:
    """A late decision an operator writes into calendar.toml moves due dates on top of the national calendar."""
    start = vn(2027, 1, 27, 9)  # Wednesday
    assert NATIONAL.add_working_days(start, 2) == vn(2027, 1, 29, 9)
    off = WorkCalendar.of(days_off=[date(2027, 1, 28)])
    assert not off.is_working_day(date(2027, 1, 28))
    assert off.add_working_days(start, 2) == vn(2027, 2, 1, 9)
    both = WorkCalendar.of(days_off=[date(2027, 1, 28)], working_days=[date(2027, 1, 30)])
    assert both.is_working_day(date(2027, 1, 30))  # a Saturday made a working day
    assert both.add_working_days(start, 2) == vn(2027, 1, 30, 9)
    assert both.working_days_between(date(2027, 1, 27), date(2027, 2, 1)) == 3
    # The operator has the last word, over holidays and decisions alike.
    assert WorkCalendar.of(working_days=[date(2026, 1, 2)]).is_working_day(date(2026, 1, 2))
    assert not WorkCalendar.of(days_off=[date(2026, 1, 10)]).is_working_day(date(2026, 1, 10))
    with pytest.raises(ValueError, match=r"^2027-01-28: both a day off and a working day$"):
        WorkCalendar.of(days_off=[date(2027, 1, 28)], working_days=[date(2027, 1, 28)])


def test_an_operators_day_off_moves_supplement_deadlines_and_answers() -> None:
    cal = WorkCalendar.of(days_off=[date(2027, 3, 3)])
    asked = vn(2027, 3, 1, 10)  # Monday
    assert NATIONAL.supplement_deadline(asked) == vn(2027, 3, 10, 10)
    assert cal.supplement_deadline(asked) == vn(2027, 3, 11, 10)
    due = vn(2027, 3, 15, 17)
    answered = vn(2027, 3, 4, 9)  # Monday -> Thursday: three working days waited, two with the day off
    assert NATIONAL.due_after_supplement(due, asked, answered) == vn(2027, 3, 18, 17)
    assert cal.due_after_supplement(due, asked, answered) == vn(2027, 3, 17, 17)


def _walked(cal: WorkCalendar, start: datetime, days: int) -> datetime:
    """The due date counted day by day, as the calendar did before it remembered its answers."""
    local = start.astimezone(VN_TZ)
    day = local.date()
    while not cal.is_working_day(day):
        day += timedelta(days=1)
        local = datetime.combine(day, datetime.min.time().replace(hour=8), VN_TZ)
    for _ in range(days):
        day += timedelta(days=1)
        while not cal.is_working_day(day):
            day += timedelta(days=1)
    return datetime.combine(day, local.timetz())


def test_a_remembered_due_date_is_the_one_counted_day_by_day() -> None:
    """Due dates are remembered per start day and count: asked again at another hour, on a day off, or in
    another calendar, the answer is still the walk's, time of day and zone included."""
    off = WorkCalendar.of(days_off=[date(2027, 1, 28)])
    starts = [vn(2027, 1, 27, h, m) for h, m in ((0, 0), (9, 15), (23, 59))]
    starts += [vn(2027, 1, 30, 10), vn(2027, 1, 28, 14), datetime(2027, 1, 27, 20, 0, tzinfo=UTC)]
    for cal in (NATIONAL, off, WorkCalendar.of()):
        for start in starts:
            for days in (0, 1, 2, 15):
                for _ in range(2):  # the second answer comes from what the calendar remembered
                    due = cal.add_working_days(start, days)
                    assert due == _walked(cal, start, days)
                    assert due.tzinfo is VN_TZ and due.timetz() == _walked(cal, start, days).timetz()
    assert off.add_working_days(vn(2027, 1, 27, 9), 1) == vn(2027, 1, 29, 9)  # not NATIONAL's 28th
    assert NATIONAL.add_working_days(vn(2027, 1, 27, 9), 1) == vn(2027, 1, 28, 9)
