"""Working-day arithmetic for due dates, in Asia/Ho_Chi_Minh.

A day is a working day when an operator declared it one (conf/calendar.toml), or when the government
moved a working day onto a weekend (a make-up Saturday: the `holidays` package lists them as
`weekend_workdays`; DECISIONS adds what the installed release does not know yet). It is not when an
operator declared it a day off, when it is a public holiday or a day off the government gave
(`holidays`, DECISIONS), or when it is a Saturday or a Sunday.

`WorkCalendar` holds the operator's days on top of the national calendar; the module-level functions
are the national calendar alone. A running gateway takes its calendar from the live configuration, so a
reload applies a late government decision without a restart (gateway/live.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True, slots=True)
class Decision:
    """A government decision about one day: a day off (working=False) or a make-up working day."""

    day: date
    working: bool
    source: str


# Decisions the installed `holidays` release (see .ci/constraints.txt) does not know; tests/contracts/
# test_calendar.py pins what it knows for 2025-2027, so an upgrade that learns these shows up there.
DECISIONS: tuple[Decision, ...] = (
    Decision(date(2026, 1, 2), False, "VPCP notice 12729/VPCP-KGVX of 25/12/2025: Friday 2/1/2026 off"),
    Decision(date(2026, 1, 10), True, "VPCP notice 12729/VPCP-KGVX of 25/12/2025: Saturday 10/1/2026 worked"),
)

# year -> (days off on top of weekends, weekend days that are worked)
_loaded: dict[int, tuple[frozenset[date], frozenset[date]]] = {}

# What the pinned `holidays` release says of Vietnam, written out for the years a gateway runs in
# (`python -m contracts.calendar` writes it; tests/contracts/test_calendar.py checks it against the
# package): asking the package itself imports its 150-odd countries, about 11 MiB in every process.
TABLE_PATH = Path(__file__).with_name("vn_holidays.json")
TABLE_YEARS = range(2020, 2046)
Table = dict[int, tuple[list[date], list[date]]]  # year -> (days off, make-up weekend days), as the package says
_stored: Table | None = None


def package_table(years: range) -> Table:
    """The `holidays` package's national table for these years (it reads translation files from disk)."""
    import holidays  # here only: see TABLE_PATH

    table = holidays.country_holidays("VN", years=years)
    worked = set(table.weekend_workdays)  # may hold other years' entries too: filtered per year
    return {y: (sorted(d for d in table if d.year == y), sorted(d for d in worked if d.year == y)) for y in years}


def stored_table() -> Table:
    global _stored
    if _stored is None:
        raw = json.loads(TABLE_PATH.read_bytes())
        _stored = {
            int(y): ([date.fromisoformat(d) for d in v["off"]], [date.fromisoformat(d) for d in v["worked"]])
            for y, v in raw["years"].items()
        }
    return _stored


def write_table(path: Path = TABLE_PATH, years: range = TABLE_YEARS) -> None:
    table = package_table(years)
    years_out = {
        str(y): {"off": [d.isoformat() for d in off], "worked": [d.isoformat() for d in worked]}
        for y, (off, worked) in table.items()
    }
    doc = {"source": f"holidays=={version('holidays')}, country VN", "years": years_out}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def preload(years: range) -> None:
    """Load the national tables of these years at once: from the stored table, and from the package for
    years outside it."""
    stored = stored_table()
    missing = [y for y in years if y not in stored]
    table = {**stored, **(package_table(range(min(missing), max(missing) + 1)) if missing else {})}
    for year in years:
        off, make_up = set(table[year][0]), set(table[year][1])
        for decision in DECISIONS:
            if decision.day.year == year:
                (make_up if decision.working else off).add(decision.day)
                (off if decision.working else make_up).discard(decision.day)
        _loaded[year] = (frozenset(off), frozenset(make_up))


