"""What holds deliveries back from an agency on purpose: maintenance windows and operators' pauses.

Windows are declared in `maintenance.toml` (one-off, or weekly in a time zone, Asia/Ho_Chi_Minh unless
said otherwise) and are part of the reloadable configuration: `Schedule` is built with the rest of it
and swapped in by a reload. Pauses are taken through the admin API or the CLI and kept in the store, so
that they survive a restart and every gateway process obeys them; each process reads them again every
`hold_refresh_interval` seconds (the process that took one knows it at once).

While an endpoint is held nothing is sent to it: no delivery, no poll, no probe. Its jobs stay pending
with their attempts unspent, and the time they wait does not count against their retry budget.

Weekly windows are evaluated by hand with zoneinfo: a recurrence library (dateutil's rrule, croniter)
would give the starts, but the question asked here is "is this instant inside one, and when does that
change", which for "these weekdays, from this time to that time" is a few lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from typing import Literal
from zoneinfo import ZoneInfo

from contracts.calendar import VN_TZ
from gateway.config.model import WEEKDAYS, WindowConf
from gateway.store.base import Pause

HoldKind = Literal["window", "pause"]


@dataclass(frozen=True, slots=True)
class Hold:
    """Why an endpoint is held now, and until when (epoch seconds)."""

    kind: HoldKind
    until: float
    reason: str
    by: str | None = None  # who paused it (pauses only)


@dataclass(frozen=True, slots=True)
class Window:
    """One window of the configuration, ready to be asked about instants."""

    agency: str
    endpoint: str | None  # None: every endpoint of the agency
    reason: str
    zone: ZoneInfo
    start: datetime | time_of_day
    end: datetime | time_of_day
    days: frozenset[int] | None  # weekly: the weekdays it starts on (Monday is 0); None: one-off

    @classmethod
    def of(cls, conf: WindowConf) -> Window:
        zone = ZoneInfo(conf.timezone)
        start, end = conf.start, conf.end
        if isinstance(start, datetime) and start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        if isinstance(end, datetime) and end.tzinfo is None:
            end = end.replace(tzinfo=zone)
        days = frozenset(WEEKDAYS.index(d) for d in conf.days) if conf.days is not None else None
        return cls(conf.agency, conf.endpoint, conf.reason, zone, start, end, days)

    def applies_to(self, agency: str, endpoint: str) -> bool:
        return self.agency == agency and self.endpoint in (None, endpoint)

    def occurrences(self, around: float, before: int = 1, after: int = 7) -> list[tuple[float, float]]:
        """(start, end) in epoch seconds of the occurrences starting from `before` days before the local
        day of `around` to `after` days after it (a one-off window has one)."""
        if isinstance(self.start, datetime) and isinstance(self.end, datetime):
            return [(self.start.timestamp(), self.end.timestamp())]
        assert isinstance(self.start, time_of_day) and isinstance(self.end, time_of_day) and self.days is not None
        today = datetime.fromtimestamp(around, self.zone).date()
        out = []
        for offset in range(-before, after + 1):
            day = today + timedelta(days=offset)
            if day.weekday() in self.days:
                out.append((self._at(day, self.start), self._at(self._end_day(day), self.end)))
        return out

    def _end_day(self, day: date) -> date:
        assert isinstance(self.start, time_of_day) and isinstance(self.end, time_of_day)
        return day + timedelta(days=1) if self.end <= self.start else day

    def _at(self, day: date, t: datetime | time_of_day) -> float:
        assert isinstance(t, time_of_day)
        return datetime.combine(day, t, self.zone).timestamp()

    def active(self, now: float) -> tuple[float, float] | None:
        """The occurrence `now` falls in, if any."""
        for start, end in self.occurrences(now, before=1, after=0):
            if start <= now < end:
                return start, end
        return None


class Schedule:
    """The maintenance windows of one configuration.

    Which windows are active is worked out once and kept until the next start or end of one: the
    dispatcher asks for every endpoint at every claim.
    """

    def __init__(self, windows: Sequence[Window] = ()) -> None:
        self.windows = tuple(windows)
        self._active: tuple[float, float, list[tuple[Window, float]]] = (0.0, 0.0, [])  # from, until, (window, end)

    @classmethod
    def build(cls, confs: Iterable[WindowConf]) -> Schedule:
        return cls([Window.of(c) for c in confs])

    def _active_at(self, now: float) -> list[tuple[Window, float]]:
        since, until, active = self._active
        if not since <= now < until:
            active = [(w, span[1]) for w in self.windows if (span := w.active(now)) is not None]
            change = self.next_change(now)
            self._active = (now, change if change is not None else now + 86400.0, active)
        return active

    def hold(self, agency: str, endpoint: str, now: float) -> Hold | None:
        """The window holding this endpoint now (the one ending last, if several overlap)."""
        if not self.windows:
            return None
        best: Hold | None = None
        for w, end in self._active_at(now):
            if w.applies_to(agency, endpoint) and (best is None or end > best.until):
                best = Hold("window", end, w.reason)
        return best

    def upcoming(self, agency: str, endpoint: str, now: float) -> tuple[float, float, str] | None:
        """The next window of this endpoint to start after `now` (within a week): start, end, reason."""
        found: tuple[float, float, str] | None = None
        for w in self.windows:
            if w.applies_to(agency, endpoint):
                for start, end in w.occurrences(now, before=0):
                    if start > now and (found is None or start < found[0]):
                        found = (start, end, w.reason)
        return found

    def next_change(self, now: float) -> float | None:
        """The next instant a window starts or ends (within a week), when the dispatcher must look again."""
        times = [t for w in self.windows for span in w.occurrences(now) for t in span if t > now]
        return min(times, default=None)


class Holds:
    """Windows (from the configuration in use, which a reload replaces) and pauses (from the store)."""

    def __init__(self, schedule: Callable[[], Schedule] = Schedule) -> None:
        self._schedule = schedule
        self._pauses: dict[tuple[str, str | None], Pause] = {}

    @property
    def schedule(self) -> Schedule:
        return self._schedule()

    @property
    def pauses(self) -> list[Pause]:
        return list(self._pauses.values())

    def set_pauses(self, pauses: Iterable[Pause]) -> bool:
        """Replace the known pauses with those read from the store; True when something changed."""
        fresh = {(p.agency, p.endpoint): p for p in pauses}
        changed = fresh != self._pauses
        self._pauses = fresh
        return changed

    def paused(self, pause: Pause) -> None:
        self._pauses[(pause.agency, pause.endpoint)] = pause

    def resumed(self, agency: str, endpoint: str | None) -> None:
        for key in [k for k in self._pauses if k[0] == agency and (endpoint is None or k[1] == endpoint)]:
            del self._pauses[key]

    def hold(self, agency: str, endpoint: str, now: float) -> Hold | None:
        """What holds this endpoint now: a pause (the operator's word), else a window."""
        best: Hold | None = None
        for key in ((agency, endpoint), (agency, None)):
            p = self._pauses.get(key)
            if p is not None and p.until > now and (best is None or p.until > best.until):
                best = Hold("pause", p.until, p.reason, p.by)
        return best or self.schedule.hold(agency, endpoint, now)

    def next_change(self, now: float) -> float | None:
        ends = [p.until for p in self._pauses.values() if p.until > now]
        window = self.schedule.next_change(now)
        if window is not None:
            ends.append(window)
        return min(ends, default=None)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: datetime, *, ago: bool = False) -> datetime:
    """An instant an operator writes: ISO 8601 (`2026-12-06T06:00+07:00`; without an offset, Vietnam's
    time) or a duration (`90m`, `2h`, `1d`) from now, or before now with `ago`. ValueError with a readable
    message otherwise."""
    m = _DURATION.match(text)
    if m:
        delta = timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
        return now - delta if ago else now + delta
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date and time (2026-12-06T06:00+07:00) nor a duration (30m, 2h, 1d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=VN_TZ)
