"""The signed checkpoints of the audit log in the store (gateway/checkpoints.py makes and checks them).

Kept beside the log for the running gateway and the admin API; the copy that proves anything is the
one exported to a folder and shipped elsewhere, since whoever can rewrite the log can rewrite this table.
"""

from __future__ import annotations

import sqlite3

from gateway.store.base import StoredCheckpoint

_COLUMNS = "number, at, kind, seq, head, body, signature"


def add(conn: sqlite3.Connection, cp: StoredCheckpoint) -> None:
    """Insert a checkpoint; one with this number already there (written before, or exported back in) is
    left as it is."""
    conn.execute(
        f"INSERT INTO audit_checkpoints ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING",
        (cp.number, cp.at, cp.kind, cp.seq, cp.head, cp.body, cp.signature),
    )


def _stored(row: sqlite3.Row) -> StoredCheckpoint:
    return StoredCheckpoint(
        number=row["number"],
        at=row["at"],
        kind=row["kind"],
        seq=row["seq"],
        head=row["head"],
        body=row["body"],
        signature=row["signature"],
    )


def listed(conn: sqlite3.Connection, after: int) -> list[StoredCheckpoint]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_checkpoints WHERE number > ? ORDER BY number", (after,))
    return [_stored(r) for r in rows.fetchall()]
