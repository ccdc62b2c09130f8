"""The outbox in SQLite: delivery jobs leased to the dispatcher, completed, failed (retried or
dead-lettered), reclaimed when their lease expires, given back when their claim was cancelled,
released at start-up and replayed; and the listing of jobs for operators.

The writes run inside the writer's transaction. A lease belongs to its owner: completing or failing
a job whose lease was lost changes nothing.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from typing import Any
from uuid import UUID

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, WorkCalendar
from gateway.connector import SubmitReceipt
from gateway.errors import IllegalTransition, InvalidResult
from gateway.store import reads, rows, updates
from gateway.store.base import Completion, JobRecord, JobState, UpdateSource
from gateway.store.events import accepted_by_agency

Claimed = tuple[list[sqlite3.Row], list[sqlite3.Row]]  # the leased jobs' rows and their dossiers'


def claim(conn: sqlite3.Connection, owner: str, free: dict[str, int], lease_seconds: float) -> Claimed:
    """Lease ready jobs, at most free[agency] per agency, oldest due first."""
    now = time.time()
    leased: list[sqlite3.Row] = []
    for agency, n in free.items():
        if n > 0:
            leased += conn.execute(
                "UPDATE jobs SET state = 'leased', lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE id IN (SELECT id FROM jobs WHERE agency = ? AND state = 'pending' "
                "AND next_at <= ? ORDER BY next_at LIMIT ?) RETURNING *",
                (owner, now + lease_seconds, now, agency, now, n),
            ).fetchall()
    if not leased:
        return [], []
    # Each job's dossier in the same trip: the dispatcher needs it for the delivery.
    ids = orjson.dumps([r["dossier_id"] for r in leased]).decode()
    dossiers = conn.execute(
        f"{reads.DOSSIER_WITH_JOB} WHERE d.id IN (SELECT value FROM json_each(?))", (ids,)
    ).fetchall()
    return leased, dossiers


def claimed(leased: list[sqlite3.Row], dossier_rows: list[sqlite3.Row]) -> list[JobRecord]:
    """The rows `claim` returned, as job records: built by the caller after the commit, not in the writer thread."""
    by_id = {r["id"]: r for r in dossier_rows}
    leased.sort(key=lambda r: (r["next_at"], r["id"]))
    return [dataclasses.replace(rows.job(r), dossier=reads.dossier_with_job(by_id[r["dossier_id"]])) for r in leased]


def complete(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    receipt: SubmitReceipt,
    actor: str,
    *,
    calendar: WorkCalendar = NATIONAL,
) -> Completion:
    row = conn.execute(
        "SELECT j.dossier_id, j.step, j.agency, j.endpoint, d.status "
        "FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
        "WHERE j.id = ? AND j.state = 'leased' AND j.lease_owner = ?",
        (job_id, owner),
    ).fetchone()
    if row is None:
        return Completion(False)  # the lease was lost; whoever holds it now finishes the job
    did, step, status = row["dossier_id"], row["step"], row["status"]
    conn.execute(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, "
        "updated_at = ? WHERE id = ?",
        (time.time(), job_id),
    )
    if step == "submit" and status == DossierStatus.RECEIVED:
        accepted_by_agency(conn, did, actor, receipt.agency_ref)
    elif receipt.agency_ref:
        conn.execute("UPDATE dossiers SET agency_ref = COALESCE(agency_ref, ?) WHERE id = ?", (receipt.agency_ref, did))
    source = UpdateSource(actor, row["agency"], row["endpoint"])
    skipped: dict[str, str] = {}
    for upd in receipt.updates:
        # A receipt answers about this job's dossier only, whatever dossier it names.
        bound = upd.model_copy(update={"dossier_id": UUID(did)})
        conn.execute("SAVEPOINT receipt_update")
        try:
            updates.apply_update(conn, bound, source, calendar=calendar)
        except (IllegalTransition, InvalidResult) as exc:
            # Superseded by later news (or refused): delivering again would bring the same answer.
            conn.execute("ROLLBACK TO SAVEPOINT receipt_update")
            kind = "superseded" if isinstance(exc, IllegalTransition) else "invalid-result"
            skipped[upd.event_id] = f"{kind}: {exc}"
        conn.execute("RELEASE SAVEPOINT receipt_update")
    return Completion(True, skipped)


def fail(conn: sqlite3.Connection, job_id: int, owner: str, error: str, retry_at: float | None) -> bool:
    state = "pending" if retry_at is not None else "dead"
    cur = conn.execute(
        "UPDATE jobs SET state = ?, next_at = COALESCE(?, next_at), lease_owner = NULL, "
        "lease_until = NULL, last_error = ?, updated_at = ? "
        "WHERE id = ? AND state = 'leased' AND lease_owner = ?",
        (state, retry_at, error[:2000], time.time(), job_id, owner),
    )
    return cur.rowcount == 1


def release_leases(conn: sqlite3.Connection) -> int:
    # An interrupted delivery keeps its place in the queue: ahead of jobs that became due after it.
    cur = conn.execute(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, next_at = MIN(next_at, ?) "
        "WHERE state = 'leased'",
        (time.time(),),
    )
    return cur.rowcount


def reclaim_expired(conn: sqlite3.Connection) -> int:
    """Leases that ran out become ready again; the attempt they counted stays counted. Portable SQL over
    `lease_until` alone: with several processes, only leases nobody renewed in time are taken."""
    now = time.time()
    cur = conn.execute(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, last_error = ?, updated_at = ? "
        "WHERE state = 'leased' AND lease_until < ?",
        ("the lease expired before the outcome was recorded", now, now),
    )
    return cur.rowcount


def unclaim(conn: sqlite3.Connection, owner: str, job_ids: list[int]) -> int:
    """A claim nobody will deliver, undone: the jobs `owner` still holds are ready as before, attempt taken back."""
    if not job_ids:
        return 0
    marks = ", ".join("?" * len(job_ids))
    cur = conn.execute(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, attempts = attempts - 1, "
        f"updated_at = ? WHERE state = 'leased' AND lease_owner = ? AND id IN ({marks})",
        (time.time(), owner, *job_ids),
    )
    return cur.rowcount


def replay_dead(conn: sqlite3.Connection, job_ids: list[int] | None) -> int:
    sql = "UPDATE jobs SET state = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE state = 'dead'"
    args: list[Any] = [time.time(), time.time()]
    if job_ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        args.append(orjson.dumps(job_ids).decode())
    return conn.execute(sql, args).rowcount


def jobs(conn: sqlite3.Connection, state: JobState | None, limit: int, ids: list[int] | None) -> list[JobRecord]:
    sql, args = "SELECT * FROM jobs WHERE 1=1", list[Any]()
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        args.append(orjson.dumps(ids).decode())
    cur = conn.execute(sql + " ORDER BY id LIMIT ?", (*args, limit))
    return [rows.job(r) for r in cur.fetchall()]
