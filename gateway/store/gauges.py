"""What the metrics read from the store: the open jobs (not done, not cancelled) of the configured
agencies, found through the outbox's index on (agency, state): a scrape costs the open jobs, never the
outbox's history."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

OPEN_STATES = ("waiting", "pending", "leased", "dead")


def open_jobs(conn: sqlite3.Connection, agencies: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """(agency, endpoint, state) -> number of jobs, for the open states only."""
    if not agencies:
        return {}
    marks = ", ".join("?" * len(agencies))
    rows = conn.execute(
        f"SELECT agency, endpoint, state, COUNT(*) FROM jobs WHERE agency IN ({marks}) "
        "AND state IN ('waiting', 'pending', 'leased', 'dead') GROUP BY agency, endpoint, state",
        tuple(agencies),
    ).fetchall()
    return {(str(a), str(e), str(s)): int(n) for a, e, s, n in rows}
