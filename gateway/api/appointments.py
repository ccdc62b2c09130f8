"""Appointments with an agency's officer for dossiers of referred procedures (`ProcedureSpec.referral`).

The centre asks the dossier's agency for free slots, books one for the applicant (in person at the office,
or an online consultation with a meeting link), moves or cancels it; the agency's plugin answers through
its connector (`appointment_slots`, `book_appointment`, `move_appointment`, `cancel_appointment`). A
booking is idempotent by the centre's Idempotency-Key (the agency is asked with a key of the booking's
own, so a lost answer costs no second slot); bookings and their events (booked, moved, cancelled, the
applicant's reminder) are durable and listed per centre. Every action is audited.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import NoReturn

import structlog
from aiohttp import web
from pydantic import ValidationError

from contracts import Dossier, DossierStatus
from contracts.appointment import Appointment, BookingRequest, MoveRequest
from gateway.api.access import audit, open_dossier
from gateway.api.dossiers import IDEMPOTENCY_HEADER, principal_of
from gateway.api.keys import CONNECTORS, LIVE, STORE
from gateway.api.lookups import hold_check
from gateway.api.responses import json_response, query_int, read_json
from gateway.connector import Connector
from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    StorageUnavailable,
    UpstreamFailed,
    UpstreamTimeout,
    ValidationFailed,
)
from gateway.intake import field_errors
from gateway.store.appointments import NewAppointment
from gateway.store.base import Store

log = structlog.get_logger("lienthong.appointments")
routes = web.RouteTableDef()
CLOSED = (DossierStatus.REJECTED, DossierStatus.WITHDRAWN, DossierStatus.STOPPED, DossierStatus.RETURNED)
STATES = ("booking", "booked", "cancelled")
KINDS = ("booked", "moved", "cancelled", "reminder")


def _referred(request: web.Request, d: Dossier) -> Connector:
    """The connector of the dossier's agency endpoint, once the dossier may have an appointment."""
    spec = request.app[LIVE].current.catalog.get(d.procedure_code)
    if spec is None or not spec.referral:
        raise Conflict(f"procedure {d.procedure_code} is not referred to its agency: it takes no appointments")
    if d.status in CLOSED:
        raise Conflict(f"dossier {d.code} is closed (status {int(d.status)}): it takes no appointments")
    connector = request.app[CONNECTORS].get((d.agency, d.endpoint))
    if connector is None:
        raise NotFound(f"agency endpoint {d.agency}/{d.endpoint} is not configured")
    hold_check(request.app, d.agency, d.endpoint)
    return connector


def _agency_failed(exc: AgencyError, agency: str) -> NoReturn:
    if isinstance(exc, AgencyTimeout):
        raise UpstreamTimeout(f"{agency} did not answer in time", extra={"agency": agency}) from exc
    if isinstance(exc, AgencyRejected) and exc.status == 409:
        raise Conflict(f"{agency} refused: {exc.message}", extra={"agency": agency}) from exc
    raise UpstreamFailed(exc.message, extra={"agency": agency}) from exc


