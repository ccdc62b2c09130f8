"""The payment platform simulator: orders checked, one transaction per order, paid with a receipt, the
callback signed (or dropped), the beneficiary settled, the reconciliation query."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.signing import HmacSigner, HmacVerifier
from gateway.sandbox.payment_sim import create_payment_simulator
from gateway.sdk.simulation import SimulatorOptions

SECRET = "payment-sim-test-secret-00001"
SIGN = HmacSigner("lienthong-gateway", SECRET)


def order(callback: str, **over: Any) -> dict[str, Any]:
    body = {
        "merchant_code": "LIENTHONG",
        "order_id": "ord-1",
        "amount": 1_500_000,
        "currency": "VND",
        "description": "Thanh toan ho so",
        "bills": [{"code": "TB-1", "name": "Lệ phí trước bạ", "amount_vnd": 1_500_000}],
        "dossier_code": "000.00.01.H26-261205-0001",
        "beneficiary": "tax",
        "return_url": None,
        "callback_url": callback,
    }
    return body | over


async def call(client: TestClient[Any, Any], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = orjson.dumps(body) if body is not None else b""
    headers = {"Content-Type": "application/json"} | SIGN(method, path, raw)
    async with client.request(method, path, data=raw or None, headers=headers) as r:
        return r.status, await r.json()


async def test_an_order_paid_calls_back_signed_and_settles_the_beneficiary(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    got: dict[str, list[Any]] = {"callbacks": [], "settled": []}
    verifier = HmacVerifier({"lienthong-gateway": SECRET})

    async def merchant(request: web.Request) -> web.Response:
        body = await request.read()
        verifier.verify("POST", request.path, request.headers, body)  # raises when it is not the platform's
        got["callbacks"].append(orjson.loads(body))
        return web.json_response({"ok": True})

    async def treasury(request: web.Request) -> web.Response:
        got["settled"].append(await request.json())
        return web.json_response({"ok": True})

    other = web.Application()
    other.router.add_post("/v1/payments/callback", merchant)
    other.router.add_post("/_sim/pay", treasury)
    server = await aiohttp_server(other)
    base = str(server.make_url("")).rstrip("/")
    settings = {"settle_urls": {"tax": f"{base}/_sim/pay"}}
    client = await aiohttp_client(create_payment_simulator(SimulatorOptions(secret=SECRET, settings=settings)))
    status, made = await call(client, "POST", "/api/v1/payments", order(f"{base}/v1/payments/callback"))
    assert status == 201 and made["state"] == "PENDING" and made["qr_data"].startswith("000201")
    assert await call(client, "POST", "/api/v1/payments", order(f"{base}/v1/payments/callback")) == (200, made)
    status, _ = await call(client, "POST", "/api/v1/payments", order(f"{base}/cb", amount=2, bills=[]))
    assert status == 422
    async with client.post("/_sim/pay", json={"order_id": "ord-1"}) as r:
        paid = await r.json()
    assert paid["state"] == "PAID" and paid["receipt"]["media_type"] == "application/pdf"
    async with asyncio.timeout(10):
        while not (got["callbacks"] and got["settled"]):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert got["callbacks"][0]["bank_ref"] == paid["bank_ref"] and got["settled"] == [{"notice_number": "TB-1"}]
    status, queried = await call(client, "GET", "/api/v1/payments/ord-1")
    assert status == 200 and queried["state"] == "PAID"
    assert (await call(client, "GET", "/api/v1/payments/nothing"))[0] == 404


async def test_orders_that_do_not_fit_are_refused(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await aiohttp_client(create_payment_simulator(SimulatorOptions(secret=SECRET)))
    cb = "http://127.0.0.1:9/cb"
    assert (await call(client, "POST", "/api/v1/payments", order(cb, amount=7)))[0] == 422  # not the bills' sum
    assert (await call(client, "POST", "/api/v1/payments", order(cb, merchant_code="X")))[0] == 422
    assert (await call(client, "POST", "/api/v1/payments", order(cb, currency="USD")))[0] == 422
    async with client.post("/api/v1/payments", json=order(cb)) as r:
        assert r.status == 401  # unsigned
    assert (await call(client, "POST", "/api/v1/payments", order(cb)))[0] == 201
    changed = order(cb, amount=9, bills=[{"code": "X", "name": "x", "amount_vnd": 9}])
    assert (await call(client, "POST", "/api/v1/payments", changed))[0] == 409  # the same order id, other contents
