"""Replay keys of signed agency requests (their nonces) in SQLite, written in the transaction that applies
the request, so that a request whose apply failed leaves no trace and its resend is applied, and a replay
within the window is refused, across restarts. Keys older than their window are dropped as new ones come.
"""

from __future__ import annotations

import sqlite3
import time

from gateway.store.base import ReplayedRequest, ReplayKey

_PRUNE_EVERY = 1.0  # seconds between two sweeps of the keys past their window, per process
_pruned_at = 0.0


def record(conn: sqlite3.Connection, key: ReplayKey) -> None:
    """ReplayedRequest if the key was recorded within its window; otherwise it is recorded now (a key
    recorded before its window is taken again: the statement itself judges the window, so the sweep of
    old keys need not run before each one; it runs at most once a second, in the same transaction)."""
    global _pruned_at
    now = time.time()
    if now - _pruned_at >= _PRUNE_EVERY or now < _pruned_at:
        conn.execute("DELETE FROM replay_keys WHERE seen_at < ?", (now - key.window,))
        _pruned_at = now
    cur = conn.execute(
        "INSERT INTO replay_keys (scope, key, seen_at) VALUES (?, ?, ?) ON CONFLICT (scope, key) "
        "DO UPDATE SET seen_at = excluded.seen_at WHERE replay_keys.seen_at < ?",
        (key.scope, key.key, now, now - key.window),
    )
    if cur.rowcount != 1:
        raise ReplayedRequest(f"{key.scope}: {key.key} was used before")
