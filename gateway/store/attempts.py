"""Every delivery attempt (portable SQL): written by the outbox in the transaction that records the job's
outcome, so a job's state and its history never disagree; searched by operators; bodies forgotten after
their retention period."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from gateway.store.filters import like

Outcome = Literal["delivered", "failed", "dead", "documents-asked", "lease-expired"]
OUTCOMES: tuple[str, ...] = ("delivered", "failed", "dead", "documents-asked", "lease-expired")


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What the dispatcher knows of an attempt besides its outcome: when it started, how long it took, and
    (when capture is on) what was sent and answered, already masked."""

    started_at: float
    duration_ms: float
    request_body: str | None = None
    response_body: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: int
    job_id: int
    dossier_id: str
    agency: str
    endpoint: str
    step: str
    attempt: int
    started_at: float
    duration_ms: float
    outcome: str
    error: str | None
    agency_ref: str | None
    request_body: str | None
    response_body: str | None


@dataclass(frozen=True, slots=True)
class AttemptQuery:
    """Filters of the transaction browser; each narrows the result. `text` is searched in the error."""

    dossier_id: str | None = None
    agency: str | None = None
    endpoint: str | None = None
    outcome: str | None = None
    since: float | None = None  # epoch seconds, started at or after
    until: float | None = None  # started before
    text: str | None = None
    before_id: int | None = None  # paging: older than this attempt
    limit: int = 100


_COLUMNS = (
    "job_id, dossier_id, agency, endpoint, step, attempt, started_at, duration_ms, outcome, error, agency_ref, "
    "request_body, response_body"
)


def record(
    conn: sqlite3.Connection,
    job_id: int,
    outcome: Outcome,
    info: AttemptInfo | None,
    *,
    error: str | None = None,
    agency_ref: str | None = None,
    job: tuple[str, str, str, str, int] | None = None,
) -> None:
    """The attempt of a job as it stands now (its attempt count is this attempt's number). `job` is its
    (dossier_id, agency, endpoint, step, attempts) when the caller has just read them: a statement fewer."""
    now = time.time()
    info = info or AttemptInfo(now, 0.0)
    if job is None:
        job = conn.execute(
            "SELECT dossier_id, agency, endpoint, step, attempts FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if job is None:
            return
    conn.execute(
        f"INSERT INTO attempts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job_id,
            *job,
            info.started_at,
            round(info.duration_ms, 1),
            outcome,
            error[:2000] if error else None,
            agency_ref,
            info.request_body,
            info.response_body,
        ),
    )


def record_expired(conn: sqlite3.Connection, now: float, *, every: bool = False) -> None:
    """Leases about to be taken back (`every`: all of them, at the start of the process that owns the
    store): their attempt ended without a recorded outcome."""
    why = "the gateway stopped before the outcome was recorded" if every else _EXPIRED
    conn.execute(
        # Typed parameters: PostgreSQL infers none from a SELECT list (and its REAL is 4 bytes: seconds lost).
        f"INSERT INTO attempts ({_COLUMNS}) SELECT id, dossier_id, agency, endpoint, step, attempts, "
        "COALESCE(lease_until, CAST(? AS DOUBLE PRECISION)), 0, 'lease-expired', CAST(? AS TEXT), NULL, NULL, NULL "
        "FROM jobs "
        "WHERE state = 'leased' AND (? = 1 OR lease_until < ?)",
        (now, why, int(every), now),
    )


_EXPIRED = "the lease expired before the outcome was recorded"


def _row(r: Any) -> AttemptRecord:
    return AttemptRecord(
        r["id"],
        r["job_id"],
        r["dossier_id"],
        r["agency"],
        r["endpoint"],
        r["step"],
        r["attempt"],
        r["started_at"],
        r["duration_ms"],
        r["outcome"],
        r["error"],
        r["agency_ref"],
        r["request_body"],
        r["response_body"],
    )


def search(conn: sqlite3.Connection, q: AttemptQuery) -> list[AttemptRecord]:
    """Newest first. The dossier's and the agency's filters read their own index."""
    sql, args = "SELECT * FROM attempts WHERE 1 = 1", list[Any]()
    for column, value in (("dossier_id", q.dossier_id), ("agency", q.agency), ("endpoint", q.endpoint)):
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    if q.outcome is not None:
        sql += " AND outcome = ?"
        args.append(q.outcome)
    if q.since is not None:
        sql += " AND started_at >= ?"
        args.append(q.since)
    if q.until is not None:
        sql += " AND started_at < ?"
        args.append(q.until)
    if q.text:
        # LOWER on both sides: the same on SQLite and PostgreSQL (ILIKE is PostgreSQL's alone).
        sql += " AND LOWER(COALESCE(error, '')) LIKE ? ESCAPE '\\'"
        args.append(like(q.text))
    if q.before_id is not None:
        sql += " AND id < ?"
        args.append(q.before_id)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(q.limit)
    return [_row(r) for r in conn.execute(sql, args).fetchall()]


def of_dossier(conn: sqlite3.Connection, dossier_id: str) -> list[AttemptRecord]:
    cur = conn.execute("SELECT * FROM attempts WHERE dossier_id = ? ORDER BY id", (dossier_id,))
    return [_row(r) for r in cur.fetchall()]


def forget_bodies(conn: sqlite3.Connection, before: float) -> int:
    """The captured bodies of attempts started before `before` are dropped; the attempts stay."""
    cur = conn.execute(
        "UPDATE attempts SET request_body = NULL, response_body = NULL "
        "WHERE started_at < ? AND (request_body IS NOT NULL OR response_body IS NOT NULL)",
        (before,),
    )
    return cur.rowcount
