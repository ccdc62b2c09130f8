"""Supplement requests in SQLite: an agency asks for documents by a deadline, the centre answers (the
dossier goes back to the status the request interrupted, its due date moves by the working days waited,
the answer is queued for the agency), or the deadline passes and the dossier is refused. A second
request for the same dossier is flagged: the national portal counts such a dossier as late. The writes
run inside the writer's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts import DossierStatus, SupplementRequest
from contracts.calendar import NATIONAL, VN_TZ, WorkCalendar
from contracts.status import can_move
from gateway.connector import AgencyUpdate
from gateway.errors import IllegalTransition
from gateway.store import documents, kpis
from gateway.store.base import DocumentRef
from gateway.store.events import insert_event

GATEWAY = "gateway"  # requested_by of the gateway's own requests: documents it could not get before delivery


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


def ask_for_documents(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    items: list[str],
    note: str,
    *,
    calendar: WorkCalendar = NATIONAL,
) -> bool:
    """The gateway's own supplement request: documents of a leased submission could not be had before its
    delivery. The dossier goes to status 5 with the centre's deadline; the job waits for the answer."""
    row = conn.execute(
        "SELECT j.dossier_id, d.status, d.supplements FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
        "WHERE j.id = ? AND j.state = 'leased' AND j.lease_owner = ?",
        (job_id, owner),
    ).fetchone()
    if row is None:
        return False
    did, status = row["dossier_id"], DossierStatus(row["status"])
    now, ts = datetime.now(UTC), time.time()
    if not can_move(status, DossierStatus.SUPPLEMENT_REQUESTED):
        conn.execute(
            "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, last_error = ?, updated_at = ? "
            "WHERE id = ?",
            (note[:2000], ts, job_id),
        )
        return True
    request = SupplementRequest(
        requested_by=GATEWAY, items=items, note=note, requested_at=now, due_at=calendar.supplement_deadline(now)
    )
    requests = [*orjson.loads(row["supplements"]), request.model_dump(mode="json")]
    conn.execute("UPDATE dossiers SET supplements = ? WHERE id = ?", (orjson.dumps(requests).decode(), did))
    data = {"items": items, "due_at": request.due_at.isoformat()}
    insert_event(conn, did, int(DossierStatus.SUPPLEMENT_REQUESTED), GATEWAY, note, data, None)
    conn.execute(
        "UPDATE jobs SET state = 'waiting', lease_owner = NULL, lease_until = NULL, last_error = ?, updated_at = ? "
        "WHERE id = ?",
        (note[:2000], ts, job_id),
    )
    return True


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
    refs: Sequence[DocumentRef] = (),
    *,
    calendar: WorkCalendar = NATIONAL,
) -> None:
    did = str(dossier_id)
    row = conn.execute(
        "SELECT status, due_at, agency, endpoint, supplements, submission FROM dossiers WHERE id = ?", (did,)
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
    answered = [
        {k: a[k] for k in ("component_code", "name", "media_type", "size", "sha256", "url") if a.get(k) is not None}
        for a in answer.get("attachments", [])
    ]
    requests = orjson.loads(row["supplements"])
    if requests:
        requests[-1].update(
            answered_at=now.isoformat(),
            answered_by=actor,
            documents=answered,
            dossier_due_before=old_due.isoformat(),
            dossier_due_after=new_due.isoformat(),
        )
    conn.execute(
        "UPDATE dossiers SET due_at = ?, supplements = ? WHERE id = ?",
        (new_due.astimezone(UTC).isoformat(), orjson.dumps(requests).decode(), did),
    )
    kpis.due_moved(conn, did, new_due.astimezone(UTC).isoformat())
    moved = {"old_due_at": old_due.isoformat(), "new_due_at": new_due.isoformat()}
    if requests and requests[-1].get("requested_by") == GATEWAY:
        _deliver_with(conn, did, orjson.loads(row["submission"]), answer, refs, actor, moved)
        return
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
            **moved,
        },
        None,
    )
    documents.insert(conn, did, f"supplement-{n}", refs)
    queue_job(conn, did, f"supplement-{n}", row["agency"], row["endpoint"], answer)


def _deliver_with(
    conn: sqlite3.Connection,
    did: str,
    submission: dict[str, Any],
    answer: dict[str, Any],
    refs: Sequence[DocumentRef],
    actor: str,
    moved: dict[str, str],
) -> None:
    """The centre brought the documents the gateway could not fetch: they take the place of the attachments
    of the same components, and the dossier, not yet at its agency, is delivered (status 0, in transfer)."""
    given = answer.get("attachments", [])
    codes = sorted({a["component_code"] for a in given})
    submission["attachments"] = [a for a in submission.get("attachments", []) if a["component_code"] not in codes]
    submission["attachments"] += given
    conn.execute("UPDATE dossiers SET submission = ? WHERE id = ?", (orjson.dumps(submission).decode(), did))
    conn.executemany(
        "DELETE FROM dossier_documents WHERE dossier_id = ? AND part = 'submission' AND component_code = ?",
        [(did, code) for code in codes],
    )
    last = conn.execute(
        "SELECT COALESCE(MAX(position), -1) FROM dossier_documents WHERE dossier_id = ? AND part = 'submission'",
        (did,),
    ).fetchone()[0]
    documents.insert(conn, did, "submission", refs, first=last + 1)
    note = "the documents asked for were received from the centre: delivering to the agency"
    data = {"attachments": [a.get("name") for a in given], **moved}
    insert_event(conn, did, int(DossierStatus.IN_TRANSFER), actor, note, data, None)
    ts = time.time()
    conn.execute(
        "UPDATE jobs SET state = 'pending', attempts = 0, failing_since = NULL, held = 0, next_at = ?, "
        "updated_at = ? WHERE dossier_id = ? AND step = 'submit' AND state = 'waiting'",
        (ts, ts, did),
    )


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
        if last.get("requested_by") == GATEWAY:  # never delivered: no agency to tell
            conn.execute(
                "UPDATE jobs SET state = 'cancelled', updated_at = ? "
                "WHERE dossier_id = ? AND step = 'submit' AND state = 'waiting'",
                (time.time(), row["id"]),
            )
        elif row["agency"] and row["endpoint"]:
            queue_job(conn, row["id"], "withdraw", row["agency"], row["endpoint"], {"reason": reason, **details})
        expired.append(UUID(row["id"]))
    return expired
