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
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, WorkCalendar
from gateway.connector import SubmitReceipt
from gateway.errors import IllegalTransition, InvalidResult
from gateway.store import attempts, audit, dialect, reads, rows, updates, wallet
from gateway.store.attempts import AttemptInfo
from gateway.store.base import AuditEntry, Completion, JobRecord, JobState, UpdateSource
from gateway.store.events import accepted_by_agency
from gateway.store.seals import AuditKey

# The leased jobs' rows, their dossiers' rows, and (dossier id, sha256, content) of their documents kept inline
Claimed = tuple[list[sqlite3.Row], list[sqlite3.Row], list[sqlite3.Row]]


# A failing job's wait past its due time is added to `held`: the retry budget counts only the time the
# job spent being tried and backing off, not the time nobody would send it (gateway/dispatcher.py).
_LEASE = (
    "UPDATE jobs SET state = 'leased', lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
    "held = held + CASE WHEN failing_since IS NOT NULL AND next_at < ? THEN ? - next_at ELSE 0 END, "
    "updated_at = ? WHERE id IN ({ready}) RETURNING *"
)
_READY = (
    "SELECT {columns} FROM jobs WHERE {where} AND state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?{lock}"
)


def claim(
    conn: sqlite3.Connection,
    owner: str,
    free: dict[str, int],
    lease_seconds: float,
    endpoints: Mapping[str, Mapping[str, int]] | None = None,
) -> Claimed:
    """Lease ready jobs, at most free[agency] per agency, oldest due first; for an agency named in
    `endpoints`, only from the endpoints named there, at most that many from each."""
    now = time.time()
    leased: list[sqlite3.Row] = []
    lock = dialect.skip_locked(conn)

    def lease(ready: str, args: tuple[Any, ...]) -> int:
        got = conn.execute(_LEASE.format(ready=ready), (owner, now + lease_seconds, now, now, now, *args)).fetchall()
        leased.extend(got)
        return len(got)

    def of_endpoint(agency: str, endpoint: str, n: int, columns: str = "id") -> tuple[str, tuple[Any, ...]]:
        ready = _READY.format(columns=columns, where="agency = ? AND endpoint = ?", lock=lock)
        return ready, (agency, endpoint, now, n)

    for agency, n in free.items():
        only = endpoints.get(agency) if endpoints is not None else None
        if n <= 0:
            continue
        if only is None:
            lease(_READY.format(columns="id", where="agency = ?", lock=lock), (agency, now, n))
            continue
        # Endpoints capped below the agency's free slots (a probe: 1) first, each alone; then the others
        # together, oldest due first across them: one query per endpoint, merged, so that each reads its
        # own range of the index of pending jobs and never the backlog of an endpoint left out.
        capped = sorted(e for e, cap in only.items() if cap < n)
        rest = sorted(e for e, cap in only.items() if cap >= n)
        for endpoint in capped:
            if n > 0 and only[endpoint] > 0:
                n -= lease(*of_endpoint(agency, endpoint, min(only[endpoint], n)))
        if len(rest) == 1 and n > 0:
            lease(*of_endpoint(agency, rest[0], n))
        elif rest and n > 0:
            arms = [of_endpoint(agency, e, n, "id, next_at") for e in rest]
            union = " UNION ALL ".join(f"SELECT id, next_at FROM ({sql}) AS e{i}" for i, (sql, _) in enumerate(arms))
            args = tuple(a for _, arm_args in arms for a in arm_args)
            lease(f"SELECT id FROM ({union}) AS r ORDER BY next_at LIMIT ?", (*args, n))
    if not leased:
        return [], [], []
    # Each job's dossier in the same trip: the dispatcher needs it for the delivery, and the connector its
    # documents (those kept in the database are small: `documents.database_max_bytes`).
    ids = orjson.dumps([r["dossier_id"] for r in leased]).decode()
    dossiers = conn.execute(
        f"{reads.DOSSIER_WITH_JOB} WHERE d.id IN (SELECT value FROM json_each(?))", (ids,)
    ).fetchall()
    contents = conn.execute(
        "SELECT DISTINCT dd.dossier_id, doc.sha256, doc.content FROM dossier_documents dd "
        "JOIN documents doc ON doc.sha256 = dd.sha256 WHERE dd.dossier_id IN (SELECT value FROM json_each(?))",
        (ids,),
    ).fetchall()
    return leased, dossiers, contents


def claimed(leased: list[sqlite3.Row], dossier_rows: list[sqlite3.Row], contents: list[sqlite3.Row]) -> list[JobRecord]:
    """The rows `claim` returned, as job records: built by the caller after the commit, not in the writer thread."""
    by_id = {r["id"]: r for r in dossier_rows}
    documents: dict[str, dict[str, bytes]] = {}
    for r in contents:
        documents.setdefault(r[0], {})[r[1]] = bytes(r[2])
    leased.sort(key=lambda r: (r["next_at"], r["id"]))
    return [
        rows.job(r, reads.dossier_with_job(by_id[r["dossier_id"]]), documents.get(r["dossier_id"], {})) for r in leased
    ]