def _key(request: web.Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None or not 1 <= len(key) <= 200:
        raise InvalidRequest(
            "a booking needs an Idempotency-Key header of 1 to 200 characters",
            errors=[FieldError(f"headers.{IDEMPOTENCY_HEADER}", "1 to 200 characters")],
        )
    return key


@routes.get("/v1/dossiers/{ref}/appointment-slots")
async def slots(request: web.Request) -> web.Response:
    d = await open_dossier(request, "appointment.slots")
    connector = _referred(request, d)
    settings = request.app[LIVE].current.config.gateway.appointments
    days = query_int(request, "days", 7, low=1, high=settings.max_days)
    raw = request.query.get("from")
    try:
        since = date.fromisoformat(raw) if raw else datetime.now(UTC).date() + timedelta(days=1)
    except ValueError:
        raise InvalidRequest(
            f"query parameter from is a date (YYYY-MM-DD), not {raw!r}", errors=[FieldError("query.from", "YYYY-MM-DD")]
        ) from None
    try:
        found = await connector.appointment_slots(d, since, days)
    except AgencyError as exc:
        _agency_failed(exc, d.agency)
    return json_response({"dossier": d.code, "agency": d.agency, "items": [s.model_dump(mode="json") for s in found]})


@routes.post("/v1/dossiers/{ref}/appointments")
async def book(request: web.Request) -> web.Response:
    p = principal_of(request)
    key = _key(request)
    d = await open_dossier(request, "appointment.book", scope="submit")
    raw, _ = await read_json(request)
    try:
        req = BookingRequest.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the booking has invalid fields", errors=field_errors(exc)) from None
    connector = _referred(request, d)
    digest = hashlib.sha256(f"{d.id}|{req.slot_id}|{req.mode}".encode()).hexdigest()
    store = request.app[STORE]
    new = NewAppointment(p.client_id, key, digest, str(d.id), d.agency, d.endpoint, req.mode)
    row, created = await store.begin_appointment(new)
    if row.state != "booking":  # booked (or since cancelled) by an earlier request with this key
        return json_response(row, status=200, headers={"Idempotent-Replayed": "true"})
    try:
        booked = await connector.book_appointment(d, req.slot_id, req.mode, key=f"appointment-{row.id}")
    except AgencyRejected as exc:
        await store.forget_appointment(row.id)  # nothing held: the key may book another slot
        _agency_failed(exc, d.agency)
    except AgencyError as exc:
        _agency_failed(exc, d.agency)  # the row stays 'booking': the same key asks again
    remind_before = request.app[LIVE].current.config.gateway.appointments.remind_before
    a = await store.settle_appointment(row.id, booked, "booked", remind_before)
    await audit(request, "appointment.booked", basis="own", dossier_id=str(d.id), detail=_detail(a))
    return json_response(a, status=201 if created else 200, headers={"Location": f"/v1/appointments/{a.id}"})


def _detail(a: Appointment) -> dict[str, object]:
    return {"appointment": a.id, "agency": a.agency, "slot": a.slot.slot_id if a.slot else None, "state": a.state}


async def _own(request: web.Request, action: str) -> Appointment:
    """The appointment named by the path, if this client booked it (or may see every centre's)."""
    p = principal_of(request)
    p.require("submit" if action != "appointment.read" else "read")
    a = await request.app[STORE].get_appointment(request.match_info["id"])
    allowed = a is not None and (p.conf.kind != "centre" or a.client_id == p.client_id)
    basis = "own" if a is not None and a.client_id == p.client_id else ("all-dossiers" if allowed else "not-found")
    detail = _detail(a) if a is not None else {"appointment": request.match_info["id"][:64]}
    await audit(request, action, allowed=allowed, basis=basis, dossier_id=a.dossier_id if a else None, detail=detail)
    if a is None or not allowed:
        raise NotFound(f"no appointment {request.match_info['id'][:64]} for client {p.client_id!r}")
    return a


async def _dossier_of(store: Store, a: Appointment) -> Dossier:
    d = await store.get_dossier(a.dossier_id)
    if d is None:  # a row names its dossier by a foreign key
        raise NotFound(f"dossier {a.dossier_code} is gone")
    return d


@routes.get("/v1/appointments/events")
async def events(request: web.Request) -> web.Response:
    """booked, moved, cancelled and reminder events of this centre's appointments, in order: a consumer
    keeps `next_after`. A reminder is written when its time comes ([appointments] remind_before)."""
    p = principal_of(request)
    p.require("read")
    after = query_int(request, "after", 0, low=0, high=2**62)
    limit = query_int(request, "limit", 100, low=1, high=1000)
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(
            f"query parameter kind is one of {', '.join(KINDS)}", errors=[FieldError("query.kind", ", ".join(KINDS))]
        )
    client = p.client_id if p.conf.kind == "centre" else request.query.get("client")
    found = await request.app[STORE].appointment_events(client_id=client, after=after, kind=kind, limit=limit)
    basis = "own" if p.conf.kind == "centre" else "all-dossiers"
    await audit(request, "appointment.events", basis=basis, detail={"count": len(found), "after": after})
    return json_response(
        {"items": [e.model_dump(mode="json") for e in found], "next_after": found[-1].seq if found else after}
    )


@routes.get("/v1/appointments")
async def listing(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("read")
    state = request.query.get("state")
    if state is not None and state not in STATES:
        one_of = ", ".join(STATES)
        raise InvalidRequest(f"query parameter state is one of {one_of}", errors=[FieldError("query.state", one_of)])
    limit = query_int(request, "limit", 100, low=1, high=1000)
    store = request.app[STORE]
    dossier_id = None
    if ref := request.query.get("dossier"):
        d = await store.get_dossier(ref)
        if d is None:
            return json_response({"items": []})
        dossier_id = str(d.id)
    client = p.client_id if p.conf.kind == "centre" else request.query.get("client")
    found = await store.list_appointments(client_id=client, dossier_id=dossier_id, state=state, limit=limit)
    basis = "own" if p.conf.kind == "centre" else "all-dossiers"
    await audit(request, "appointment.list", basis=basis, detail={"count": len(found), "state": state})
    return json_response({"items": [a.model_dump(mode="json") for a in found]})


@routes.get("/v1/appointments/{id}")
async def get_one(request: web.Request) -> web.Response:
    return json_response(await _own(request, "appointment.read"))


@routes.post("/v1/appointments/{id}/move")
async def move(request: web.Request) -> web.Response:
    a = await _own(request, "appointment.move")
    raw, _ = await read_json(request)
    try:
        req = MoveRequest.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the move has invalid fields", errors=field_errors(exc)) from None
    if a.state != "booked" or a.agency_ref is None:
        raise Conflict(f"appointment {a.id} is {a.state}: only a booked appointment moves")
    if a.slot is not None and a.slot.slot_id == req.slot_id:
        return json_response(a)  # there already: the same answer again
    store = request.app[STORE]
    connector = _referred(request, await _dossier_of(store, a))
    try:
        booked = await connector.move_appointment(a.agency_ref, req.slot_id, key=f"appointment-{a.id}-to-{req.slot_id}")
    except AgencyError as exc:
        _agency_failed(exc, a.agency)
    remind_before = request.app[LIVE].current.config.gateway.appointments.remind_before
    return json_response(await store.settle_appointment(a.id, booked, "moved", remind_before))


@routes.post("/v1/appointments/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    a = await _own(request, "appointment.cancel")
    if a.state == "cancelled":
        return json_response(a)
    if a.agency_ref is None:
        raise Conflict(f"appointment {a.id} is not confirmed yet: send its booking again with the same key first")
    store = request.app[STORE]
    d = await _dossier_of(store, a)
    connector = request.app[CONNECTORS].get((d.agency, d.endpoint))
    if connector is None:
        raise NotFound(f"agency endpoint {d.agency}/{d.endpoint} is not configured")
    hold_check(request.app, d.agency, d.endpoint)
    try:
        await connector.cancel_appointment(a.agency_ref, key=f"appointment-{a.id}-cancel")
    except AgencyError as exc:
        _agency_failed(exc, a.agency)
    return json_response(await store.cancel_appointment(a.id))


async def remind(store: Store, interval: float) -> None:
    """Write the applicants' reminder events as their time comes, for as long as the gateway runs."""
    while True:
        try:
            await store.remind_appointments()
        except StorageUnavailable:
            pass  # the store logs the episode; the next turn writes them
        except Exception:
            log.exception("reminders_failed")
        await asyncio.sleep(interval)
