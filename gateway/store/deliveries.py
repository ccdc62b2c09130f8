"""Operators' view of delivery jobs (portable SQL): listed by every filter the transaction browser has,
counted for a dry run, and re-run (done or dead jobs sent again, with the same idempotency key) together
with the audit record of the re-run, in one transaction."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

from gateway.store import audit, rows
from gateway.store.base import AuditEntry, JobRecord
from gateway.store.filters import JobFilter
from gateway.store.seals import AuditKey

RERUNNABLE = ("dead", "done")


def find(conn: sqlite3.Connection, f: JobFilter, limit: int) -> list[JobRecord]:
    """Newest first."""
    where, args = f.where()
    cur = conn.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id DESC LIMIT ?", (*args, limit))
    return [rows.job(r) for r in cur.fetchall()]


def _rerunnable(f: JobFilter) -> JobFilter:
    states = tuple(s for s in (f.states or ("dead",)) if s in RERUNNABLE)
    return dataclasses.replace(f, states=states)


def count_rerun(conn: sqlite3.Connection, f: JobFilter) -> int:
    """How many jobs `rerun` would send again now (the dry run)."""
    where, args = _rerunnable(f).where()
    return int(conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", args).fetchone()[0])


def rerun(conn: sqlite3.Connection, f: JobFilter, entry: AuditEntry, key: AuditKey | None) -> int:
    """The jobs of `f` that are done or dead (dead only, unless `f.states` says otherwise) are due again
    now, their attempts and retry budget reset; the audit record, with the count, in the same transaction."""
    where, args = _rerunnable(f).where()
    now = time.time()
    n = conn.execute(
        "UPDATE jobs SET state = 'pending', attempts = 0, failing_since = NULL, held = 0, next_at = ?, "
        f"last_error = NULL, updated_at = ? WHERE {where}",
        (now, now, *args),
    ).rowcount
    audit.append(conn, [audit.prepare(dataclasses.replace(entry, detail={**entry.detail, "rerun": n}))], key)
    return n
