"""Operators' pauses of agencies in SQLite: durable, read by every gateway process, each change audited
in the same transaction (gateway/maintenance.py says what a pause does)."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

from gateway.store import audit
from gateway.store.base import AuditEntry, Pause
from gateway.store.seals import AuditKey

_WHOLE = ""  # the endpoint column of a pause of every endpoint of an agency


def _pause(row: sqlite3.Row) -> Pause:
    return Pause(
        agency=row["agency"],
        endpoint=row["endpoint"] or None,
        until=row["until_at"],
        reason=row["reason"],
        by=row["paused_by"],
        at=row["paused_at"],
    )


def active(conn: sqlite3.Connection) -> list[Pause]:
    cur = conn.execute("SELECT * FROM pauses WHERE until_at > ? ORDER BY agency, endpoint", (time.time(),))
    return [_pause(r) for r in cur.fetchall()]


def put(conn: sqlite3.Connection, pause: Pause, entry: AuditEntry, key: AuditKey | None = None) -> None:
    conn.execute("DELETE FROM pauses WHERE until_at <= ?", (time.time(),))  # ended ones are kept nowhere
    conn.execute(
        "INSERT INTO pauses (agency, endpoint, until_at, reason, paused_by, paused_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (agency, endpoint) DO UPDATE SET until_at = excluded.until_at, reason = excluded.reason, "
        "paused_by = excluded.paused_by, paused_at = excluded.paused_at",
        (pause.agency, pause.endpoint or _WHOLE, pause.until, pause.reason, pause.by, pause.at),
    )
    audit.append(conn, [audit.prepare(entry)], key)


def remove(
    conn: sqlite3.Connection, agency: str, endpoint: str | None, entry: AuditEntry, key: AuditKey | None = None
) -> list[Pause]:
    where, args = "agency = ?", [agency]
    if endpoint is not None:
        where += " AND endpoint = ?"
        args.append(endpoint)
    rows = conn.execute(f"DELETE FROM pauses WHERE {where} RETURNING *", args).fetchall()
    ended = [p for p in map(_pause, rows) if p.until > time.time()]
    detail = {**entry.detail, "resumed": len(ended)}
    audit.append(conn, [audit.prepare(dataclasses.replace(entry, detail=detail))], key)
    return ended
