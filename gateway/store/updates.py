"""An agency's status update applied in SQLite, inside the writer's transaction: checked against the
state machine, its outputs and results kept, a supplement request recorded, a finished bundle step
releasing the next one.
"""

from __future__ import annotations

import sqlite3
from uuid import UUID

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, WorkCalendar
from contracts.status import IllegalTransitionError, can_move
from gateway.connector import AgencyUpdate
from gateway.errors import IllegalTransition
from gateway.store import bundles, supplements
from gateway.store.base import UpdateOutcome
from gateway.store.events import accepted_by_agency, insert_event


def apply_update(
    conn: sqlite3.Connection, update: AgencyUpdate, actor: str, *, calendar: WorkCalendar = NATIONAL
) -> UpdateOutcome:
    """Repeated event ids are no-ops; a move the state machine forbids raises IllegalTransition. `calendar`
    sets the default deadline of a supplement request."""
    by, ref = ("id", str(update.dossier_id)) if update.dossier_id is not None else ("code", update.dossier_code)
    row = conn.execute(
        "SELECT id, status, agency, results, bundle_id, "
        "EXISTS (SELECT 1 FROM events WHERE dossier_id = d.id AND source_event_id = ?) AS seen "
        f"FROM dossiers d WHERE {by} = ?",
        (update.event_id, ref),
    ).fetchone()
    if row is None:
        raise LookupError(f"no dossier {update.dossier_id or update.dossier_code}")
    did, current = row["id"], DossierStatus(row["status"])
    if row["seen"]:
        return UpdateOutcome(False, UUID(did), int(current))
    new = update.status
    if (
        current == DossierStatus.RECEIVED
        and new != DossierStatus.PROCESSING
        and can_move(DossierStatus.PROCESSING, new)
    ):
        # The agency's callback can overtake our record of its receipt: it implies the receipt.
        accepted_by_agency(conn, did, actor, update.agency_ref)
        current = DossierStatus.PROCESSING
    resumes = supplements.resumed_status(conn, did) if current == DossierStatus.SUPPLEMENT_REQUESTED else None
    if new != current and not can_move(current, new, resumes=resumes):
        raise IllegalTransition(str(IllegalTransitionError(current, new, resumes=resumes)))
    data = dict(update.data)
    if update.outputs:
        data["outputs"] = update.outputs
    results = None
    if update.results:
        data["results"] = [r.model_dump(mode="json", exclude={"content_base64"}) for r in update.results]
        existing = orjson.loads(row["results"])
        existing.extend(r.model_dump(mode="json") for r in update.results)
        results = orjson.dumps(existing).decode()
    at = update.at.isoformat() if update.at else None
    if new == DossierStatus.SUPPLEMENT_REQUESTED:
        supplements.record_request(conn, did, row["agency"], update, data, calendar=calendar)
    insert_event(
        conn,
        did,
        int(new),
        actor,
        update.note,
        data,
        update.event_id,
        at,
        agency_ref=update.agency_ref,
        results=results,
    )
    if new == DossierStatus.FINISHED and row["bundle_id"] is not None:
        bundles.advance(conn, did)
    return UpdateOutcome(True, UUID(did), int(new))