def _national(year: int) -> tuple[frozenset[date], frozenset[date]]:
    got = _loaded.get(year)
    if got is None:
        preload(range(year, year + 1))
        got = _loaded[year]
    return got


def national_working_day(day: date) -> bool:
    """Whether the day is worked by the national calendar alone (no operator's days)."""
    off, make_up = _national(day.year)
    if day in make_up:
        return True
    return day.weekday() < 5 and day not in off


_EIGHT = datetime.min.time().replace(hour=8, tzinfo=VN_TZ)  # a count that starts on a later day starts at 08:00
_ENDS_KEPT = 4096


@dataclass(frozen=True)
class WorkCalendar:
    """The national calendar with an operator's extra days off and extra working days on top.

    Immutable: a reload builds a new one and swaps it in, so one computation sees one calendar.
    """

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    # (start day, working days) -> (end day, whether the count started on a later day). Every submission
    # asks for its due date, and the walk costs 14 µs for 15 days; the answers only change with the
    # calendar, and a reload builds a new one. Bounded: cleared when full.
    _ends: dict[tuple[date, int], tuple[date, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def of(cls, days_off: Iterable[date] = (), working_days: Iterable[date] = ()) -> WorkCalendar:
        off, worked = frozenset(days_off), frozenset(working_days)
        both = off & worked
        if both:
            raise ValueError(f"{', '.join(sorted(d.isoformat() for d in both))}: both a day off and a working day")
        return cls(off, worked)

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        if day in self.days_off:
            return False
        return national_working_day(day)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The moment `days` working days after `start`, same local time of day, in Asia/Ho_Chi_Minh.

        A dossier received on a non-working day starts counting from the next working day, at 08:00.
        """
        if days < 0:
            raise ValueError("days must be >= 0")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        local = start.astimezone(VN_TZ)
        end, moved = self._end_day(local.date(), days)
        return datetime.combine(end, _EIGHT if moved else local.timetz())

    def _end_day(self, start: date, days: int) -> tuple[date, bool]:
        key = (start, days)
        got = self._ends.get(key)
        if got is not None:
            return got
        day, moved = start, False
        while not self.is_working_day(day):
            day += timedelta(days=1)
            moved = True
        remaining = days
        while remaining:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        if len(self._ends) >= _ENDS_KEPT:
            self._ends.clear()
        self._ends[key] = (day, moved)
        return day, moved

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.working_days_between(end, start)
        n, day = 0, start
        while day < end:
            day += timedelta(days=1)
            n += self.is_working_day(day)
        return n

    def supplement_deadline(self, requested_at: datetime) -> datetime:
        """When an applicant asked for missing documents must have supplied them, by default."""
        return self.add_working_days(requested_at, SUPPLEMENT_WORKING_DAYS)

    def due_after_supplement(self, due_at: datetime, requested_at: datetime, answered_at: datetime) -> datetime:
        """The dossier's due date once a supplement request is answered.

        The clock stops while the dossier waits on the applicant: the working days from the request to
        the answer are added to the due date; the time the agency had already spent still counts.
        """
        waited = self.working_days_between(requested_at.astimezone(VN_TZ).date(), answered_at.astimezone(VN_TZ).date())
        return self.add_working_days(due_at, waited) if waited > 0 else due_at


SUPPLEMENT_WORKING_DAYS = 7  # the applicant's time to supply missing documents when the agency sets none

NATIONAL = WorkCalendar()

# The national calendar alone, for callers without an operator's configuration.
is_working_day = NATIONAL.is_working_day
add_working_days = NATIONAL.add_working_days
working_days_between = NATIONAL.working_days_between
supplement_deadline = NATIONAL.supplement_deadline
due_after_supplement = NATIONAL.due_after_supplement


if __name__ == "__main__":  # regenerate TABLE_PATH after upgrading `holidays`
    write_table()
    print(f"wrote {TABLE_PATH} for {TABLE_YEARS.start}-{TABLE_YEARS.stop - 1}")
