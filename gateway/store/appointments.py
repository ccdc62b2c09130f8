"""Appointments of referred dossiers in SQLite: one row per centre and Idempotency-Key, and their events.

A booking is written in two steps around the agency's call: `begin` (state 'booking', the key taken)
before, `settle` (booked, with the agency's slot) after. A lost answer leaves 'booking': the same key
asks the agency again, which answers the same booking (it de-duplicates on the key too).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from contracts.appointment import Appointment, AppointmentEvent, BookedSlot
from gateway.errors import IdempotencyConflict

_COLUMNS = "a.*, d.code AS dossier_code"
_FROM = "appointments a JOIN dossiers d ON d.id = a.dossier_id"
_VN = timezone(timedelta(hours=7))  # reminders speak the applicant's time


@dataclass(frozen=True, slots=True)
class NewAppointment:
    client_id: str
    key: str
    request_hash: str
    dossier_id: str
    agency: str
    endpoint: str
    mode: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _appointment(row: sqlite3.Row) -> Appointment:
    return Appointment(
        id=row["id"],
        client_id=row["client_id"],
        dossier_id=row["dossier_id"],
        dossier_code=row["dossier_code"],
        agency=row["agency"],
        endpoint=row["endpoint"],
        state=row["state"],
        mode=row["mode"],
        slot=orjson.loads(row["slot"]) if row["slot"] else None,
        agency_ref=row["agency_ref"],
        meeting_url=row["meeting_url"],
        remind_at=datetime.fromtimestamp(row["remind_at"], UTC) if row["remind_at"] is not None else None,
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def get(conn: sqlite3.Connection, appointment_id: str) -> Appointment | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.id = ?", (appointment_id,)).fetchone()
    return _appointment(row) if row is not None else None


def begin(conn: sqlite3.Connection, new: NewAppointment) -> tuple[Appointment, bool]:
    """The centre's row for this key: made now (True), or the one an earlier request made (False).
    IdempotencyConflict when the key was used for another booking."""
    now = _now()
    made = conn.execute(
        "INSERT INTO appointments (id, client_id, idem_key, request_hash, dossier_id, agency, endpoint, state, mode, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'booking', ?, ?, ?) "
        "ON CONFLICT (client_id, idem_key) DO NOTHING RETURNING id",
        (
            str(uuid.uuid4()),
            new.client_id,
            new.key,
            new.request_hash,
            new.dossier_id,
            new.agency,
            new.endpoint,
            new.mode,
            now,
            now,
        ),
    ).fetchone()
    if made is not None:
        found = get(conn, made["id"])
        assert found is not None
        return found, True
    row = conn.execute(
        f"SELECT {_COLUMNS}, a.request_hash FROM {_FROM} WHERE a.client_id = ? AND a.idem_key = ?",
        (new.client_id, new.key),
    ).fetchone()
    if row["request_hash"] != new.request_hash:
        raise IdempotencyConflict("this Idempotency-Key was used for another booking")
    return _appointment(row), False


def _event(conn: sqlite3.Connection, a: Appointment, kind: str, data: Mapping[str, Any]) -> None:
    conn.execute(
        "INSERT INTO appointment_events (appointment_id, client_id, kind, at, data) VALUES (?, ?, ?, ?, ?)",
        (a.id, a.client_id, kind, _now(), orjson.dumps(dict(data)).decode()),
    )


def settle(
    conn: sqlite3.Connection, appointment_id: str, booked: BookedSlot, kind: str, remind_before: float
) -> Appointment:
    """The agency holds `booked` for it: booked or moved, its reminder due `remind_before` seconds ahead.
    A booking settled already (two requests with one key, both answered by the agency) is left as it is."""
    before = get(conn, appointment_id)
    assert before is not None
    if kind == "booked" and before.state != "booking":
        return before
    remind_at = booked.slot.starts_at.timestamp() - remind_before
    conn.execute(
        "UPDATE appointments SET state = 'booked', slot = ?, agency_ref = ?, meeting_url = ?, mode = ?, "
        "remind_at = ?, reminded = 0, updated_at = ? WHERE id = ?",
        (
            booked.slot.model_dump_json(),
            booked.agency_ref,
            booked.meeting_url,
            booked.mode,
            remind_at,
            _now(),
            appointment_id,
        ),
    )
    a = get(conn, appointment_id)
    assert a is not None
    _event(conn, a, kind, {"slot": booked.slot.model_dump(mode="json"), "meeting_url": booked.meeting_url})
    return a


def forget(conn: sqlite3.Connection, appointment_id: str) -> None:
    """The agency refused the booking: nothing is held, and the key may be used again."""
    conn.execute("DELETE FROM appointments WHERE id = ? AND state = 'booking'", (appointment_id,))


def cancelled(conn: sqlite3.Connection, appointment_id: str) -> Appointment:
    a = get(conn, appointment_id)
    assert a is not None
    if a.state != "cancelled":
        conn.execute(
            "UPDATE appointments SET state = 'cancelled', updated_at = ? WHERE id = ?", (_now(), appointment_id)
        )
        _event(conn, a, "cancelled", {"slot_id": a.slot.slot_id if a.slot else None})
        a = get(conn, appointment_id)
        assert a is not None
    return a


def listed(
    conn: sqlite3.Connection, client_id: str | None, dossier_id: str | None, state: str | None, limit: int
) -> list[Appointment]:
    where, args = [], []
    for column, value in (("a.client_id", client_id), ("a.dossier_id", dossier_id), ("a.state", state)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT {_COLUMNS} FROM {_FROM}" + (f" WHERE {' AND '.join(where)}" if where else "")
    rows = conn.execute(sql + " ORDER BY a.created_at, a.id LIMIT ?", (*args, limit)).fetchall()
    return [_appointment(r) for r in rows]


def events(
    conn: sqlite3.Connection, client_id: str | None, after: int, kind: str | None, limit: int
) -> list[AppointmentEvent]:
    where, args = ["e.seq > ?"], list[object]([after])
    if client_id is not None:
        where.append("e.client_id = ?")
        args.append(client_id)
    if kind is not None:
        where.append("e.kind = ?")
        args.append(kind)
    rows = conn.execute(
        "SELECT e.*, d.code AS dossier_code FROM appointment_events e JOIN appointments a ON a.id = e.appointment_id "
        f"JOIN dossiers d ON d.id = a.dossier_id WHERE {' AND '.join(where)} ORDER BY e.seq LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [
        AppointmentEvent(
            seq=r["seq"],
            appointment_id=r["appointment_id"],
            dossier_code=r["dossier_code"],
            kind=r["kind"],
            at=datetime.fromisoformat(r["at"]),
            data=orjson.loads(r["data"]),
        )
        for r in rows
    ]


def remind(conn: sqlite3.Connection, now: float | None = None) -> int:
    """A reminder event for each booked appointment whose reminder time has come, once."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE a.state = 'booked' AND a.reminded = 0 AND a.remind_at <= ?",
        (time.time() if now is None else now,),
    ).fetchall()
    for row in rows:
        a = _appointment(row)
        assert a.slot is not None
        where = a.meeting_url if a.mode == "online" else a.slot.place
        text = (
            f"Lịch hẹn hồ sơ {a.dossier_code}: {a.slot.starts_at.astimezone(_VN):%H:%M ngày %d/%m/%Y}, "
            f"{'họp trực tuyến' if a.mode == 'online' else 'tại'} {where}"
        )
        _event(conn, a, "reminder", {"starts_at": a.slot.starts_at.isoformat(), "text": text, "where": where})
        conn.execute("UPDATE appointments SET reminded = 1 WHERE id = ?", (a.id,))
    return len(rows)
