"""What the metrics read from the store: the open jobs (not done, not cancelled), counted through the
partial index jobs_open (migration 12), so a scrape costs the open jobs, not the outbox's history."""

from __future__ import annotations

import sqlite3

OPEN_STATES = ("waiting", "pending", "leased", "dead")


def open_jobs(conn: sqlite3.Connection) -> dict[tuple[str, str, str], int]:
    """(agency, endpoint, state) -> number of jobs, for the open states only."""
    rows = conn.execute(
        "SELECT agency, endpoint, state, COUNT(*) FROM jobs "
        "WHERE state IN ('waiting', 'pending', 'leased', 'dead') GROUP BY agency, endpoint, state"
    ).fetchall()
    return {(str(a), str(e), str(s)): int(n) for a, e, s, n in rows}
