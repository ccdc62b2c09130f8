"""Replay keys of signed agency requests (their nonces) in SQLite, written in the transaction that applies
the request, so that a request whose apply failed leaves no trace and its resend is applied, and a replay
within the window is refused, across restarts. Keys older than their window are dropped as new ones come.
"""

from __future__ import annotations

import sqlite3
import time

from gateway.store.base import ReplayedRequest, ReplayKey


def record(conn: sqlite3.Connection, key: ReplayKey) -> None:
    """ReplayedRequest if the key was recorded within its window; otherwise it is recorded now."""
    now = time.time()
    conn.execute("DELETE FROM replay_keys WHERE seen_at < ?", (now - key.window,))
    cur = conn.execute(
        "INSERT INTO replay_keys (scope, key, seen_at) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
        (key.scope, key.key, now),
    )
    if cur.rowcount != 1:
        raise ReplayedRequest(f"{key.scope}: {key.key} was used before")