def complete(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    receipt: SubmitReceipt,
    actor: str,
    *,
    calendar: WorkCalendar = NATIONAL,
    attempt: AttemptInfo | None = None,
) -> Completion:
    row = conn.execute(
        "SELECT j.dossier_id, j.step, j.agency, j.endpoint, j.attempts, d.status "
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
    job = (did, row["agency"], row["endpoint"], step, row["attempts"])
    attempts.record(conn, job_id, "delivered", attempt, agency_ref=receipt.agency_ref, job=job)
    if step == wallet.STEP:
        # The wallet is no agency of the dossier's: it tells only that the result is in the citizen's wallet.
        source = UpdateSource(actor)
    else:
        if step == "submit" and status in (DossierStatus.RECEIVED, DossierStatus.IN_TRANSFER):
            accepted_by_agency(conn, did, actor, receipt.agency_ref)
        elif receipt.agency_ref:
            conn.execute(
                "UPDATE dossiers SET agency_ref = COALESCE(agency_ref, ?) WHERE id = ?", (receipt.agency_ref, did)
            )
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


def fail(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    error: str,
    retry_at: float | None,
    attempt: AttemptInfo | None = None,
) -> bool:
    state = "pending" if retry_at is not None else "dead"
    now = time.time()
    job = conn.execute(
        "UPDATE jobs SET state = ?, next_at = COALESCE(?, next_at), lease_owner = NULL, "
        "lease_until = NULL, last_error = ?, failing_since = COALESCE(failing_since, ?), updated_at = ? "
        "WHERE id = ? AND state = 'leased' AND lease_owner = ? "
        "RETURNING dossier_id, agency, endpoint, step, attempts",
        (state, retry_at, error[:2000], now, now, job_id, owner),
    ).fetchone()
    if job is None:
        return False
    attempts.record(conn, job_id, "failed" if retry_at is not None else "dead", attempt, error=error, job=tuple(job))
    return True


def release_leases(conn: sqlite3.Connection) -> int:
    # An interrupted delivery keeps its place in the queue: ahead of jobs that became due after it.
    attempts.record_expired(conn, time.time(), every=True)
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
    attempts.record_expired(conn, now)
    cur = conn.execute(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, last_error = ?, updated_at = ? "
        "WHERE state = 'leased' AND lease_until < ?",
        ("the lease expired before the outcome was recorded", now, now),
    )
    return cur.rowcount


def unclaim(conn: sqlite3.Connection, owner: str, job_ids: list[int]) -> int:
    """Claimed jobs nobody will deliver (a cancelled claim, an endpoint held since), back to pending unsent,
    the attempt not counted. A failing job is due again from now: the time it waited before this claim was
    added to `held` by the claim, and must not be added twice."""
    if not job_ids:
        return 0
    now = time.time()
    marks = ", ".join("?" * len(job_ids))
    cur = conn.execute(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, "
        "next_at = CASE WHEN failing_since IS NULL THEN next_at ELSE ? END, updated_at = ? "
        f"WHERE state = 'leased' AND lease_owner = ? AND id IN ({marks})",
        (now, now, owner, *job_ids),
    )
    return cur.rowcount


def _filters(
    ids: list[int] | None, agency: str | None, endpoint: str | None, since: float | None
) -> tuple[str, list[Any]]:
    sql, args = "", list[Any]()
    if ids is not None:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        args.append(orjson.dumps(ids).decode())
    if agency is not None:
        sql += " AND agency = ?"
        args.append(agency)
    if endpoint is not None:
        sql += " AND endpoint = ?"
        args.append(endpoint)
    if since is not None:
        sql += " AND updated_at >= ?"
        args.append(since)
    return sql, args


def replay_dead(
    conn: sqlite3.Connection,
    job_ids: list[int] | None,
    agency: str | None = None,
    endpoint: str | None = None,
    since: float | None = None,
    entry: AuditEntry | None = None,
    key: AuditKey | None = None,
) -> int:
    now = time.time()
    where, args = _filters(job_ids, agency, endpoint, since)
    n = conn.execute(
        "UPDATE jobs SET state = 'pending', attempts = 0, failing_since = NULL, held = 0, next_at = ?, "
        "updated_at = ? WHERE state = 'dead'" + where,
        (now, now, *args),
    ).rowcount
    if entry is not None:
        replayed = dataclasses.replace(entry, detail={**entry.detail, "replayed": n})
        audit.append(conn, [audit.prepare(replayed)], key)
    return n


def jobs(
    conn: sqlite3.Connection,
    state: JobState | None,
    limit: int,
    ids: list[int] | None,
    agency: str | None = None,
    since: float | None = None,
) -> list[JobRecord]:
    sql, args = "SELECT * FROM jobs WHERE 1=1", list[Any]()
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    where, more = _filters(ids, agency, None, since)
    cur = conn.execute(sql + where + " ORDER BY id LIMIT ?", (*args, *more, limit))
    return [rows.job(r) for r in cur.fetchall()]


def pending_by_endpoint(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    # Read from the partial index of pending jobs alone.
    cur = conn.execute("SELECT agency, endpoint, COUNT(*) FROM jobs WHERE state = 'pending' GROUP BY agency, endpoint")
    return {(a, e): n for a, e, n in cur.fetchall()}
