"""Supplement requests in SQLite: an agency asks for documents by a deadline, the centre answers (the
dossier goes back to the status the request interrupted, its due date moves by the working days waited,
the answer is queued for the agency), or the deadline passes and the dossier is refused. A second
request for the same dossier is flagged: the national portal counts such a dossier as late. The writes
run inside the writer's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts import DossierStatus, SupplementRequest
from contracts.calendar import NATIONAL, VN_TZ, WorkCalendar
from gateway.connector import AgencyUpdate
from gateway.errors import IllegalTransition
from gateway.store.events import insert_event


def record_request(
    conn: sqlite3.Connection,
    did: str,
    agency: str,
    update: AgencyUpdate,
    data: dict[str, Any],
    *,
    calendar: WorkCalendar = NATIONAL,
) -> None:
    """What the agency asks for and by when; without a deadline the default one applies (it goes in `data`).
    A request after an earlier one is marked `repeated`, in the request and in the event's `data`."""
    asked = update.at or datetime.now(UTC)
    if not data.get("due_at"):
        data["due_at"] = calendar.supplement_deadline(asked).isoformat()
    items = [str(i) for i in data.get("items") or []] or [update.note or "documents named by the agency"]
    requests = orjson.loads(conn.execute("SELECT supplements FROM dossiers WHERE id = ?", (did,)).fetchone()[0])
    repeated = bool(requests)
    if repeated:
        data["repeated_supplement"] = len(requests) + 1
    request = SupplementRequest(
        requested_by=agency,
        items=items,
        note=update.note,
        requested_at=asked,
        due_at=data["due_at"],
        repeated=repeated,
    )
    requests.append(request.model_dump(mode="json"))
    conn.execute("UPDATE dossiers SET supplements = ? WHERE id = ?", (orjson.dumps(requests).decode(), did))


def resumed_status(conn: sqlite3.Connection, did: str) -> DossierStatus | None:
    """The status the dossier's latest supplement request interrupted: the one its answer restores."""
    row = conn.execute(
        "SELECT status FROM events WHERE dossier_id = ? AND status <> ? AND seq < "
        "(SELECT MAX(seq) FROM events WHERE dossier_id = ? AND status = ?) ORDER BY seq DESC LIMIT 1",
        (did, int(DossierStatus.SUPPLEMENT_REQUESTED), did, int(DossierStatus.SUPPLEMENT_REQUESTED)),
    ).fetchone()
    return None if row is None else DossierStatus(row[0])


def record_answer(
    conn: sqlite3.Connection,
    dossier_id: UUID,
    answer: dict[str, Any],
    actor: str,
    *,
    calendar: WorkCalendar = NATIONAL,
) -> None:
    did = str(dossier_id)
    row = conn.execute(
        "SELECT status, due_at, agency, endpoint, supplements FROM dossiers WHERE id = ?", (did,)
    ).fetchone()
    status = DossierStatus(row["status"])
    if status != DossierStatus.SUPPLEMENT_REQUESTED:
        raise IllegalTransition(
            f"the dossier is in status {status.value} ({status.label}); only a dossier asked for a "
            "supplement (5) takes one"
        )
    asked = conn.execute(
        "SELECT at FROM events WHERE dossier_id = ? AND status = ? ORDER BY seq DESC LIMIT 1",
        (did, int(DossierStatus.SUPPLEMENT_REQUESTED)),
    ).fetchone()[0]
    now = datetime.now(UTC)
    old_due = datetime.fromisoformat(row["due_at"])
    new_due = calendar.due_after_supplement(old_due, datetime.fromisoformat(asked), now)
    documents = [
        {k: a[k] for k in ("component_code", "name", "media_type", "size", "sha256", "url") if a.get(k) is not None}
        for a in answer.get("attachments", [])
    ]
    requests = orjson.loads(row["supplements"])
    if requests:
        requests[-1].update(
            answered_at=now.isoformat(),
            answered_by=actor,
            documents=documents,
            dossier_due_before=old_due.isoformat(),
            dossier_due_after=new_due.isoformat(),
        )
    conn.execute(
        "UPDATE dossiers SET due_at = ?, supplements = ? WHERE id = ?",
        (new_due.astimezone(UTC).isoformat(), orjson.dumps(requests).decode(), did),
    )
    n = (
        conn.execute("SELECT COUNT(*) FROM jobs WHERE dossier_id = ? AND step LIKE 'supplement%'", (did,)).fetchone()[0]
        + 1
    )
    restored = resumed_status(conn, did)  # may be 0 (in transfer): compare with None, not truthiness
    if restored is None:
        restored = DossierStatus.PROCESSING
    insert_event(
        conn,
        did,
        int(restored),
        actor,
        "supplement received from the applicant",
        {
            "attachments": [a.get("name") for a in answer.get("attachments", [])],
            "old_due_at": old_due.isoformat(),
            "new_due_at": new_due.isoformat(),
        },
        None,
    )
    queue_job(conn, did, f"supplement-{n}", row["agency"], row["endpoint"], answer)


def queue_job(conn: sqlite3.Connection, did: str, step: str, agency: str, endpoint: str, inputs: Any) -> None:
    """A delivery job for the dossier's agency, due now; its idempotency key is the same on every attempt."""
    ts = time.time()
    conn.execute(
        "INSERT INTO jobs (dossier_id, step, agency, endpoint, idempotency_key, state, inputs, next_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (did, step, agency, endpoint, f"{did}:{step}", orjson.dumps(inputs).decode(), ts, ts, ts),
    )


def expire(conn: sqlite3.Connection, now: datetime) -> list[UUID]:
    """Refuse the dossiers whose last request's deadline passed unanswered, and queue a `withdraw` job that
    tells the agency (which still holds the dossier open); the event id keeps it to once."""
    expired: list[UUID] = []
    waiting = conn.execute(
        "SELECT id, agency, endpoint, supplements FROM dossiers WHERE status = ?",
        (int(DossierStatus.SUPPLEMENT_REQUESTED),),
    ).fetchall()
    for row in waiting:
        requests = orjson.loads(row["supplements"])
        last = requests[-1] if requests else None
        if last is None or last.get("answered_at") or datetime.fromisoformat(last["due_at"]) > now:
            continue
        due = datetime.fromisoformat(last["due_at"]).astimezone(VN_TZ)
        reason = f"the documents asked for were not supplied by {due:%d/%m/%Y %H:%M}"
        details = {"supplement_due_at": last["due_at"], "items": last.get("items", [])}
        event_id = f"supplement-{len(requests)}-expired"
        insert_event(conn, row["id"], int(DossierStatus.REJECTED), "gateway", reason, details, event_id)
        if row["agency"] and row["endpoint"]:
            queue_job(conn, row["id"], "withdraw", row["agency"], row["endpoint"], {"reason": reason, **details})
        expired.append(UUID(row["id"]))
    return expired
