"""Feed cursors: how far a consumer of the status feed (the portal pusher) has been acknowledged.

A cursor only moves forward, and only once the consumer has acknowledged everything up to it; a
restart resumes after it, so what was pushed but not acknowledged is pushed again (at least once).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime


def get(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT seq FROM feed_cursors WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def advance(conn: sqlite3.Connection, name: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO feed_cursors (name, seq, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq), updated_at = excluded.updated_at",
        (name, seq, datetime.now(UTC).isoformat()),
    )
