"""A simulator of the national payment platform (Nền tảng thanh toán của Cổng Dịch vụ công quốc gia).

Its flow, as a merchant (the gateway) sees it (gateway/payments.py has the wire):
- POST /api/v1/payments: an order (signed; the order id makes it idempotent) -> a transaction, the pay
  URL the payer is redirected to and the VietQR payload their banking app scans;
- GET /pay/{transaction_id}: the payment page (what the redirect shows);
- the payer pays (here: POST /_sim/pay {"order_id"} or {"transaction_id"}): the transaction is PAID with
  a bank reference and an electronic receipt (a PDF), the platform calls the merchant back (signed,
  retried while the merchant is down) and settles with the beneficiary (settings["settle_urls"]:
  beneficiary -> URL posted {"notice_number"} for each bill, as the State Treasury credits the tax
  office, e.g. the tax simulator's /_sim/pay);
- GET /api/v1/payments/{order_id}: the reconciliation query (signed).
It checks signatures (401), fields (422: a known merchant, an amount in whole VND equal to its bills, URLs)
and answers a repeated order with its transaction (a different order under the same id: 409).

Settings: key_id ("lienthong-gateway"; the key is SimulatorOptions.secret), merchants (["LIENTHONG"]),
settle_urls ({}), drop_callbacks (false: with true, a payment's callback is lost, as a merchant whose
network dropped it would see). Faults: every simulator's (latency, errors, downtime, malformed answers).
Control: POST /_sim/pay, GET/POST /_sim/payments ({"drop_callbacks": bool}; GET lists the transactions).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from yarl import URL

from adapters.signing import HmacSigner, HmacVerifier, SignatureError
from gateway.sdk.simulation import STATS, SimulatorOptions, new_simulator, post_until_accepted, spawn

log = structlog.get_logger("lienthong.simulator")


class _Bill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    amount_vnd: int = Field(gt=0)


class _Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_code: str = Field(min_length=1, max_length=50)
    order_id: str = Field(min_length=1, max_length=100)
    amount: int = Field(gt=0, le=10**13)
    currency: str = Field(pattern=r"^VND$")
    description: str = Field(min_length=1, max_length=200)
    bills: list[_Bill] = Field(min_length=1, max_length=50)
    dossier_code: str = Field(min_length=1, max_length=100)
    beneficiary: str = Field(min_length=1, max_length=100)
    return_url: str | None = Field(None, pattern=r"^https?://")
    callback_url: str = Field(pattern=r"^https?://")

    @model_validator(mode="after")
    def _sums(self) -> _Order:
        if sum(b.amount_vnd for b in self.bills) != self.amount:
            raise ValueError("amount is not the sum of the bills")
        return self


@dataclass
class Platform:
    key_id: str
    merchants: set[str]
    settle_urls: dict[str, str]
    drop_callbacks: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # order id -> transaction
    digests: dict[str, str] = field(default_factory=dict)  # order id -> the order's hash
    by_txn: dict[str, str] = field(default_factory=dict)  # transaction id -> order id


PLATFORM = web.AppKey("payment_platform", Platform)
VERIFIER = web.AppKey("payment_verifier", HmacVerifier)
SIGNER = web.AppKey("payment_signer", HmacSigner)


def _malformed() -> web.Response:
    return web.Response(status=200, text='{"transaction_id": ', content_type="application/json")


def _problem(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


async def _verified(request: web.Request) -> bytes | web.Response:
    body = await request.read()
    try:
        request.app[VERIFIER].verify(request.method, request.path, request.headers, body)
    except SignatureError as exc:
        return _problem(401, "signature", str(exc))
    return body


def _public(t: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in t.items() if not k.startswith("_")}


def _qr(txn: str, amount: int, description: str) -> str:
    """A VietQR-shaped payload (EMVCo tags): what a banking app scans."""
    payload = f"00020101021238570010A000000727012700069704070113{txn[:13]}0208QRIBFTTA5303704"
    payload += (
        f"54{len(str(amount)):02d}{amount}5802VN62{len(description) + 4:02d}08{len(description):02d}{description}"
    )
    return payload + "6304" + f"{sum(payload.encode()) % 65536:04X}"


async def create(request: web.Request) -> web.Response:
    body = await _verified(request)
    if isinstance(body, web.Response):
        return body
    platform, stats = request.app[PLATFORM], request.app[STATS]
    try:
        order = _Order.model_validate_json(body)
    except ValidationError as exc:
        return _problem(422, "invalid-order", str(exc))
    if order.merchant_code not in platform.merchants:
        return _problem(422, "unknown-merchant", f"merchant {order.merchant_code!r} is not registered")
    digest = hashlib.sha256(order.model_dump_json(exclude={"return_url", "callback_url"}).encode()).hexdigest()
    if order.order_id in platform.orders:
        if platform.digests[order.order_id] != digest:
            return _problem(409, "order-exists", f"order {order.order_id} exists with other contents")
        stats["payments_replayed"] += 1
        return web.json_response(_public(platform.orders[order.order_id]))
    txn = f"PG{datetime.now(UTC):%y%m%d}{secrets.token_hex(5).upper()}"
    base = str(request.url.origin())
    t = {
        "transaction_id": txn,
        "order_id": order.order_id,
        "state": "PENDING",
        "amount": order.amount,
        "pay_url": f"{base}/pay/{txn}",
        "qr_data": _qr(txn, order.amount, f"HS {order.dossier_code}"[:25]),
        "expires_at": (datetime.now(UTC) + timedelta(minutes=15)).isoformat(),
        "_order": order.model_dump(),
    }
    platform.orders[order.order_id], platform.digests[order.order_id], platform.by_txn[txn] = t, digest, order.order_id
    stats["payments_created"] += 1
    return web.json_response(_public(t), status=201)


async def query(request: web.Request) -> web.Response:
    body = await _verified(request)
    if isinstance(body, web.Response):
        return body
    t = request.app[PLATFORM].orders.get(request.match_info["order_id"])
    request.app[STATS]["queries"] += 1
    if t is None:
        return _problem(404, "unknown-order", "no such order")
    return web.json_response(_public(t))


async def page(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    order_id = platform.by_txn.get(request.match_info["txn"])
    if order_id is None:
        raise web.HTTPNotFound(text="no such transaction")
    t = platform.orders[order_id]
    amount = f"{t['amount']:,}".replace(",", ".")
    html = (
        "<!doctype html><html lang='vi'><meta charset='utf-8'><title>Thanh toán</title>"
        f"<h1>Nền tảng thanh toán</h1><p>Giao dịch {t['transaction_id']}: {amount} đồng</p>"
        f"<p>Trạng thái: {t['state']}</p></html>"
    )
    return web.Response(text=html, content_type="text/html")


def _receipt(t: dict[str, Any], number: str) -> bytes:
    order = t["_order"]
    lines = [f"BIEN LAI THU {number}", f"Giao dich {t['transaction_id']}", f"Ho so {order['dossier_code']}"]
    lines += [f"{b['code']}: {b['amount_vnd']} VND" for b in order["bills"]]
    text = " / ".join(lines)
    stream = f"BT /F1 10 Tf 40 800 Td ({text}) Tj ET"
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R>>endobj\n"
        + f"4 0 obj<</Length {len(stream)}>>stream\n{stream}\nendstream endobj\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


async def pay(request: web.Request) -> web.Response:
    """The payer pays: PAID, the merchant called back (unless callbacks are dropped), the beneficiary settled."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    platform = request.app[PLATFORM]
    if not isinstance(body, dict):
        return _problem(400, "invalid", 'send {"order_id": ...} or {"transaction_id": ...}')
    order_id = str(body.get("order_id") or platform.by_txn.get(str(body.get("transaction_id")), ""))
    t = platform.orders.get(order_id)
    if t is None:
        return _problem(404, "unknown-order", "no such order")
    if t["state"] != "PAID":
        number = f"BL{secrets.randbelow(10**8):08d}"
        content = _receipt(t, number)
        t |= {
            "state": "PAID",
            "paid_at": datetime.now(UTC).isoformat(),
            "bank_ref": f"FT{secrets.randbelow(10**10):010d}",
            "receipt": {
                "number": number,
                "media_type": "application/pdf",
                "content_base64": base64.b64encode(content).decode(),
            },
        }
        request.app[STATS]["payments_paid"] += 1
        spawn(request.app, _after_payment(request.app, t))
    return web.json_response(_public(t) | {"callback": "dropped" if platform.drop_callbacks else "sent"})


