"""Working-day arithmetic for due dates: Saturdays, Sundays and Vietnamese public holidays do not count."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


_loaded: dict[int, frozenset[date]] = {}


def preload(years: range) -> None:
    """Load the holiday tables of these years at once (the package reads translation files)."""
    table = holidays.country_holidays("VN", years=years)
    for year in years:
        _loaded[year] = frozenset(d for d in table if d.year == year)


def _holidays(year: int) -> frozenset[date]:
    got = _loaded.get(year)
    if got is None:
        preload(range(year, year + 1))
        got = _loaded[year]
    return got


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: datetime, days: int) -> datetime:
    """The moment `days` working days after `start`, same local time of day, in Asia/Ho_Chi_Minh.

    A dossier received on a non-working day starts counting from the next working day.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    local = start.astimezone(VN_TZ)
    day = local.date()
    while not is_working_day(day):
        day += timedelta(days=1)
        local = datetime.combine(day, datetime.min.time().replace(hour=8), VN_TZ)
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return datetime.combine(day, local.timetz())


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]; negative when end is before start."""
    if end < start:
        return -working_days_between(end, start)
    n, day = 0, start
    while day < end:
        day += timedelta(days=1)
        n += is_working_day(day)
    return n


SUPPLEMENT_WORKING_DAYS = 7  # the applicant's time to supply missing documents when the agency sets none


def supplement_deadline(requested_at: datetime) -> datetime:
    """When an applicant asked for missing documents must have supplied them, by default."""
    return add_working_days(requested_at, SUPPLEMENT_WORKING_DAYS)


def due_after_supplement(due_at: datetime, requested_at: datetime, answered_at: datetime) -> datetime:
    """The dossier's due date once a supplement request is answered.

    The clock stops while the dossier waits on the applicant: the working days from the request to the
    answer are added to the due date; the time the agency had already spent still counts.
    """
    waited = working_days_between(requested_at.astimezone(VN_TZ).date(), answered_at.astimezone(VN_TZ).date())
    return add_working_days(due_at, waited) if waited > 0 else due_at
