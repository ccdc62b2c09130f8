"""Appending status events in SQLite: the one way a dossier's status moves, inside the writer's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, WorkCalendar
from gateway.store import kpis


def insert_event(
    conn: sqlite3.Connection,
    did: str,
    status: int,
    actor: str,
    note: str,
    data: dict[str, Any],
    source_event_id: str | None,
    at: str | None = None,
    *,
    agency_ref: str | None = None,
    results: str | None = None,
    calendar: WorkCalendar = NATIONAL,
    known: tuple[Any, Mapping[str, Any]] | None = None,
) -> None:
    """Append an event and move the dossier to its status; `agency_ref` (if none yet) and `results` ride along.
    The centre performance figures count it in the same transaction (`calendar`: working days to finish;
    `known`: what they need of the dossier, when the caller has read it: see kpis.on_event)."""
    at = at or datetime.now(UTC).isoformat()
    conn.execute(
        "INSERT INTO events (dossier_id, status, at, actor, note, data, source_event_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (did, status, at, actor, note, orjson.dumps(data).decode(), source_event_id),
    )
    kpis.on_event(conn, did, status, at, actor, calendar, known)
    sets, args = ["status = ?", "updated_at = ?"], [status, at]
    if status == DossierStatus.FINISHED:
        sets.append("finished_at = ?")
        args.append(at)
    if agency_ref:
        sets.append("agency_ref = COALESCE(agency_ref, ?)")
        args.append(agency_ref)
    if results is not None:
        sets.append("results = ?")
        args.append(results)
    conn.execute(f"UPDATE dossiers SET {', '.join(sets)} WHERE id = ?", (*args, did))


def accepted_by_agency(conn: sqlite3.Connection, did: str, actor: str, agency_ref: str | None) -> None:
    """Received -> processing once the agency has the dossier (the caller saw it received)."""
    insert_event(
        conn,
        did,
        int(DossierStatus.PROCESSING),
        actor,
        "Cơ quan giải quyết đã nhận hồ sơ",  # the portal shows an agency's notes (NoiDungXuLy): in Vietnamese
        {"agency_ref": agency_ref} if agency_ref else {},
        None,
        agency_ref=agency_ref,
    )
