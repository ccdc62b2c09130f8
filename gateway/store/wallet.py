"""Results to the VNeID wallet in SQLite: a finished dossier whose applicant chose the wallet gets a
`wallet` job in the same transaction as its finishing event (gateway/wallet.py delivers it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

from contracts.dossier import ReturnMethod
from gateway.store import supplements

AGENCY, ENDPOINT, STEP = "vneid", "wallet", "wallet"  # gateway/wallet.py's, without importing the connector


def queue_if_chosen(conn: sqlite3.Connection, dossier_id: str, submission: Mapping[str, Any] | None = None) -> bool:
    """`submission`: the dossier's, parsed, when the caller has it."""
    if submission is None:
        row = conn.execute("SELECT submission FROM dossiers WHERE id = ?", (dossier_id,)).fetchone()
        if row is None:
            return False
        submission = orjson.loads(row["submission"])
    if submission.get("return_method") != int(ReturnMethod.WALLET):
        return False
    queued = conn.execute("SELECT 1 FROM jobs WHERE dossier_id = ? AND step = ?", (dossier_id, STEP)).fetchone()
    if queued is None:  # finishing happens once; a job already there is this one
        supplements.queue_job(conn, dossier_id, STEP, AGENCY, ENDPOINT, {})
    return queued is None
