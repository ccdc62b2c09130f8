"""Connector state: small values a connector keeps across restarts (a polling cursor, a last-seen
token), one row per (agency, endpoint, key), the value as JSON text. Portable SQL only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson


def get(conn: sqlite3.Connection, agency: str, endpoint: str, key: str) -> Any | None:
    row = conn.execute(
        "SELECT value FROM connector_state WHERE agency = ? AND endpoint = ? AND key = ?", (agency, endpoint, key)
    ).fetchone()
    return None if row is None else orjson.loads(row[0])


def put(conn: sqlite3.Connection, agency: str, endpoint: str, key: str, value: bytes) -> None:
    """`value` is already JSON (encoded before the writer thread, so a bad value fails its caller only)."""
    conn.execute(
        "INSERT INTO connector_state (agency, endpoint, key, value, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (agency, endpoint, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (agency, endpoint, key, value.decode(), datetime.now(UTC).isoformat()),
    )
