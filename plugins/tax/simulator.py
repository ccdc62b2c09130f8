"""A simulator of the tax authority's land-transfer service: the bundled WSDL served and answered over SOAP 1.1.

POST /ws            SOAP envelopes (validated against tax.xsd; Faults for what it refuses)
GET  /ws?wsdl       the WSDL (and ?xsd=tax.xsd, the schema it imports)
POST /_sim/pay      the applicant pays: {"notice_number": ...} or {"dossier_code": ...}
GET  /_sim/declarations   what was declared, with each notice's payment status
GET/POST /_sim/auto-pay   {"after": seconds | null}: auto_pay_after, changed at run time
GET  /_sim/polls    the sinceSequence of every GetNoticeUpdates, in order (where each poll started)
plus the shared fault injection, /_sim/faults, /_sim/stats and /health of gateway.sdk.simulation.

A declaration's documents (AttachedDocument, base64Binary) are checked whole and against the procedure's
required components: a declaration without them all right is refused with a Client.InvalidDocuments
fault and counted as `documents_refused`; the others as `documents_ok`.

Settings (SimulatorOptions.settings): auto_pay_after (seconds; the applicant pays every notice of a new
declaration that long after it), registration_fee_rate, income_tax_rate, due_days, server_fault_rate
(share of SOAP calls answered with a Server fault, which the gateway retries), client_fault_rate (share
answered with a Client fault: the request refused, never retried), updates_fault (how GetNoticeUpdates is
answered wrongly, as broken front ends answer: "empty-202", an empty 202 Accepted; "garbled-sequence",
a lastSequence that is not a number; "stale-sequence", a lastSequence of 0 with the events after the
one asked for); appointments_secret (the booking service's HMAC key, options.secret by default).
The tax office's booking service (gateway/sdk/appointment_desk.py) answers at /appointments.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from adapters.soap.testing import fault_envelope
from gateway.sdk import (
    RNG,
    STATS,
    ReceivedDocument,
    SimulatorOptions,
    count_documents,
    document_problems,
    new_simulator,
    spawn,
)
from gateway.sdk.appointment_desk import Desk, mount_desk
from plugins.tax.ledger import Ledger, LedgerFault, Rates
from plugins.tax.procedures import by_code
from plugins.tax.register import taxpayers
from plugins.tax.soap_service import CONTENT_TYPE, SoapService

log = structlog.get_logger("lienthong.simulator")

WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
PROCEDURES = by_code()  # the agency's own rules: required documents and accepted types


class TaxSimSettings(BaseModel):
    """Mutable at run time: tests change `server_fault_rate` or `auto_pay_after` on app[SETTINGS]."""

    model_config = ConfigDict(extra="forbid")

    auto_pay_after: float | None = Field(None, ge=0)
    registration_fee_rate: Decimal = Field(Decimal("0.005"), ge=0, le=1)
    income_tax_rate: Decimal = Field(Decimal("0.02"), ge=0, le=1)
    due_days: int = Field(10, ge=0, le=365)
    server_fault_rate: float = Field(0.0, ge=0, le=1)
    client_fault_rate: float = Field(0.0, ge=0, le=1)
    updates_fault: Literal["none", "empty-202", "garbled-sequence", "stale-sequence"] = "none"
    appointments_secret: str | None = Field(None, min_length=16, description="the booking service's HMAC key")


SETTINGS = web.AppKey("tax_settings", TaxSimSettings)
LEDGER = web.AppKey("tax_ledger", Ledger)
SERVICE = web.AppKey("tax_service", SoapService)
OPTIONS = web.AppKey("tax_options", SimulatorOptions)
POLLS = web.AppKey("tax_polls", list[int])  # the sinceSequence of every GetNoticeUpdates, in order


def _malformed() -> web.Response:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<soap-env:Envelope xmlns:soap-env='
        b'"http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><ns0:SubmitLandTransferDecl'
    )
    return web.Response(status=200, body=body, headers={"Content-Type": CONTENT_TYPE})


def _refused() -> web.Response:
    body = fault_envelope("1.1", "Client", "the tax service refuses this request", subcode="RequestRefused")
    return web.Response(status=500, body=body, headers={"Content-Type": CONTENT_TYPE})


async def _auto_pay(app: web.Application, dossier_code: str, delay: float) -> None:
    await asyncio.sleep(delay)
    events = app[LEDGER].pay_dossier(dossier_code)
    app[STATS]["auto_paid"] += sum(1 for e in events if e.type == "PAID")


def _busy(app: web.Application) -> None:
    settings, roll = app[SETTINGS], app[RNG].random()
    if roll < settings.server_fault_rate:
        raise LedgerFault("Server", "ServiceUnavailable", "the tax service is busy; try again later")
    if roll < settings.server_fault_rate + settings.client_fault_rate:
        raise LedgerFault("Client", "RequestRefused", "the tax service refuses this request")


def _lookup(app: web.Application, values: dict[str, Any]) -> Mapping[str, Any]:
    _busy(app)
    return app[LEDGER].taxpayer(values)


def _documents(values: dict[str, Any]) -> list[ReceivedDocument]:
    return [
        ReceivedDocument.of(d["componentCode"], d["title"], d["mediaType"], int(d["size"]), d["sha256"], d["content"])
        for d in values.get("document") or []
    ]


def _declare(app: web.Application, values: dict[str, Any]) -> Mapping[str, Any]:
    _busy(app)
    problems = document_problems(PROCEDURES.get(str(values.get("procedureCode"))), _documents(values))
    if problems:
        count_documents(app[STATS], problems)
        raise LedgerFault("Client", "InvalidDocuments", "the declaration's documents: " + "; ".join(problems))
    declaration, new = app[LEDGER].declare(values)
    app[STATS]["declarations" if new else "duplicates"] += 1
    if new:
        app[STATS]["accepted"] += 1  # every simulator's count of dossiers taken once
        count_documents(app[STATS], [])
    delay = app[SETTINGS].auto_pay_after
    if new and delay is not None:
        spawn(app, _auto_pay(app, declaration.dossier_code, delay))
    return declaration.wire()


def _payment(app: web.Application, values: dict[str, Any]) -> Mapping[str, Any]:
    _busy(app)
    return app[LEDGER].payment(values["noticeNumber"])


def _updates(app: web.Application, values: dict[str, Any]) -> Mapping[str, Any]:
    _busy(app)
    app[POLLS].append(int(values["sinceSequence"]))
    return app[LEDGER].updates(int(values["sinceSequence"]), int(values.get("maxEvents") or 100))


def _rates(settings: TaxSimSettings) -> Rates:
    return Rates(settings.registration_fee_rate, settings.income_tax_rate, settings.due_days)


async def _load(app: web.Application) -> None:
    """zeep, lxml and the unit tables read files: in a thread, before the first request."""
    seed = app[OPTIONS].seed

    def blocking() -> tuple[SoapService, Ledger]:
        service = SoapService.load(WSDL_DIR / "tax.wsdl", WSDL_DIR / "tax.xsd")
        return service, Ledger(taxpayers(seed), _rates(app[SETTINGS]))

    service, app[LEDGER] = await asyncio.to_thread(blocking)
    service.stats = app[STATS]
    service.handlers = {
        "LookupTaxpayer": functools.partial(_lookup, app),
        "SubmitLandTransferDeclaration": functools.partial(_declare, app),
        "QueryNoticePayment": functools.partial(_payment, app),
        "GetNoticeUpdates": functools.partial(_updates, app),
    }
    app[SERVICE] = service


_LAST_SEQUENCE = re.compile(rb"(<(?:\w+:)?lastSequence>)\d+(</(?:\w+:)?lastSequence>)")


async def soap(request: web.Request) -> web.Response:
    response = await request.app[SERVICE].handle(request)
    fault, body = request.app[SETTINGS].updates_fault, response.body
    if fault == "none" or response.status != 200 or not isinstance(body, bytes):
        return response
    if b"GetNoticeUpdatesResponse" not in body:
        return response
    request.app[STATS][f"updates_{fault}"] += 1
    if fault == "empty-202":
        return web.Response(status=202)
    wrong = b"12x" if fault == "garbled-sequence" else b"0"
    response.body = _LAST_SEQUENCE.sub(rb"\g<1>" + wrong + rb"\g<2>", body)
    return response


async def describe(request: web.Request) -> web.Response:
    return request.app[SERVICE].describe(request)


async def pay(request: web.Request) -> web.Response:
    """The applicant pays at the bank or online: one notice, or every notice of a dossier."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not (body.get("notice_number") or body.get("dossier_code")):
        return web.json_response({"error": 'send {"notice_number": ...} or {"dossier_code": ...}'}, status=400)
    ledger = request.app[LEDGER]
    try:
        if body.get("notice_number"):
            events = ledger.pay(str(body["notice_number"]))
            declaration = ledger.by_dossier[ledger.notice(str(body["notice_number"])).dossier_code]
        else:
            events = ledger.pay_dossier(str(body["dossier_code"]))
            declaration = ledger.by_dossier[str(body["dossier_code"])]
    except LedgerFault as f:
        return web.json_response({"error": f.reason}, status=404)
    request.app[STATS]["payments"] += sum(1 for e in events if e.type == "PAID")
    return web.json_response(
        {
            "declaration_id": declaration.id,
            "paid": [e.notices[0].number for e in events if e.type == "PAID"],
            "settled": declaration.settled,
        }
    )


