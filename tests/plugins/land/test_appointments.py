"""Referral and appointments: a first-certificate dossier (a referred procedure) books a slot at the land
office's booking service (the land simulator), moves it, cancels it; one key books once; reminders are
events the centre reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import load_config
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import SimulatorOptions
from plugins.land.simulator import create_simulator
from tests.builtin import builtin_registry
from tests.plugins.land.support import first_certificate, transfer

CONF = Path(__file__).resolve().parent / "conf"
PASSWORD = "land-gateway-test-pw"
DESK_SECRET = "land-desk-secret-for-tests"
HANOI = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
HCM = {"X-Api-Key": DEMO_KEYS["centre-hcm"]}


@pytest.fixture
async def land_sim(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> dict[str, Any]:
    settings = {"root": str(tmp_path / "sftp"), "scan_interval": 0.02, "appointments_secret": DESK_SECRET}
    server = await aiohttp_server(
        create_simulator(SimulatorOptions(secret=PASSWORD, processing_delay=30, settings=settings))
    )
    async with aiohttp.ClientSession() as s, s.get(str(server.make_url("/_sim/sftp"))) as r:
        info: dict[str, Any] = await r.json()
    return info | {"url": str(server.make_url("")).rstrip("/")}


@pytest.fixture
def remind_before() -> str:
    return "86400"


@pytest.fixture
async def client(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    land_sim: dict[str, Any],
    unused_tcp_port_factory: Callable[[], int],
    remind_before: str,
) -> AsyncIterator[TestClient[Any, Any]]:
    port = unused_tcp_port_factory()
    env = {
        "LAND_SFTP_PORT": str(land_sim["port"]),
        "LAND_SFTP_PASSWORD": PASSWORD,
        "LAND_HOST_KEY": land_sim["public_key"],
        "LAND_APPOINTMENTS_URL": land_sim["url"],
        "LAND_APPOINTMENTS_SECRET": DESK_SECRET,
        "LIENTHONG_DB": str(tmp_path / "gw.db"),
        "LIENTHONG_PORT": str(port),
        "TAX_URL": "http://127.0.0.1:9",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    conf = tmp_path / "conf"
    await asyncio.to_thread(_copy_conf, conf, remind_before)
    registry = await asyncio.to_thread(builtin_registry)
    config = await asyncio.to_thread(load_config, conf, registry)
    c = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


def _copy_conf(to: Path, remind_before: str) -> None:
    import shutil

    shutil.copytree(CONF, to)
    with (to / "gateway.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[appointments]\nremind_before = {remind_before}\nsweep_interval = 0.1\n")


def in_hanoi(sub: dict[str, Any]) -> dict[str, Any]:
    sub["jurisdiction"] = {"province": "01", "commune": "00070"}
    for p in sub["form"]["parcels"]:
        p["address"] |= {"province": "01", "commune": "00070"}
    return sub


async def submitted(client: TestClient[Any, Any], sub: dict[str, Any]) -> dict[str, Any]:
    async with client.post("/v1/dossiers", json=sub, headers=HANOI) as r:
        created: dict[str, Any] = await r.json()
        assert r.status == 202, created
    return created


async def free_slots(client: TestClient[Any, Any], code: str) -> list[dict[str, Any]]:
    async with client.get(f"/v1/dossiers/{code}/appointment-slots?from=2030-03-04&days=3", headers=HANOI) as r:
        body = await r.json()
        assert r.status == 200, body
    items: list[dict[str, Any]] = body["items"]
    return items


async def desk(land_sim: dict[str, Any]) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(land_sim["url"] + "/_sim/appointments") as r:
        out: list[dict[str, Any]] = await r.json()
        return out


async def test_a_referred_land_dossier_books_moves_and_cancels_a_slot(
    client: TestClient[Any, Any], land_sim: dict[str, Any]
) -> None:
    d = await submitted(client, in_hanoi(first_certificate()))
    slots = await free_slots(client, d["code"])
    assert len(slots) == 15  # 2030-03-04 is a Monday: three working days of five slots
    assert slots[0]["slot_id"] == "hanoi-20300304-0800" and "Hà Nội" in slots[0]["place"]
    first, second = slots[0]["slot_id"], slots[3]["slot_id"]
    body = {"slot_id": first, "mode": "online"}
    async with client.post(
        f"/v1/dossiers/{d['code']}/appointments", json=body, headers=HANOI | {"Idempotency-Key": "b-1"}
    ) as r:
        booked = await r.json()
        assert r.status == 201, booked
    assert booked["state"] == "booked" and booked["slot"]["slot_id"] == first
    assert booked["meeting_url"].startswith("https://") and booked["agency_ref"].startswith("LH-")
    assert first not in {s["slot_id"] for s in await free_slots(client, d["code"])}  # the office holds it

    async with client.post(f"/v1/appointments/{booked['id']}/move", json={"slot_id": second}, headers=HANOI) as r:
        moved = await r.json()
        assert r.status == 200, moved
    assert moved["slot"]["slot_id"] == second and moved["agency_ref"] == booked["agency_ref"]
    held = {s["slot_id"] for s in await free_slots(client, d["code"])}
    assert first in held and second not in held
    [at_office] = await desk(land_sim)
    assert at_office["slot_id"] == second and at_office["dossier_code"] == d["code"]

    async with client.post(f"/v1/appointments/{booked['id']}/cancel", headers=HANOI) as r:
        cancelled = await r.json()
        assert r.status == 200, cancelled
    assert cancelled["state"] == "cancelled"
    assert (await desk(land_sim))[0]["state"] == "cancelled"
    assert second in {s["slot_id"] for s in await free_slots(client, d["code"])}

    async with client.get("/v1/appointments/events", headers=HANOI) as r:
        events = (await r.json())["items"]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["booked", "moved", "cancelled"] or kinds == ["booked", "reminder", "moved", "cancelled"]
    async with client.get(f"/v1/appointments?dossier={d['code']}", headers=HANOI) as r:
        listed = (await r.json())["items"]
    assert [a["id"] for a in listed] == [booked["id"]]
    async with client.get("/v1/appointments", headers=HCM) as r:
        assert (await r.json())["items"] == []  # listed per centre: another centre sees none of them


async def test_one_key_books_once_even_when_sent_together(
    client: TestClient[Any, Any], land_sim: dict[str, Any]
) -> None:
    d = await submitted(client, in_hanoi(first_certificate()))
    slot = (await free_slots(client, d["code"]))[1]["slot_id"]
    headers = HANOI | {"Idempotency-Key": "same-key"}

    async def book() -> tuple[int, dict[str, Any]]:
        async with client.post(f"/v1/dossiers/{d['code']}/appointments", json={"slot_id": slot}, headers=headers) as r:
            return r.status, await r.json()

    first = await book()
    again = await asyncio.gather(book(), book())
    assert first[0] == 201 and {s for s, _ in again} == {200}
    assert {b["id"] for _, b in (first, *again)} == {first[1]["id"]}
    assert len(await desk(land_sim)) == 1  # the office holds one booking
    async with client.get("/v1/appointments", headers=HANOI) as r:
        assert len((await r.json())["items"]) == 1
    other = {"slot_id": (await free_slots(client, d["code"]))[0]["slot_id"]}
    async with client.post(f"/v1/dossiers/{d['code']}/appointments", json=other, headers=headers) as r:
        problem = await r.json()
        assert r.status == 409, problem  # the key names another booking


async def test_a_taken_slot_and_a_procedure_that_is_not_referred_are_refused(
    client: TestClient[Any, Any], land_sim: dict[str, Any]
) -> None:
    d = await submitted(client, in_hanoi(first_certificate()))
    slot = (await free_slots(client, d["code"]))[0]["slot_id"]
    url = f"/v1/dossiers/{d['code']}/appointments"
    async with client.post(url, json={"slot_id": slot}, headers=HANOI | {"Idempotency-Key": "a"}) as r:
        assert r.status == 201
    async with client.post(url, json={"slot_id": slot}, headers=HANOI | {"Idempotency-Key": "b"}) as r:
        problem = await r.json()
        assert r.status == 409 and "taken" in problem["detail"], problem
    # The refused key holds nothing: it may book a free slot now.
    free = (await free_slots(client, d["code"]))[0]["slot_id"]
    async with client.post(url, json={"slot_id": free}, headers=HANOI | {"Idempotency-Key": "b"}) as r:
        assert r.status == 201
    async with client.post(url, json={"slot_id": "no slot!"}, headers=HANOI | {"Idempotency-Key": "c"}) as r:
        problem = await r.json()
        assert r.status == 422 and problem["errors"][0]["path"] == "slot_id", problem
    async with client.post(url, json={"slot_id": free}, headers=HANOI) as r:
        assert r.status == 400  # no Idempotency-Key
    t = await submitted(client, in_hanoi(transfer("full")))
    async with client.get(f"/v1/dossiers/{t['code']}/appointment-slots", headers=HANOI) as r:
        problem = await r.json()
        assert r.status == 409 and "not referred" in problem["detail"], problem


async def test_the_office_down_answers_503_and_a_malformed_answer_502(
    client: TestClient[Any, Any], land_sim: dict[str, Any]
) -> None:
    d = await submitted(client, in_hanoi(first_certificate()))
    async with aiohttp.ClientSession() as s:
        async with s.post(land_sim["url"] + "/_sim/faults", json={"malformed_rate": 1.0}) as r:
            assert r.status == 200
        async with client.get(f"/v1/dossiers/{d['code']}/appointment-slots", headers=HANOI) as r:
            problem = await r.json()
            assert r.status == 502 and problem["agency"] == "land", problem
        async with s.post(land_sim["url"] + "/_sim/faults", json={"malformed_rate": 0, "down": True}) as r:
            assert r.status == 200
        async with client.get(f"/v1/dossiers/{d['code']}/appointment-slots", headers=HANOI) as r:
            assert r.status == 502
        async with s.post(land_sim["url"] + "/_sim/faults", json={"down": False}) as r:
            assert r.status == 200
    assert len(await free_slots(client, d["code"])) == 15


@pytest.mark.parametrize("remind_before", ["315360000"])  # ten years: due at once
async def test_the_reminder_is_an_event_the_centre_reads(client: TestClient[Any, Any]) -> None:
    d = await submitted(client, in_hanoi(first_certificate()))
    slot = (await free_slots(client, d["code"]))[2]["slot_id"]
    async with client.post(
        f"/v1/dossiers/{d['code']}/appointments", json={"slot_id": slot}, headers=HANOI | {"Idempotency-Key": "r"}
    ) as r:
        assert r.status == 201
    for _ in range(100):
        async with client.get("/v1/appointments/events?kind=reminder", headers=HANOI) as r:
            reminders = (await r.json())["items"]
        if reminders:
            break
        await asyncio.sleep(0.05)
    [reminder] = reminders
    assert reminder["dossier_code"] == d["code"] and "10:00 ngày 04/03/2030" in reminder["data"]["text"]
    assert "Hà Nội" in reminder["data"]["where"]
