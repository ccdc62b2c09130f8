"""The VNeID wallet simulator checks what it receives: signatures, keys, fields, whole documents."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from adapters.signing import HmacSigner
from gateway.sandbox.wallet_sim import PATH, create_wallet_simulator
from gateway.sdk.simulation import SimulatorOptions

SECRET = "wallet-sim-test-secret-000001"
PDF = b"%PDF-1.4 result"


def push(**over: Any) -> dict[str, Any]:
    doc = {
        "name": "Giấy xác nhận",
        "component_code": "KQ",
        "media_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "content_base64": base64.b64encode(PDF).decode(),
    }
    body = {
        "citizen_id": "001085012345",
        "full_name": "Nguyễn Văn An",
        "dossier_code": "000.00.01.H26-261205-0001",
        "procedure_code": "1.004222",
        "procedure_name": "Đăng ký thường trú",
        "consent": {"given_at": "2026-12-01T09:00:00+07:00", "channel": "counter", "reference": "PDY-1"},
        "documents": [doc],
    }
    return body | over


async def send(client: TestClient[Any, Any], body: Any, key: str = "k1", secret: str = SECRET) -> tuple[int, Any]:
    raw = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key} | HmacSigner("lienthong-gateway", secret)(
        "POST", PATH, raw
    )
    async with client.post(PATH, data=raw, headers=headers) as r:
        return r.status, await r.json()


async def test_a_signed_whole_push_is_kept_once(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> None:
    client = await aiohttp_client(create_wallet_simulator(SimulatorOptions(secret=SECRET)))
    first = await send(client, push())
    again = await send(client, push())
    assert first[0] == 201 and again == (200, first[1])
    async with client.get("/_sim/wallet/001085012345") as r:
        held = await r.json()
    assert len(held) == 1 and held[0]["wallet_ref"] == first[1]["wallet_ref"] and len(held[0]["signature"]) == 64
    assert (await send(client, push(full_name="Trần Thị Lan")))[0] == 409  # the key names another push


async def test_what_does_not_fit_is_refused(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> None:
    client = await aiohttp_client(create_wallet_simulator(SimulatorOptions(secret=SECRET)))
    assert (await send(client, push(), secret="another-secret-entirely"))[0] == 401
    broken = push()
    broken["documents"][0]["size"] = 3
    assert (await send(client, broken, key="k2"))[0] == 422  # not the declared size
    assert (await send(client, push(citizen_id="12345"), key="k3"))[0] == 422
    no_consent = push()
    del no_consent["consent"]
    assert (await send(client, no_consent, key="k4"))[0] == 422
    async with client.post(PATH, json=push()) as r:
        assert r.status == 401  # unsigned


async def test_the_faults_apply(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> None:
    client = await aiohttp_client(create_wallet_simulator(SimulatorOptions(secret=SECRET)))
    async with client.post("/_sim/faults", json={"malformed_rate": 1.0}) as r:
        assert r.status == 200
    raw = orjson.dumps(push())
    headers = {"Idempotency-Key": "m"} | HmacSigner("lienthong-gateway", SECRET)("POST", PATH, raw)
    async with client.post(PATH, data=raw, headers=headers) as r:
        assert r.status == 200 and not (await r.text()).endswith("}")