async def polls(request: web.Request) -> web.Response:
    """Where each reader of the event log started (sinceSequence), oldest first."""
    return web.json_response(request.app[POLLS])


async def declarations(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER]
    today = ledger.clock().date()
    return web.json_response(
        [
            {
                "declaration_id": d.id,
                "dossier_code": d.dossier_code,
                "settled": d.settled,
                "notices": [
                    {"notice_number": n.number, "kind": n.kind, "amount": n.amount, "status": n.status(today)}
                    for n in d.notices
                ],
            }
            for d in ledger.by_dossier.values()
        ]
    )


async def auto_pay(request: web.Request) -> web.Response:
    """GET/POST /_sim/auto-pay {"after": seconds | null}: whether applicants pay new notices by themselves
    (null: they wait to pay online, through the payment platform, which then credits the tax office)."""
    settings = request.app[SETTINGS]
    if request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            body = None
        after = body.get("after", "missing") if isinstance(body, dict) else "missing"
        if after is not None and (isinstance(after, bool) or not isinstance(after, int | float) or after < 0):
            return web.json_response({"error": 'send {"after": seconds >= 0 | null}'}, status=422)
        settings.auto_pay_after = None if after is None else float(after)
    return web.json_response({"after": settings.auto_pay_after})


def create_simulator(options: SimulatorOptions) -> web.Application:
    settings = TaxSimSettings.model_validate(options.settings)
    app = new_simulator(options, _malformed, _refused)
    app[SETTINGS] = settings
    app[OPTIONS] = options
    app[POLLS] = []
    app.on_startup.append(_load)
    app.router.add_post("/ws", soap)
    app.router.add_get("/ws", describe)
    app.router.add_post("/_sim/pay", pay)
    app.router.add_get("/_sim/declarations", declarations)
    app.router.add_get("/_sim/auto-pay", auto_pay)
    app.router.add_post("/_sim/auto-pay", auto_pay)
    # The tax office's booking service: consultations with its officers, under the same faults.
    desk = Desk(
        "tax",
        {"national": "Chi cục Thuế khu vực I, 187 Giảng Võ, Đống Đa, Hà Nội"},
        officers=("Công chức thuế Trần Minh Đức", "Công chức thuế Vũ Thị Hạnh"),
        meeting_base="https://hop.thue.example.vn",
    )
    mount_desk(app, desk, key_id="lienthong-gateway", secret=settings.appointments_secret or options.secret)
    app.router.add_get("/_sim/polls", polls)
    return app
