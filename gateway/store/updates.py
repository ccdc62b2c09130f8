"""An agency's status update applied in SQLite, inside the writer's transaction: bound to the agency that
reports it, its result documents checked, the state machine obeyed, its outputs and results kept, a
supplement request recorded, a finished bundle step releasing the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from uuid import UUID

import orjson

from contracts import DossierStatus
from contracts.calendar import NATIONAL, WorkCalendar
from contracts.dossier import result_errors
from contracts.status import IllegalTransitionError, can_move
from gateway.connector import AgencyUpdate
from gateway.errors import FieldError, IllegalTransition, InvalidResult, WrongAgency
from gateway.store import bundles, kpis, replay, supplements, wallet
from gateway.store.base import ReplayKey, UpdateOutcome, UpdateSource
from gateway.store.events import accepted_by_agency, insert_event


def apply_all(
    conn: sqlite3.Connection,
    updates: Sequence[AgencyUpdate],
    source: UpdateSource,
    key: ReplayKey | None,
    *,
    calendar: WorkCalendar = NATIONAL,
) -> list[UpdateOutcome]:
    """Updates of one request, in order, with its replay key: a refusal raises and the writer's savepoint
    takes back whatever came before it."""
    if key is not None:
        replay.record(conn, key)
    return [apply_update(conn, update, source, calendar=calendar) for update in updates]


def apply_update(
    conn: sqlite3.Connection, update: AgencyUpdate, source: UpdateSource, *, calendar: WorkCalendar = NATIONAL
) -> UpdateOutcome:
    """Repeated event ids are no-ops. LookupError for an unknown dossier, WrongAgency for one routed
    elsewhere, InvalidResult for a result document that does not hold what it declares, IllegalTransition
    for a move the state machine forbids. `calendar` sets the default deadline of a supplement request."""
    by, ref = ("id", str(update.dossier_id)) if update.dossier_id is not None else ("code", update.dossier_code)
    # An update the figures count (a finish, say) reads what they need of the dossier here too: one
    # statement, where each is a step of the writer that must win the GIL back from the event loop.
    counted = int(update.status) in kpis.COUNTED
    extra = f", {kpis.COUNTED_COLUMNS}" if counted else ""
    row = conn.execute(
        "SELECT id, status, agency, endpoint, results, bundle_id, received_at, "
        f"EXISTS (SELECT 1 FROM events WHERE dossier_id = d.id AND source_event_id = ?) AS seen{extra} "
        f"FROM dossiers d WHERE {by} = ?",
        (update.event_id, ref),
    ).fetchone()
    if row is None:
        raise LookupError(f"no dossier {update.dossier_id or update.dossier_code}")
    did, current = row["id"], DossierStatus(row["status"])
    _check_source(source, row, ref, update.event_id)
    if row["seen"]:
        return UpdateOutcome(False, UUID(did), int(current), row["agency"], row["received_at"])
    _check_results(update)
    new = update.status
    if (
        current == DossierStatus.RECEIVED
        and new != DossierStatus.PROCESSING
        and can_move(DossierStatus.PROCESSING, new)
    ):
        # The agency's callback can overtake our record of its receipt: it implies the receipt.
        accepted_by_agency(conn, did, source.actor, update.agency_ref)
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
    known = (row, orjson.loads(row["submission"])) if counted else None
    if new == DossierStatus.SUPPLEMENT_REQUESTED:
        supplements.record_request(conn, did, row["agency"], update, data, calendar=calendar)
    insert_event(
        conn,
        did,
        int(new),
        source.actor,
        update.note,
        data,
        update.event_id,
        at,
        agency_ref=update.agency_ref,
        results=results,
        calendar=calendar,
        known=known,
    )
    if new == DossierStatus.FINISHED and row["bundle_id"] is not None:
        bundles.advance(conn, did)
    if new == DossierStatus.FINISHED:
        wallet.queue_if_chosen(conn, did, known[1] if known is not None else None)
    return UpdateOutcome(True, UUID(did), int(new), row["agency"], row["received_at"])


def _check_source(source: UpdateSource, row: sqlite3.Row, ref: str | None, event_id: str) -> None:
    if source.agency is None:
        return  # the gateway itself, on a centre's request
    if row["agency"] != source.agency or (source.endpoint is not None and row["endpoint"] != source.endpoint):
        who = source.agency if source.endpoint is None else f"{source.agency} ({source.endpoint})"
        raise WrongAgency(f"dossier {ref} is not routed to {who}", dossier_id=row["id"], event_id=event_id)


def _check_results(update: AgencyUpdate) -> None:
    errors = [
        FieldError(f"results.{i}.{name}", message, "invalid_result")
        for i, doc in enumerate(update.results)
        for name, message in result_errors(doc)
    ]
    if errors:
        raise InvalidResult(f"event {update.event_id}: a result document does not hold what it declares", errors=errors)
