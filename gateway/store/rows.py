"""Row -> contract conversions for the SQL stores."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts import DeliveryState, Dossier, DossierStatus, StatusEvent
from contracts.base import TRUSTED
from contracts.bundle import BundleStepView, BundleView, StepState
from gateway.store.base import DossierBrief, JobRecord

_DONE = frozenset({DossierStatus.FINISHED, DossierStatus.RETURNED})
_JOB_STATE: dict[str, StepState] = {
    "waiting": "waiting",
    "pending": "pending",
    "leased": "in_flight",
    "done": "delivered",
    "dead": "dead",
    "cancelled": "cancelled",
}
JOB_STATE_OF = {shown: stored for stored, shown in _JOB_STATE.items()}


def dossier(row: Any, job: Any | None) -> Dossier:
    status = DossierStatus(row["status"])
    due = datetime.fromisoformat(row["due_at"])
    finished = datetime.fromisoformat(row["finished_at"]) if row["finished_at"] else None
    supplements = orjson.loads(row["supplements"])
    if status in _DONE:
        overdue = finished is not None and finished > due
    else:
        overdue = not status.terminal and datetime.now(UTC) > due
    # The national portal counts a dossier asked for documents more than once as late, whatever its dates.
    overdue = overdue or len(supplements) > 1
    refusal = row["portal_refusal"]
    return Dossier.model_validate(
        dict(
            id=UUID(row["id"]),
            code=row["code"],
            procedure_code=row["procedure_code"],
            procedure_name=row["procedure_name"],
            receiving_unit=row["receiving_unit"],
            client_id=row["client_id"],
            agency=row["agency"],
            endpoint=row["endpoint"],
            status=status,
            received_at=datetime.fromisoformat(row["received_at"]),
            due_at=due,
            updated_at=datetime.fromisoformat(row["updated_at"]),
            agency_ref=row["agency_ref"],
            overdue=overdue,
            submission=orjson.loads(row["submission"]),
            delivery=_delivery(job),
            results=orjson.loads(row["results"]),
            supplements=supplements,
            portal_refusal=orjson.loads(refusal) if refusal else None,
        ),
        context={TRUSTED: True},
    )


def brief(row: Any, job: Any | None) -> DossierBrief:
    """The answer's part of a dossier (`dossier` builds all of it), from the same rows."""
    status = DossierStatus(row["status"])
    return DossierBrief(
        UUID(row["id"]), row["code"], status, datetime.fromisoformat(row["due_at"]), row["agency"], _delivery(job)
    )


def _delivery(job: Any | None) -> DeliveryState | None:
    if job is None:
        return None
    return DeliveryState(
        state=_JOB_STATE[job["state"]],
        attempts=job["attempts"],
        last_error=job["last_error"],
        next_attempt_at=datetime.fromtimestamp(job["next_at"], UTC) if job["state"] == "pending" else None,
    )


def event(row: Any) -> StatusEvent:
    return StatusEvent(
        seq=row["seq"],
        status=DossierStatus(row["status"]),
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        note=row["note"],
        data=orjson.loads(row["data"]),
    )


def job(row: Any, dossier: Dossier | None = None, documents: Mapping[str, bytes] | None = None) -> JobRecord:
    """A jobs row; a claimed one with its dossier and small documents, read in the claim's transaction."""
    return JobRecord(
        id=row["id"],
        dossier_id=UUID(row["dossier_id"]),
        step=row["step"],
        agency=row["agency"],
        endpoint=row["endpoint"],
        idempotency_key=row["idempotency_key"],
        state=row["state"],
        attempts=row["attempts"],
        next_at=row["next_at"],
        last_error=row["last_error"],
        inputs=orjson.loads(row["inputs"]),
        failing_since=row["failing_since"],
        held=row["held"],
        updated_at=row["updated_at"],
        dossier=dossier,
        documents=documents if documents is not None else {},
    )


def _open_supplement(row: Any) -> Any:
    if row["status"] != DossierStatus.SUPPLEMENT_REQUESTED:
        return None
    requests = orjson.loads(row["supplements"])
    return requests[-1] if requests else None


def bundle(b: Any, steps: list[Any], outputs: dict[str, dict[str, Any]]) -> BundleView:
    from gateway.bundles import derive_state

    views = [
        BundleStepView(
            step=r["bundle_step"],
            procedure_code=r["procedure_code"],
            dossier_id=UUID(r["id"]),
            dossier_code=r["code"],
            agency=r["agency"],
            status=DossierStatus(r["status"]),
            delivery=_JOB_STATE[r["job_state"]],
            attempts=r["attempts"],
            last_error=r["last_error"],
            outputs=outputs.get(r["bundle_step"], {}),
            results=orjson.loads(r["results"]),
            supplement=_open_supplement(r),
        )
        for r in steps
    ]
    state, actions = derive_state(views)
    return BundleView(
        id=UUID(b["id"]),
        bundle=b["spec"],
        name=b["name"],
        client_id=b["client_id"],
        state=state,
        actions=actions,
        created_at=datetime.fromisoformat(b["created_at"]),
        steps=views,
    )
