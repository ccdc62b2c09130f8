"""Centre performance figures kept up to date in the writer's transaction (portable SQL).

Every dossier received, every status event that counts (5 supplement asked, 9 finished, 10 handed over)
adds to one row per dimension (centre, agency, procedure, province) and local day in `kpi_daily`, so a
report over a period reads a few rows per centre and day, never the dossiers. Working days to finish are
whole numbers: `kpi_days` counts the dossiers finished each day in each number of them, from which the
mean and the 90th percentile are exact. Every write is an increment in place (`ON CONFLICT DO UPDATE
SET n = n + ...`): writers in several processes never lose one. Dossiers still open are listed in
`kpi_open` (with their dimensions and due date, moved with the dossier's when a supplement's answer
moves it) until a final status. `rebuild` recomputes everything from the events.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, VN_TZ, WorkCalendar
from gateway.store import multirow

DIMENSIONS = ("centre", "agency", "procedure", "province")
COUNTERS = (
    "received",
    "finished",
    "on_time",
    "late",
    "days_sum",
    "supplements",
    "returned",
    "returned_elsewhere",
    "with_fees",
    "paid_online",
)
_CLOSED = frozenset(
    int(s)
    for s in (
        DossierStatus.REJECTED,
        DossierStatus.WITHDRAWN,
        DossierStatus.STOPPED,
        DossierStatus.FINISHED,
        DossierStatus.RETURNED,
    )
)


@dataclass(frozen=True, slots=True)
class Dims:
    centre: str
    agency: str
    procedure: str
    province: str

    def items(self) -> Iterable[tuple[str, str]]:
        return zip(DIMENSIONS, (self.centre, self.agency, self.procedure, self.province), strict=True)


def dims(receiving_unit: str, agency: str, procedure: str, submission: Mapping[str, Any]) -> Dims:
    """A dossier's dimensions; its province is its jurisdiction's (where the case belongs)."""
    province = str((submission.get("jurisdiction") or {}).get("province") or "")
    return Dims(receiving_unit, agency, procedure, province)


def local_day(at: str | datetime) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(VN_TZ).date().isoformat()


def _fees(submission: Mapping[str, Any]) -> tuple[int, int]:
    """(has fees, paid online): a dossier with fees counts as paid online when any fee was paid online."""
    fees = submission.get("fees") or []
    return int(bool(fees)), int(any(f.get("paid_online") for f in fees))


def _rows(d: Dims, day: str, counts: Mapping[str, int]) -> list[tuple[Any, ...]]:
    values = [counts.get(c, 0) for c in COUNTERS]
    return [(dim, item, day, *values) for dim, item in d.items()]


def _add(conn: sqlite3.Connection, d: Dims, day: str, **counts: int) -> None:
    # One multi-row statement for the dimensions (each once): one step of the writer, one round trip on
    # PostgreSQL, where executemany took a pipeline of its own.
    rows = _rows(d, day, counts)
    conn.execute(_upsert_many(len(rows)), [v for row in rows for v in row])


def _add_finished(conn: sqlite3.Connection, d: Dims, day: str, working_days: int, **counts: int) -> None:
    """A finish: the counters, and one more dossier finished in `working_days` in each dimension. Both are
    increments in place, so writers in several processes (PostgreSQL) never lose one."""
    _add(conn, d, day, **counts)
    rows = [(dim, item, day, working_days) for dim, item in d.items()]
    conn.execute(_days_many(len(rows)), [v for row in rows for v in row])


@dataclass(frozen=True, slots=True)
class Received:
    dossier_id: str
    dims: Dims
    received_at: str
    due_at: str  # UTC ISO, as the dossier row keeps it
    submission: Mapping[str, Any]
    day: str | None = None  # local_day(received_at), when the caller has it


def on_received(conn: sqlite3.Connection, dossiers: Sequence[Received]) -> None:
    """New dossiers: counted as received on their day, listed as open. A batch of submissions costs two
    statements whatever its size (multi-row VALUES, one key once: PostgreSQL refuses a row updated twice
    by one statement), each a single step of the writer thread."""
    summed: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for r in dossiers:
        fees, online = _fees(r.submission)
        day = r.day or local_day(r.received_at)
        for dim, item in r.dims.items():
            c = summed[(dim, item, day)]
            c["received"] += 1
            c["with_fees"] += fees
            c["paid_online"] += online
    rows = [(*key, *(c.get(k, 0) for k in COUNTERS)) for key, c in summed.items()]
    for chunk in multirow.chunks(rows):
        conn.execute(_upsert_many(len(chunk)), [v for row in chunk for v in row])
    opened = [
        (r.dossier_id, r.dims.centre, r.dims.agency, r.dims.procedure, r.dims.province, r.due_at) for r in dossiers
    ]
    for chunk in multirow.chunks(opened):
        conn.execute(_open_many(len(chunk)), [v for row in chunk for v in row])


@functools.cache
def _upsert_many(n: int) -> str:
    one = f"({', '.join('?' * (3 + len(COUNTERS)))})"
    return (
        f"INSERT INTO kpi_daily (dim, item, day, {', '.join(COUNTERS)}) VALUES {', '.join([one] * n)} "
        "ON CONFLICT (dim, day, item) DO UPDATE SET "
        + ", ".join(f"{c} = kpi_daily.{c} + excluded.{c}" for c in COUNTERS)
    )


@functools.cache
def _days_many(n: int) -> str:
    return (
        f"INSERT INTO kpi_days (dim, item, day, working_days, n) VALUES {', '.join(['(?, ?, ?, ?, 1)'] * n)} "
        "ON CONFLICT (dim, day, item, working_days) DO UPDATE SET n = kpi_days.n + 1"
    )


@functools.cache
def _open_many(n: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
    return (
        f"INSERT INTO kpi_open (dossier_id, centre, agency, procedure, province, due_at) VALUES {values} "
        "ON CONFLICT (dossier_id) DO NOTHING"
    )


def due_moved(conn: sqlite3.Connection, did: str, due_at: str) -> None:
    """A supplement's answer moved the dossier's due date (UTC ISO): its lateness is judged by the new one."""
    conn.execute("UPDATE kpi_open SET due_at = ? WHERE dossier_id = ?", (due_at, did))


COUNTED = frozenset(
    int(s) for s in (DossierStatus.SUPPLEMENT_REQUESTED, DossierStatus.FINISHED, DossierStatus.RETURNED)
)
# The dossier's columns a counted event needs (`on_event`'s `known`: a caller that has read them already).
COUNTED_COLUMNS = "receiving_unit, agency, procedure_code, client_id, received_at, due_at, submission"


def on_event(
    conn: sqlite3.Connection,
    did: str,
    status: int,
    at: str,
    actor: str,
    calendar: WorkCalendar = NATIONAL,
    known: tuple[Any, Mapping[str, Any]] | None = None,
) -> None:
    """A status event just appended (before the dossier row moves to it). `known`: the dossier's
    COUNTED_COLUMNS and its parsed submission, read by the caller in this transaction."""
    if status not in COUNTED:
        if status in _CLOSED:
            conn.execute("DELETE FROM kpi_open WHERE dossier_id = ?", (did,))
        return
    if known is None:
        row = conn.execute(f"SELECT {COUNTED_COLUMNS} FROM dossiers WHERE id = ?", (did,)).fetchone()
        if row is None:
            return
        known = row, orjson.loads(row["submission"])
    _counted(conn, known[0], known[1], did, status, at, actor, calendar)


def _counted(
    conn: sqlite3.Connection,
    row: Any,
    submission: Mapping[str, Any],
    did: str,
    status: int,
    at: str,
    actor: str,
    calendar: WorkCalendar,
) -> None:
    d = dims(row["receiving_unit"], row["agency"], row["procedure_code"], submission)
    day = local_day(at)
    if status == DossierStatus.SUPPLEMENT_REQUESTED:
        _add(conn, d, day, supplements=1)
        return
    if status == DossierStatus.RETURNED:
        _add(conn, d, day, returned=1, returned_elsewhere=int(actor != row["client_id"]))
    else:  # finished: on time when no later than the due date (NgayKetThucXuLy <= NgayHenTra)
        finished = datetime.fromisoformat(at)
        on_time = finished <= datetime.fromisoformat(row["due_at"])
        wd = working_days(calendar, row["received_at"], finished)
        _add_finished(conn, d, day, wd, finished=1, on_time=int(on_time), late=int(not on_time), days_sum=wd)
    conn.execute("DELETE FROM kpi_open WHERE dossier_id = ?", (did,))


def working_days(calendar: WorkCalendar, received_at: str | datetime, finished: datetime) -> int:
    """Working days from the day received to the day finished (local dates), 0 for the same day."""
    start = datetime.fromisoformat(received_at) if isinstance(received_at, str) else received_at
    return max(0, calendar.working_days_between(start.astimezone(VN_TZ).date(), finished.astimezone(VN_TZ).date()))


def rebuild(conn: sqlite3.Connection, calendar: WorkCalendar = NATIONAL) -> int:
    """Recompute every figure from the dossiers and their events (after an upgrade, or to check the
    incremental figures); returns the dossiers counted."""
    conn.execute("DELETE FROM kpi_daily")
    conn.execute("DELETE FROM kpi_days")
    conn.execute("DELETE FROM kpi_open")
    n = 0
    cur = conn.execute(
        "SELECT id, receiving_unit, agency, procedure_code, client_id, received_at, due_at, submission, status "
        "FROM dossiers ORDER BY received_at"
    )
    for row in cur.fetchall():
        n += 1
        submission = orjson.loads(row["submission"])
        d = dims(row["receiving_unit"], row["agency"], row["procedure_code"], submission)
        on_received(conn, [Received(row["id"], d, row["received_at"], row["due_at"], submission)])
        for ev in conn.execute(
            "SELECT status, at, actor FROM events WHERE dossier_id = ? ORDER BY seq", (row["id"],)
        ).fetchall():
            if ev["status"] in COUNTED:
                _counted(conn, row, submission, row["id"], ev["status"], ev["at"], ev["actor"], calendar)
            elif ev["status"] in _CLOSED:
                conn.execute("DELETE FROM kpi_open WHERE dossier_id = ?", (row["id"],))
    return n


@dataclass(frozen=True, slots=True)
class KpiRows:
    """What a report is computed from: per item, the counters summed over the period, the histogram of
    working days to finish, and the open dossiers now (and those of them past their due date)."""

    totals: dict[str, dict[str, int]]
    days: dict[str, Counter[int]]
    open: dict[str, tuple[int, int]]


def period(conn: sqlite3.Connection, dim: str, start: date, end: date, now: str) -> KpiRows:
    """The counters of `dim` over local days [start, end], grouped by item; `now` (UTC ISO) decides lateness."""
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}")
    args = (dim, start.isoformat(), end.isoformat())
    sums = ", ".join(f"SUM({c})" for c in COUNTERS)
    totals: dict[str, dict[str, int]] = {}
    for item, *values in conn.execute(
        f"SELECT item, {sums} FROM kpi_daily WHERE dim = ? AND day BETWEEN ? AND ? GROUP BY item", args
    ).fetchall():
        totals[item] = dict(zip(COUNTERS, (int(v) for v in values), strict=True))
    days: dict[str, Counter[int]] = defaultdict(Counter)
    for item, wd, n in conn.execute(
        "SELECT item, working_days, SUM(n) FROM kpi_days WHERE dim = ? AND day BETWEEN ? AND ? "
        "GROUP BY item, working_days",
        args,
    ).fetchall():
        days[item][int(wd)] += int(n)
    open_: dict[str, tuple[int, int]] = {}
    # The column is the dimension's own name: `dim` was checked against DIMENSIONS above.
    for item, n, late in conn.execute(
        f"SELECT {dim}, COUNT(*), SUM(CASE WHEN due_at < ? THEN 1 ELSE 0 END) FROM kpi_open GROUP BY {dim}", (now,)
    ).fetchall():
        open_[item] = (int(n), int(late or 0))
    return KpiRows(totals, dict(days), open_)


def series(conn: sqlite3.Connection, dim: str, start: date, end: date) -> list[tuple[str, str, int, int, int]]:
    """(item, day, received, finished, on time) per day of [start, end]: the on-time rate over time."""
    cur = conn.execute(
        "SELECT item, day, received, finished, on_time FROM kpi_daily WHERE dim = ? AND day BETWEEN ? AND ? "
        "ORDER BY day, item",
        (dim, start.isoformat(), end.isoformat()),
    )
    return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in cur.fetchall()]
