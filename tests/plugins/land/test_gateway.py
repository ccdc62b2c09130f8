"""The gateway in-process on tests/plugins/land/conf with the land simulator beside it: routing by province."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.keys import STORE
from gateway.app import create_app
from gateway.config import load_config
from gateway.connector import AgencyUpdate
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import SimulatorOptions
from gateway.store.base import UpdateOutcome, UpdateSource
from plugins.land.demo import demo_bundles
from plugins.land.simulator import create_simulator
from tests.builtin import builtin_registry
from tests.plugins.land.support import first_certificate

CONF = Path(__file__).resolve().parent / "conf"
PASSWORD = "land-gateway-test-pw"
HCM = {"X-Api-Key": DEMO_KEYS["centre-hcm"]}
SHUTDOWN_LIMIT = 20.0  # seconds; the SFTP pollers' own deadlines are 10 s
RESTARTS = 30


@pytest.fixture
async def land_sim(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> dict[str, Any]:
    settings = {"root": str(tmp_path / "sftp"), "scan_interval": 0.02, "answer_gap": 0.02, "auto_pay_after": 0.1}
    server = await aiohttp_server(
        create_simulator(SimulatorOptions(secret=PASSWORD, processing_delay=0.05, settings=settings))
    )
    async with aiohttp.ClientSession() as s, s.get(str(server.make_url("/_sim/sftp"))) as r:
        info: dict[str, Any] = await r.json()
    return info | {"url": str(server.make_url("")).rstrip("/")}


@pytest.fixture
async def client(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    land_sim: dict[str, Any],
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[TestClient[Any, Any]]:
    port = unused_tcp_port_factory()
    configure(monkeypatch, land_sim, tmp_path, port)
    registry = await asyncio.to_thread(builtin_registry)
    config = await asyncio.to_thread(load_config, CONF, registry)
    c = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await c.start_server()
    try:
        yield c
    finally:
        async with asyncio.timeout(SHUTDOWN_LIMIT):  # a stuck shutdown fails here instead of hanging the run
            await c.close()


def configure(monkeypatch: pytest.MonkeyPatch, land_sim: dict[str, Any], tmp_path: Path, port: int) -> None:
    env = {
        "LAND_SFTP_PORT": str(land_sim["port"]),
        "LAND_SFTP_PASSWORD": PASSWORD,
        "LAND_HOST_KEY": land_sim["public_key"],
        "LIENTHONG_DB": str(tmp_path / "gw.db"),
        "LIENTHONG_PORT": str(port),
        "TAX_URL": "http://127.0.0.1:9",  # no tax service in these tests
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def in_province(sub: dict[str, Any], province: str, commune: str) -> dict[str, Any]:
    sub["jurisdiction"] = {"province": province, "commune": commune}
    for p in sub["form"]["parcels"]:
        p["address"] |= {"province": province, "commune": commune}
    return sub


async def test_a_province_without_a_land_office_is_refused_at_intake(client: TestClient[Any, Any]) -> None:
    sub = in_province(first_certificate(), "48", "20242")  # Đà Nẵng: no office in this configuration
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    assert r.content_type == "application/problem+json"
    assert [e["path"] for e in body["errors"]] == ["jurisdiction.province"]
    assert "province 48" in body["detail"]
    assert body["province"] == "48"
    bundle = demo_bundles(3, 1, province="48")[0]
    async with client.post("/v1/bundles", json=bundle, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    assert {e["path"] for e in body["errors"]} == {"jurisdiction.province"}


async def test_a_centre_in_one_province_reaches_the_office_of_the_parcel(client: TestClient[Any, Any]) -> None:
    sub = in_province(first_certificate(), "01", "00070")  # received in TP HCM, the parcel is in Hà Nội
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        created = await r.json()
        assert r.status == 202, created
    assert created["agency"] == "land"
    d = await wait_status(client, created["id"], 9)
    assert d["endpoint"] == "hanoi"
    assert [e["status"] for e in (await events(client, created["id"]))] == [2, 4, 4, 6, 9]
    assert d["agency_ref"].startswith("VPDK01-")
    async with client.get(f"/v1/dossiers/{created['id']}/results/0", headers=HCM) as r:
        assert r.status == 200
        pdf = await r.read()
    assert pdf.startswith(b"%PDF") and d["results"][0]["component_code"] == "GCN"


async def sim_json(land_sim: dict[str, Any], path: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(land_sim["url"] + path) as r:
        return await r.json()


@pytest.mark.parametrize(
    ("centre", "province", "commune", "office"),
    [
        ("centre-hcm", "01", "00070", "hanoi"),
        ("centre-hanoi", "79", "26506", "hcm"),
        ("centre-danang", "79", "26506", "hcm"),
    ],
)
async def test_the_parcels_decide_the_office_whatever_centre_received_the_dossier(
    client: TestClient[Any, Any], land_sim: dict[str, Any], centre: str, province: str, commune: str, office: str
) -> None:
    sub = in_province(first_certificate(), province, commune)
    async with client.post("/v1/dossiers", json=sub, headers={"X-Api-Key": DEMO_KEYS[centre]}) as r:
        created = await r.json()
        assert r.status == 202, created
    d = await wait_status(client, created["id"], 9, who=centre)
    assert (d["agency"], d["endpoint"]) == ("land", office)
    [taken] = await sim_json(land_sim, "/_sim/received")
    assert (taken["office"], taken["province"]) == (office, province)
    assert {t["component"] for t in taken["documents"]} == {"DON_DK", "GT_SDD"} and not taken["document_problems"]
    assert (await sim_json(land_sim, "/_sim/stats"))["documents_ok"] == 1


async def nothing_accepted(client: TestClient[Any, Any]) -> None:
    async with client.get("/v1/dossiers", headers=HCM) as r:
        assert (await r.json())["items"] == []


async def test_a_declared_jurisdiction_the_parcels_contradict_is_refused(client: TestClient[Any, Any]) -> None:
    sub = in_province(first_certificate(), "01", "00070")
    sub["jurisdiction"] = {"province": "79"}  # the centre says TP HCM; the parcel lies in Hà Nội
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    assert r.content_type == "application/problem+json"
    assert body["type"] == "urn:lienthong:problem:validation-failed"
    [error] = body["errors"]
    assert (error["path"], error["code"]) == ("jurisdiction.province", "jurisdiction_disagrees")
    assert "province 01 (Thành phố Hà Nội) (form.parcels.0.address)" in error["message"], error
    sub["jurisdiction"] = {"province": "01", "commune": "00004"}  # Hà Nội, but another commune than the parcel's
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("jurisdiction.commune", "jurisdiction_disagrees")]
    await nothing_accepted(client)


async def test_parcels_in_two_provinces_are_refused(client: TestClient[Any, Any]) -> None:
    sub = in_province(first_certificate(), "01", "00070")
    second = {**sub["form"]["parcels"][0], "parcel_no": "77"}
    second["address"] = {**second["address"], "province": "79", "commune": "26506"}
    sub["form"]["parcels"].append(second)
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    [error] = body["errors"]
    assert (error["path"], error["code"]) == ("form.parcels.1.address.province", "places_in_two_provinces")
    assert "one dossier per province" in error["message"]
    bundle = demo_bundles(4, 1, province="01")[0]
    bundle["forms"]["declaration"]["parcels"].append(second)
    async with client.post("/v1/bundles", json=bundle, headers=HCM) as r:
        body = await r.json()
        assert r.status == 422, body
    assert [e["path"] for e in body["errors"]] == ["forms.declaration.parcels.1.address.province"]
    await nothing_accepted(client)


async def test_answers_the_store_cannot_take_yet_wait_in_order_and_are_applied_once(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.server.app[STORE]
    real = store.apply_update
    failed: list[str] = []

    async def busy_on_the_obligation(update: AgencyUpdate, *, source: UpdateSource) -> UpdateOutcome:
        if update.status == 6 and len(failed) < 5:  # the database is locked while the obligation arrives
            failed.append(update.event_id)
            raise sqlite3.OperationalError("database is locked")
        return await real(update, source=source)

    monkeypatch.setattr(store, "apply_update", busy_on_the_obligation)
    sub = in_province(first_certificate(), "01", "00070")
    async with client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        created = await r.json()
        assert r.status == 202, created
    d = await wait_status(client, created["id"], 9)
    # The certificate came while the obligation kept failing: it waited behind it, nothing was lost or doubled.
    assert len(failed) == 5 and len(set(failed)) == 1
    assert [e["status"] for e in (await events(client, created["id"]))] == [2, 4, 4, 6, 9]
    assert len(d["results"]) == 1


async def wait_status(
    client: TestClient[Any, Any], did: str, status: int, timeout: float = 15.0, who: str = "centre-hcm"
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    d: dict[str, Any] = {}
    while time.monotonic() < deadline:
        async with client.get(f"/v1/dossiers/{did}", headers={"X-Api-Key": DEMO_KEYS[who]}) as r:
            d = await r.json()
        if d["status"] == status:
            return d
        await asyncio.sleep(0.05)
    raise AssertionError(f"dossier {did} stayed at {d.get('status')}: {d.get('delivery')}")


async def events(client: TestClient[Any, Any], did: str) -> list[dict[str, Any]]:
    async with client.get(f"/v1/dossiers/{did}/events", headers=HCM) as r:
        body: dict[str, Any] = await r.json()
    return list(body["events"])


async def test_the_gateway_stops_promptly_while_its_pollers_connect(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    land_sim: dict[str, Any],
    unused_tcp_port_factory: Callable[[], int],
) -> None:
    # Stopped right after start-up, the two land pollers are in the middle of their SSH handshake: a
    # cancellation swallowed there (Python 3.11's wait_for inside asyncssh.connect) used to leave a
    # poller running and the shutdown waiting for it forever.
    registry = await asyncio.to_thread(builtin_registry)
    for i in range(RESTARTS):
        port = unused_tcp_port_factory()
        configure(monkeypatch, land_sim, tmp_path / f"run{i}", port)
        config = await asyncio.to_thread(load_config, CONF, registry)
        app = create_app(config, registry)
        c = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await c.start_server()
        await asyncio.sleep(0.001 * (i % 20))  # spread over the SSH handshake
        started = time.monotonic()
        async with asyncio.timeout(SHUTDOWN_LIMIT):
            await c.close()
        assert time.monotonic() - started < 5, f"shutdown {i} took {time.monotonic() - started:.1f}s"
