"""Dossiers: submit, read, list, events."""

from __future__ import annotations

import base64

from aiohttp import web
from pydantic import ValidationError

from contracts import Dossier, DossierStatus
from contracts.bundle import ResultHandover, SupplementAnswer
from gateway.api.access import audit, open_dossier
from gateway.api.keys import DISPATCHER, DOCUMENT_INTAKE, INTAKE, LIVE, PRINCIPAL, STORE
from gateway.api.responses import json_response, query_int, read_json
from gateway.auth import Principal
from gateway.connector import AgencyUpdate
from gateway.errors import FieldError, IllegalTransition, InvalidRequest, NotFound, ValidationFailed
from gateway.intake import field_errors
from gateway.store.base import DossierBrief, UpdateSource

routes = web.RouteTableDef()
IDEMPOTENCY_HEADER = "Idempotency-Key"


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


DELIVERY_STATES = ("waiting", "pending", "in_flight", "delivered", "dead", "cancelled")


def summary(d: Dossier | DossierBrief) -> dict[str, object]:
    out: dict[str, object] = {
        "id": str(d.id),
        "code": d.code,
        "status": int(d.status),
        "status_label": d.status.label,
        "due_at": d.due_at.isoformat(),
        "agency": d.agency,
    }
    if d.delivery is not None:
        out["delivery"] = {
            "state": d.delivery.state,
            "attempts": d.delivery.attempts,
            "last_error": d.delivery.last_error,
        }
    return out


@routes.post("/v1/dossiers")
async def submit(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("submit")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= 200):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 200 characters",
            errors=[FieldError(f"headers.{IDEMPOTENCY_HEADER}", "1 to 200 characters")],
        )
    intake = request.app[INTAKE]
    async with intake.slots:
        raw, body = await read_json(request)
        outcome = await intake.submit(p, raw, body, key)
    if outcome.created:
        request.app[DISPATCHER].wake(outcome.brief.agency)
    headers = {
        "Location": f"/v1/dossiers/{outcome.brief.id}",
        "Link": f'</v1/dossiers/{outcome.brief.id}/receipt>; rel="receipt"',
    }
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(summary(outcome.brief), status=202 if outcome.created else 200, headers=headers)


@routes.get("/v1/dossiers/{ref}")
async def get_dossier(request: web.Request) -> web.Response:
    return json_response(await open_dossier(request, "read"))


@routes.get("/v1/dossiers/{ref}/events")
async def get_events(request: web.Request) -> web.Response:
    d = await open_dossier(request, "events")
    events = await request.app[STORE].events(d.id)
    return json_response(
        {
            "dossier_id": str(d.id),
            "code": d.code,
            "status": int(d.status),
            "events": [e.model_dump(mode="json") for e in events],
        }
    )


@routes.get("/v1/dossiers")
async def list_dossiers(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("read")
    status = query_int(request, "status", None, low=0, high=10)
    limit = query_int(request, "limit", 100, low=1, high=1000)
    delivery = request.query.get("delivery")
    if delivery is not None and delivery not in DELIVERY_STATES:
        raise InvalidRequest(
            f"query parameter delivery is one of {', '.join(DELIVERY_STATES)}, not {delivery!r}",
            errors=[FieldError("query.delivery", f"one of {', '.join(DELIVERY_STATES)}")],
        )
    client = p.client_id if p.conf.kind == "centre" else request.query.get("client")
    found = await request.app[STORE].list_dossiers(
        client_id=client,
        status=status,
        limit=limit,
        delivery=delivery,  # type: ignore[arg-type]  # one of DELIVERY_STATES, checked above
    )
    basis = "own" if p.conf.kind == "centre" else "all-dossiers"
    detail = {"count": len(found), "client": client, "status": status, "delivery": delivery}
    await audit(request, "list", basis=basis, detail=detail)
    return json_response({"items": [summary(d) for d in found]})


@routes.post("/v1/dossiers/{ref}/supplements")
async def answer_supplement(request: web.Request) -> web.Response:
    p = principal_of(request)
    d = await open_dossier(request, "supplement", scope="submit")
    raw, _ = await read_json(request)
    try:
        answer = SupplementAnswer.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the supplement has invalid fields", errors=field_errors(exc)) from None
    taking = request.app[DOCUMENT_INTAKE]
    spec = request.app[LIVE].current.catalog.get(d.procedure_code)
    taken = await taking.take(p.client_id, spec, answer.attachments)
    try:
        updated = await request.app[STORE].answer_supplement(
            d.id,
            answer.model_dump(mode="json") | {"attachments": taken.attachments},
            actor=p.client_id,
            documents=taken.refs,
        )
    except BaseException:
        await taking.discard(taken)
        raise
    request.app[DISPATCHER].wake(updated.agency)
    return json_response(updated, status=202)


@routes.post("/v1/dossiers/{ref}/return")
async def return_result(request: web.Request) -> web.Response:
    """The result was handed to the applicant (9 -> 10), at the centre that received the dossier or at any
    other one the applicant came to, which shows the applicant's identifier (`X-Applicant-Id`)."""
    p = principal_of(request)
    d = await open_dossier(request, "return", scope="submit")
    raw, _ = await read_json(request) if request.body_exists else ({}, b"")
    try:
        handover = ResultHandover.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the hand-over has invalid fields", errors=field_errors(exc)) from None
    if d.status == DossierStatus.RETURNED:
        return json_response(d)  # already handed over: the same answer again
    if d.status != DossierStatus.FINISHED:
        raise IllegalTransition(
            f"the dossier is in status {int(d.status)} ({d.status.label}); only a finished dossier (9) "
            "has a result to hand over"
        )
    note = handover.note or f"result returned to the applicant at {p.client_id}"
    data = {"returned_at_centre": p.client_id, "received_at_centre": d.client_id}
    update = AgencyUpdate(
        event_id="result-returned", dossier_id=d.id, status=DossierStatus.RETURNED, note=note, data=data
    )
    await request.app[STORE].apply_update(update, source=UpdateSource(p.client_id))
    returned = await request.app[STORE].get_dossier(str(d.id))
    return json_response(returned)


@routes.get("/v1/dossiers/{ref}/results/{index}")
async def download_result(request: web.Request) -> web.Response:
    d = await open_dossier(request, "result")
    try:
        doc = d.results[int(request.match_info["index"])]
    except (ValueError, IndexError):
        raise NotFound(f"dossier {d.code} has {len(d.results)} result documents") from None
    if doc.content_base64 is None:
        if doc.url:  # checked to be an http(s) URL when the agency's update was applied
            return web.Response(status=302, headers={"Location": doc.url})
        raise NotFound("the agency sent this result without its content")
    filename = f"{d.code}-{request.match_info['index']}"
    return web.Response(
        body=base64.b64decode(doc.content_base64),
        content_type=doc.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Digest": f"sha-256={doc.sha256}",
            "X-Content-Type-Options": "nosniff",
            # Its detached signature (docs/citizens.md), when the gateway has a signing key.
            "Link": f'</v1/dossiers/{d.id}/results/{request.match_info["index"]}/signature>; rel="signature"',
        },
    )