async def _after_payment(app: web.Application, t: dict[str, Any]) -> None:
    platform, order = app[PLATFORM], t["_order"]
    url = platform.settle_urls.get(order["beneficiary"])
    if url:  # the treasury credits the beneficiary, bill by bill
        for b in order["bills"]:
            await post_until_accepted(
                app, url, orjson.dumps({"notice_number": b["code"]}), {"Content-Type": "application/json"}
            )
        app[STATS]["settled"] += 1
    if platform.drop_callbacks:
        app[STATS]["callbacks_dropped"] += 1
        return
    body = orjson.dumps(_public(t))
    path = URL(order["callback_url"]).path
    headers = {"Content-Type": "application/json", **app[SIGNER]("POST", path, body)}
    await post_until_accepted(app, order["callback_url"], body, headers)


async def controls(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    if request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("drop_callbacks"), bool):
            return _problem(422, "invalid", 'send {"drop_callbacks": true | false}')
        platform.drop_callbacks = body["drop_callbacks"]
        return web.json_response({"drop_callbacks": platform.drop_callbacks})
    return web.json_response(
        {"drop_callbacks": platform.drop_callbacks, "orders": [_public(t) for t in platform.orders.values()]}
    )


def create_payment_simulator(options: SimulatorOptions) -> web.Application:
    s = options.settings
    app = new_simulator(options, _malformed)
    key_id = str(s.get("key_id", "lienthong-gateway"))
    app[PLATFORM] = Platform(
        key_id=key_id,
        merchants={str(m) for m in s.get("merchants", ["LIENTHONG"])},
        settle_urls={str(k): str(v) for k, v in (s.get("settle_urls") or {}).items()},
        drop_callbacks=bool(s.get("drop_callbacks", False)),
    )
    app[VERIFIER] = HmacVerifier({key_id: options.secret})
    app[SIGNER] = HmacSigner(key_id, options.secret)
    app.router.add_post("/api/v1/payments", create)
    app.router.add_get("/api/v1/payments/{order_id}", query)
    app.router.add_get("/pay/{txn}", page)
    app.router.add_post("/_sim/pay", pay)
    app.router.add_get("/_sim/payments", controls)
    app.router.add_post("/_sim/payments", controls)
    return app
