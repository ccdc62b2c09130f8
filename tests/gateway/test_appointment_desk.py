"""The simulated booking service agencies' plugins share: slots, signatures, keys, one applicant a slot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from adapters.signing import HmacSigner
from gateway.sdk.appointment_desk import Desk, mount_desk
from gateway.sdk.simulation import SimulatorOptions, new_simulator, refused_json

SECRET = "desk-test-secret-0000001"
SIGN = HmacSigner("lienthong-gateway", SECRET)


def app() -> Any:
    a = new_simulator(SimulatorOptions(secret=SECRET), refused_json)
    mount_desk(a, Desk("land", {"hanoi": "18 Huỳnh Thúc Kháng"}), key_id="lienthong-gateway", secret=SECRET)
    return a


async def call(
    client: TestClient[Any, Any], method: str, path: str, body: Any = None, key: str = ""
) -> tuple[int, Any]:
    raw = orjson.dumps(body) if body is not None else b""
    headers = {"Content-Type": "application/json"} | SIGN(method, path, raw) | ({"Idempotency-Key": key} if key else {})
    async with client.request(method, path, data=raw or None, headers=headers) as r:
        return r.status, await r.json()


def booking(slot: str) -> dict[str, str]:
    return {
        "slot_id": slot,
        "mode": "in_person",
        "office": "hanoi",
        "dossier_code": "D-1",
        "procedure_code": "1.004269",
    }


async def test_slots_bookings_moves_and_cancellations(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await aiohttp_client(app())
    status, body = await call(client, "GET", "/appointments/slots?office=hanoi&from=2030-03-08&days=4")
    assert (
        status == 200 and [s["slot_id"][:14] for s in body["slots"]] == ["hanoi-20300308"] * 5 + ["hanoi-20300311"] * 5
    )
    slot, other = body["slots"][0]["slot_id"], body["slots"][1]["slot_id"]  # 2030-03-08 is a Friday
    status, booked = await call(client, "POST", "/appointments", booking(slot), key="a")
    assert status == 201 and booked["slot"]["slot_id"] == slot
    assert await call(client, "POST", "/appointments", booking(slot), key="a") == (200, booked)
    assert (await call(client, "POST", "/appointments", booking(slot), key="b"))[0] == 409  # taken
    assert (await call(client, "POST", "/appointments", booking(other), key="a"))[0] == 409  # key reused
    assert (await call(client, "POST", "/appointments", booking(other)))[0] == 400  # no key
    ref = booked["agency_ref"]
    status, moved = await call(client, "POST", f"/appointments/{ref}/move", {"slot_id": other}, key="m")
    assert status == 200 and moved["slot"]["slot_id"] == other
    assert (await call(client, "POST", f"/appointments/{ref}/cancel", {}, key="c"))[1]["state"] == "cancelled"
    status, body = await call(client, "GET", "/appointments/slots?office=hanoi&from=2030-03-08&days=1")
    assert {slot, other} <= {s["slot_id"] for s in body["slots"]}


async def test_what_does_not_fit_is_refused(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> None:
    client = await aiohttp_client(app())
    assert (await call(client, "GET", "/appointments/slots?office=hue&from=2030-03-08"))[0] == 422
    assert (await call(client, "GET", "/appointments/slots?office=hanoi&from=soon"))[0] == 422
    assert (await call(client, "GET", "/appointments/slots?office=hanoi&from=2030-03-08&days=90"))[0] == 422
    assert (await call(client, "POST", "/appointments", booking("hanoi-20300309-0800"), key="x"))[0] == 422  # Saturday
    assert (await call(client, "POST", "/appointments", booking("hanoi-20300308-0830"), key="y"))[0] == 422
    async with client.get("/appointments/slots?office=hanoi&from=2030-03-08") as r:
        assert r.status == 401  # unsigned
