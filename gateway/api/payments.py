"""Online payment of a dossier: a payment request to the national payment platform, its callback, its receipt.

The amount is the agency's notice when the dossier waits on a financial obligation (status 6: the tax
notices of a land transfer, each a bill), else the procedure's fee from the catalog (`fees_vnd`). A
request is idempotent by the centre's Idempotency-Key (the platform by the payment's id). The platform's
callback (HMAC-signed, no API key) or, when it is lost, the reconciliation poll (gateway/payments.py)
records the payment once: an event on the dossier (DuocThanhToanTrucTuyen in the portal record) and the
receipt, kept and served at GET /v1/payments/{id}/receipt.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from adapters.signing import SignatureError
from contracts import Dossier, DossierStatus
from contracts.payment import Bill, Payment, PaymentRequest
from gateway.api.access import audit, open_dossier
from gateway.api.appointments import _key
from gateway.api.dossiers import principal_of
from gateway.api.keys import LIVE, PAYMENTS, STORE
from gateway.api.responses import json_response, query_int, read_json
from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    Conflict,
    IdempotencyConflict,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    Unauthenticated,
    UpstreamFailed,
    UpstreamTimeout,
    ValidationFailed,
)
from gateway.intake import field_errors
from gateway.payments import AGENCY, PaymentPlatform, settle
from gateway.store.base import AuditEntry
from gateway.store.payments import NewPayment

routes = web.RouteTableDef()
PAYABLE = (
    DossierStatus.RECEIVED,
    DossierStatus.IN_TRANSFER,
    DossierStatus.PROCESSING,
    DossierStatus.SUPPLEMENT_REQUESTED,
    DossierStatus.FINANCIAL_OBLIGATION,
)


def _platform(request: web.Request) -> PaymentPlatform:
    platform = request.app.get(PAYMENTS)
    if platform is None:
        raise NotFound("this gateway takes no online payments ([payments] is not configured)")
    return platform


async def bills_of(request: web.Request, d: Dossier) -> tuple[Bill, ...]:
    """What the applicant owes: the agency's notices (status 6), else the procedure's fee."""
    if d.status == DossierStatus.FINANCIAL_OBLIGATION:
        events = await request.app[STORE].events(d.id)
        notice = next((e for e in reversed(events) if e.status == DossierStatus.FINANCIAL_OBLIGATION), None)
        notices = notice.data.get("notices") if notice is not None else None
        if isinstance(notices, list) and notices:
            return tuple(
                Bill(
                    code=str(n["notice_number"]),
                    name=str(n.get("name") or "Thông báo nộp tiền"),
                    amount_vnd=int(n["amount_vnd"]),
                )
                for n in notices
            )
    spec = request.app[LIVE].current.catalog.get(d.procedure_code)
    if spec is not None and spec.fees_vnd > 0:
        return (Bill(code=spec.code, name=f"Phí, lệ phí: {spec.name}"[:200], amount_vnd=spec.fees_vnd),)
    raise Conflict(f"dossier {d.code} has nothing to pay: no notice from its agency and no fee in the catalog")


@routes.post("/v1/dossiers/{ref}/payments")
async def request_payment(request: web.Request) -> web.Response:
    p = principal_of(request)
    key = _key(request)
    platform = _platform(request)
    d = await open_dossier(request, "payment.request", scope="submit")
    raw, _ = await read_json(request) if request.body_exists else ({}, b"")
    try:
        req = PaymentRequest.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the payment request has invalid fields", errors=field_errors(exc)) from None
    store = request.app[STORE]
    existing = await store.payment_by_key(p.client_id, key)
    if existing is not None and existing.dossier_id != str(d.id):
        raise IdempotencyConflict("this Idempotency-Key was used for another dossier's payment")
    if existing is not None and existing.state != "created":
        return json_response(existing, headers={"Idempotent-Replayed": "true"})
    if existing is None:
        if d.status not in PAYABLE:
            raise Conflict(f"dossier {d.code} is in status {int(d.status)}: nothing is paid for it now")
        bills = await bills_of(request, d)
        existing, _ = await store.begin_payment(NewPayment(p.client_id, key, str(d.id), d.agency, bills))
    try:
        made = await platform.create(existing, d, req.return_url)
    except AgencyRejected as exc:
        await store.forget_payment(existing.id)
        raise UpstreamFailed(exc.message, extra={"agency": AGENCY}) from exc
    except AgencyTimeout as exc:
        raise UpstreamTimeout("the payment platform did not answer in time; send the request again") from exc
    except AgencyError as exc:
        raise UpstreamFailed(exc.message, extra={"agency": AGENCY}) from exc
    payment = await store.payment_created(existing.id, made.transaction_id, made.pay_url, made.qr_data)
    detail = {"payment": payment.id, "amount_vnd": payment.amount_vnd, "bills": len(payment.bills)}
    await audit(request, "payment.requested", basis="own", dossier_id=str(d.id), detail=detail)
    return json_response(payment, status=201, headers={"Location": f"/v1/payments/{payment.id}"})


async def _own(request: web.Request, action: str) -> Payment:
    p = principal_of(request)
    p.require("read")
    pid = request.match_info["id"][:64]
    payment = await request.app[STORE].get_payment(pid)
    allowed = payment is not None and (p.conf.kind != "centre" or payment.client_id == p.client_id)
    basis = "own" if allowed and payment is not None and payment.client_id == p.client_id else "all-dossiers"
    await audit(
        request,
        action,
        allowed=allowed,
        basis=basis if allowed else "not-found",
        dossier_id=payment.dossier_id if payment is not None else None,
        detail={"payment": pid},
    )
    if payment is None or not allowed:
        raise NotFound(f"no payment {pid} for client {p.client_id!r}")
    return payment


@routes.get("/v1/payments/{id}")
async def get_payment(request: web.Request) -> web.Response:
    return json_response(await _own(request, "payment.read"))


@routes.get("/v1/payments/{id}/receipt")
async def get_receipt(request: web.Request) -> web.Response:
    payment = await _own(request, "payment.receipt")
    content = await request.app[STORE].payment_receipt(payment.id)
    if payment.receipt is None or content is None:
        raise NotFound(f"payment {payment.id} is {payment.state}: no receipt yet")
    return web.Response(
        body=content,
        content_type=payment.receipt.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="bien-lai-{payment.receipt.number}"',
            "Digest": f"sha-256={payment.receipt.sha256}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.get("/v1/payments")
async def list_payments(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("read")
    limit = query_int(request, "limit", 100, low=1, high=1000)
    store = request.app[STORE]
    dossier_id = None
    if ref := request.query.get("dossier"):
        d = await store.get_dossier(ref)
        if d is None:
            return json_response({"items": []})
        dossier_id = str(d.id)
    client = p.client_id if p.conf.kind == "centre" else request.query.get("client")
    found = await store.list_payments(client_id=client, dossier_id=dossier_id, limit=limit)
    basis = "own" if p.conf.kind == "centre" else "all-dossiers"
    await audit(request, "payment.list", basis=basis, detail={"count": len(found)})
    return json_response({"items": [x.model_dump(mode="json") for x in found]})


@routes.post("/v1/payments/callback")
async def callback(request: web.Request) -> web.Response:
    """The platform's news of a transaction, signed with the shared key; stored before it is answered."""
    platform = _platform(request)
    body = await request.read()
    store = request.app[STORE]
    try:
        t = platform.callback(request.headers, body)
    except SignatureError as exc:
        await store.audit([AuditEntry(AGENCY, "payment.callback", "denied", "bad-signature", detail={"why": str(exc)})])
        raise Unauthenticated(f"the callback's signature does not verify: {exc}") from None
    except MalformedAnswer as exc:
        raise InvalidRequest(exc.message) from None
    payment = await store.get_payment(t.order_id[:64])
    if payment is None:
        raise NotFound(f"no payment {t.order_id[:64]}")
    recorded = await settle(store, payment, t, "callback")
    if t.state == "PAID" and recorded is None:  # sending it again would not change it: no retry asked for
        raise Conflict(f"the transaction does not match payment {payment.id} (order or amount); it was logged")
    await store.audit(
        [
            AuditEntry(
                AGENCY,
                "payment.callback",
                "allowed",
                "signature",
                dossier_id=payment.dossier_id,
                detail={"payment": payment.id, "state": t.state},
            )
        ]
    )
    return json_response({"received": True, "payment": payment.id, "state": t.state})
