"""Read-side queries of the SQLite store, run on the reader pool's connections: dossiers and their
event logs, the status feed, and the counts behind the metrics and the dashboard.

Bundle views are read in bundles.py, beside the writes that share their queries.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts import Dossier, StatusEvent
from gateway.store import rows
from gateway.store.base import DeliveryFilter, FeedItem

# A dossier with its latest job (its submission, or the delivery of a supplement answered since).
DOSSIER_WITH_JOB = (
    "SELECT d.*, j.state AS job_state, j.attempts AS job_attempts, j.last_error AS job_last_error, "
    "j.next_at AS job_next_at FROM dossiers d "
    "LEFT JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE dossier_id = d.id)"
)


def dossier_with_job(row: sqlite3.Row) -> Dossier:
    """A row of DOSSIER_WITH_JOB as a dossier."""
    job = None
    if row["job_state"] is not None:
        job = {
            "state": row["job_state"],
            "attempts": row["job_attempts"],
            "last_error": row["job_last_error"],
            "next_at": row["job_next_at"],
        }
    return rows.dossier(row, job)


def dossier(conn: sqlite3.Connection, ref: str) -> Dossier | None:
    row = conn.execute(f"{DOSSIER_WITH_JOB} WHERE d.id = ? OR d.code = ?", (ref, ref)).fetchone()
    return None if row is None else dossier_with_job(row)


def dossiers(
    conn: sqlite3.Connection,
    client_id: str | None,
    status: int | None,
    limit: int,
    delivery: DeliveryFilter | None = None,
) -> list[Dossier]:
    sql, args = f"{DOSSIER_WITH_JOB} WHERE 1=1", list[Any]()
    if client_id is not None:
        sql += " AND d.client_id = ?"
        args.append(client_id)
    if status is not None:
        sql += " AND d.status = ?"
        args.append(status)
    if delivery is not None:
        sql += " AND j.state = ?"
        args.append(rows.JOB_STATE_OF[delivery])
    sql += " ORDER BY d.received_at DESC LIMIT ?"
    return [dossier_with_job(r) for r in conn.execute(sql, (*args, limit)).fetchall()]


def events(conn: sqlite3.Connection, dossier_id: UUID) -> list[StatusEvent]:
    cur = conn.execute("SELECT * FROM events WHERE dossier_id = ? ORDER BY seq", (str(dossier_id),))
    return [rows.event(r) for r in cur.fetchall()]


def feed(conn: sqlite3.Connection, after: int, limit: int, client_id: str | None) -> list[FeedItem]:
    if client_id is None:
        cur = conn.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
    else:
        cur = conn.execute(
            "SELECT e.* FROM events e JOIN dossiers d ON d.id = e.dossier_id "
            "WHERE e.seq > ? AND d.client_id = ? ORDER BY e.seq LIMIT ?",
            (after, client_id, limit),
        )
    events = cur.fetchall()
    if not events:
        return []
    # The page's dossiers and their event logs in two queries, not three per dossier.
    ids = orjson.dumps(list(dict.fromkeys(e["dossier_id"] for e in events))).decode()
    logs: dict[str, list[StatusEvent]] = {}
    for r in conn.execute(
        "SELECT * FROM events WHERE dossier_id IN (SELECT value FROM json_each(?)) ORDER BY seq", (ids,)
    ):
        logs.setdefault(r["dossier_id"], []).append(rows.event(r))
    dossiers = {
        r["id"]: (dossier_with_job(r), logs[r["id"]])
        for r in conn.execute(f"{DOSSIER_WITH_JOB} WHERE d.id IN (SELECT value FROM json_each(?))", (ids,))
    }
    return [FeedItem(rows.event(e), *dossiers[e["dossier_id"]]) for e in events]


def counts(conn: sqlite3.Connection) -> dict[str, Any]:
    counted_at = datetime.now(UTC)  # the answer may be reused for a while (costly.py): its age is shown
    by_status = dict(conn.execute("SELECT status, COUNT(*) FROM dossiers GROUP BY status").fetchall())
    by_state = dict(conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    overdue = conn.execute(
        "SELECT COUNT(*) FROM dossiers WHERE status NOT IN (3, 7, 8, 9, 10) AND due_at < ?",
        (datetime.now(UTC).isoformat(),),
    ).fetchone()[0]
    # Dossiers whose latest delivery was given up: the centre sees why on the dossier, the operator counts them.
    undeliverable = conn.execute(
        "SELECT COUNT(*) FROM jobs j WHERE j.state = 'dead' "
        "AND j.id = (SELECT MAX(id) FROM jobs WHERE dossier_id = j.dossier_id)"
    ).fetchone()[0]
    by_agency = {
        f"{a}:{s}": n for a, s, n in conn.execute("SELECT agency, state, COUNT(*) FROM jobs GROUP BY agency, state")
    }
    return {
        "dossiers_by_status": by_status,
        "jobs_by_state": by_state,
        "jobs_by_agency": by_agency,
        "overdue": overdue,
        "undeliverable": undeliverable,
        "counted_at": counted_at,
    }
