"""Acceptance over loopback: a land-transfer tax declaration goes through the gateway API to the tax
simulator, comes back with its notices (status 6), and once paid the poller finishes it (status 9)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.keys import CONNECTORS, STORE
from gateway.app import create_app
from gateway.config import load_config
from gateway.connector import AgencyUpdate
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import STATS, Faults, SimulatorOptions
from gateway.store.base import UpdateOutcome, UpdateSource
from plugins.tax import wire
from plugins.tax.simulator import LEDGER, SETTINGS, create_simulator
from tests.builtin import builtin_registry
from tests.plugins.tax.conftest import make_dossier

CONF = Path(__file__).resolve().parent / "conf"


@dataclass
class Harness:
    client: TestClient[Any, Any]
    app: web.Application
    tax: TestServer

    def headers(self, who: str = "centre-hanoi") -> dict[str, str]:
        return {"X-Api-Key": DEMO_KEYS[who]}

    async def sim(self, method: str, path: str, **kw: Any) -> Any:
        async with self.client.session.request(method, str(self.tax.make_url(path)), **kw) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post("/v1/dossiers", json=body, headers=self.headers())
        assert resp.status == 202, await resp.text()
        accepted: dict[str, Any] = await resp.json()
        return accepted

    async def wait_status(self, did: str, status: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body: dict[str, Any] = await (await self.client.get(f"/v1/dossiers/{did}", headers=self.headers())).json()
            if body["status"] == status or asyncio.get_running_loop().time() > deadline:
                return body
            await asyncio.sleep(0.05)

    async def dossier(self, did: str) -> dict[str, Any]:
        body: dict[str, Any] = await (await self.client.get(f"/v1/dossiers/{did}", headers=self.headers())).json()
        return body

    async def events(self, did: str) -> list[dict[str, Any]]:
        body = await (await self.client.get(f"/v1/dossiers/{did}/events", headers=self.headers())).json()
        events: list[dict[str, Any]] = body["events"]
        return events


@pytest.fixture(scope="module")
def registry() -> Registry:
    return builtin_registry()


@pytest.fixture
def tax_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
def tax_timeout() -> float:
    return 5.0


@pytest.fixture
async def harness(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
    tax_settings: dict[str, Any],
    tax_timeout: float,
) -> AsyncIterator[Harness]:
    tax = TestServer(create_simulator(SimulatorOptions(faults=Faults(), settings=tax_settings)), host="127.0.0.1")
    await tax.start_server()
    gw_port = unused_tcp_port_factory()
    monkeypatch.setenv("TAX_URL", str(tax.make_url("")).rstrip("/"))
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(gw_port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("LIENTHONG_PROBE_AFTER", "0.2")  # an agency back is found soon
    monkeypatch.setenv("LIENTHONG_PROBE_MAX", "1")
    monkeypatch.setenv("TAX_TIMEOUT", str(tax_timeout))
    config = await asyncio.to_thread(load_config, CONF, registry)
    app = create_app(config, registry)
    client = TestClient(TestServer(app, host="127.0.0.1", port=gw_port))
    await client.start_server()
    try:
        yield Harness(client, app, tax)
    finally:
        async with asyncio.timeout(20):  # a stuck shutdown fails here instead of hanging the run
            await client.close()
            await tax.close()


async def test_notices_then_payment_finish_the_dossier(harness: Harness, sub: dict[str, Any]) -> None:
    accepted = await harness.submit(sub)
    did = accepted["id"]
    pending = await harness.wait_status(did, 6)
    assert pending["status"] == 6, pending
    assert pending["agency_ref"].startswith("TK-")
    notices_event = (await harness.events(did))[-1]
    price = sub["form"]["declared_price_vnd"]
    fee, pit = round(price * 0.005), round(price * 0.02)
    assert [(n["kind"], n["amount_vnd"]) for n in notices_event["data"]["notices"]] == [
        ("registration_fee", fee),
        ("personal_income_tax", pit),
    ]
    assert notices_event["data"]["total_vnd"] == fee + pit
    assert notices_event["data"]["outputs"]["total_vnd"] == fee + pit
    assert notices_event["actor"] == "agency:tax"

    await asyncio.sleep(0.3)  # the poller runs meanwhile: nothing is paid, nothing changes
    assert (await harness.wait_status(did, 6, timeout=0))["status"] == 6

    paid = await harness.sim("POST", "/_sim/pay", json={"dossier_code": accepted["code"]})
    assert paid["settled"] is True
    done = await harness.wait_status(did, 9)
    assert done["status"] == 9, done
    assert [e["status"] for e in await harness.events(did)] == [2, 4, 6, 9]
    finished = (await harness.events(did))[-1]
    receipts = finished["data"]["outputs"]["tax_receipts"]
    assert [r["notice_number"] for r in receipts] == notices_event["data"]["outputs"]["notice_numbers"]
    assert all(r["receipt_number"].startswith("BL-") for r in receipts)
    [result] = done["results"]
    assert (result["component_code"], result["media_type"]) == ("KQ_NVTC", "application/pdf")
    download = await harness.client.get(f"/v1/dossiers/{did}/results/0", headers=harness.headers())
    assert download.status == 200
    assert (await download.read()).startswith(b"%PDF-1.4")


@pytest.mark.parametrize("tax_settings", [{"auto_pay_after": 0.1}])
async def test_many_dossiers_paid_by_themselves(harness: Harness, subs: list[dict[str, Any]]) -> None:
    ids = [(await harness.submit(s))["id"] for s in subs[:6]]
    finals = [await harness.wait_status(did, 9) for did in ids]
    assert [f["status"] for f in finals] == [9] * 6
    stats = await harness.sim("GET", "/_sim/stats")
    assert (stats["declarations"], stats.get("duplicates", 0)) == (6, 0)


async def test_tax_outage_delays_but_loses_nothing(harness: Harness, sub: dict[str, Any]) -> None:
    await harness.sim("POST", "/_sim/faults", json={"down": True})
    accepted = await harness.submit(sub)
    await asyncio.sleep(0.3)
    assert (await harness.wait_status(accepted["id"], 6, timeout=0))["status"] == 2
    await harness.sim("POST", "/_sim/faults", json={"down": False})
    assert (await harness.wait_status(accepted["id"], 6))["status"] == 6
    await harness.sim("POST", "/_sim/pay", json={"dossier_code": accepted["code"]})
    assert (await harness.wait_status(accepted["id"], 9))["status"] == 9


@pytest.mark.parametrize("tax_timeout", [0.3])
async def test_a_tax_service_too_slow_to_answer_is_retried_until_it_does(harness: Harness, sub: dict[str, Any]) -> None:
    await harness.sim("POST", "/_sim/faults", json={"latency_ms": 1000})
    accepted = await harness.submit(sub)
    deadline = asyncio.get_running_loop().time() + 10
    while (delivery := (await harness.dossier(accepted["id"]))["delivery"])["attempts"] < 2:
        assert asyncio.get_running_loop().time() < deadline, delivery
        await asyncio.sleep(0.05)
    assert delivery["state"] in ("pending", "in_flight") and "AgencyTimeout" in delivery["last_error"], delivery
    await harness.sim("POST", "/_sim/faults", json={"latency_ms": 0})
    assert (await harness.wait_status(accepted["id"], 6))["status"] == 6
    # Attempts that timed out may have reached the service: the stable request id made them one declaration.
    assert len(await harness.sim("GET", "/_sim/declarations")) == 1
    assert [e["status"] for e in await harness.events(accepted["id"])] == [2, 4, 6]


async def test_a_permanent_fault_is_not_retried(harness: Harness, sub: dict[str, Any]) -> None:
    harness.tax.app[SETTINGS].client_fault_rate = 1.0
    accepted = await harness.submit(sub)
    deadline = asyncio.get_running_loop().time() + 10
    while (delivery := (await harness.dossier(accepted["id"]))["delivery"])["state"] != "dead":
        assert asyncio.get_running_loop().time() < deadline, delivery
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # retries run every ~0.05 s here: none may come
    delivery = (await harness.dossier(accepted["id"]))["delivery"]
    assert delivery["attempts"] == 1 and "Client.RequestRefused" in delivery["last_error"], delivery
    assert harness.tax.app[STATS]["SubmitLandTransferDeclaration"] == 1
    assert (await harness.dossier(accepted["id"]))["status"] == 2


async def test_form_is_checked_at_intake(harness: Harness, sub: dict[str, Any]) -> None:
    body = {**sub, "form": {**sub["form"], "declared_price_vnd": 0}}
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 422
    problem = await resp.json()
    assert [e["path"] for e in problem["errors"]] == ["form.declared_price_vnd"]
    missing = {**sub, "attachments": sub["attachments"][:1]}
    resp = await harness.client.post("/v1/dossiers", json=missing, headers=harness.headers())
    assert resp.status == 422


async def test_lookups_through_the_api(harness: Harness, sub: dict[str, Any]) -> None:
    seller = sub["form"]["transferor"]
    resp = await harness.client.post(
        "/v1/lookups/taxpayer", json={"personal_id": seller["personal_id"]}, headers=harness.headers()
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["name"] == seller["full_name"]
    unknown = await harness.client.post(
        "/v1/lookups/taxpayer", json={"tax_code": "0100000001"}, headers=harness.headers()
    )
    assert (await unknown.json())["found"] is False
    accepted = await harness.submit(sub)
    await harness.wait_status(accepted["id"], 6)
    declared = await harness.sim("GET", "/_sim/declarations")
    number = declared[0]["notices"][0]["notice_number"]
    notice = await harness.client.post(
        "/v1/lookups/tax-notice", json={"notice_number": number}, headers=harness.headers()
    )
    assert (await notice.json())["status"] == "unpaid"
    listed = await (await harness.client.get("/v1/lookups", headers=harness.headers())).json()
    assert [(i["name"], i["agency"]) for i in listed["items"]] == [("taxpayer", "tax"), ("tax-notice", "tax")]


async def test_an_unknown_dossier_in_the_event_log_does_not_hide_the_next(
    harness: Harness, subs: list[dict[str, Any]], sub: dict[str, Any]
) -> None:
    accepted = await harness.submit(sub)
    await harness.wait_status(accepted["id"], 6)
    # A declaration made by another channel (the land office's own system) settles in the same batch.
    stranger = make_dossier(subs[1], code="000.00.01.H26-261120-9999")
    ledger = harness.tax.app[LEDGER]
    ledger.declare(wire.declaration_request(stranger, f"{stranger.id}:submit"))
    ledger.pay_dossier(stranger.code)
    ledger.pay_dossier(accepted["code"])
    assert (await harness.wait_status(accepted["id"], 9, timeout=2))["status"] == 9


async def test_a_store_failure_while_applying_a_poll_loses_nothing(
    harness: Harness, sub: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = await harness.submit(sub)
    await harness.wait_status(accepted["id"], 6)
    store = harness.app[STORE]
    real = store.apply_update
    failed: list[str] = []

    async def busy_three_times(update: AgencyUpdate, *, source: UpdateSource) -> UpdateOutcome:
        if len(failed) < 3:  # the database is briefly locked by another writer
            failed.append(update.event_id)
            raise sqlite3.OperationalError("database is locked")
        return await real(update, source=source)

    monkeypatch.setattr(store, "apply_update", busy_three_times)
    await harness.sim("POST", "/_sim/pay", json={"dossier_code": accepted["code"]})
    done = await harness.wait_status(accepted["id"], 9)
    assert done["status"] == 9, done
    assert len(failed) == 3 and len(set(failed)) == 1 and failed[0].endswith("-SETTLED")  # the same event, re-read
    assert [e["status"] for e in await harness.events(accepted["id"])] == [2, 4, 6, 9]  # applied once


async def test_the_event_cursor_survives_a_gateway_restart(
    harness: Harness, registry: Registry, subs: list[dict[str, Any]], sub: dict[str, Any]
) -> None:
    accepted = await harness.submit(sub)
    await harness.wait_status(accepted["id"], 6)
    await harness.sim("POST", "/_sim/pay", json={"dossier_code": accepted["code"]})
    assert (await harness.wait_status(accepted["id"], 9))["status"] == 9
    store = harness.app[STORE]
    async with asyncio.timeout(10):  # acknowledged once applied: PAID, PAID, SETTLED
        while await store.connector_state("tax", "national", "event_cursor") != 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await harness.client.close()  # the gateway stops; the tax service goes on
    app = create_app(await asyncio.to_thread(load_config, CONF, registry), registry)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        assert app[CONNECTORS][("tax", "national")].cursor == 3  # it used to start again at 0
        again = Harness(client, app, harness.tax)
        second = await again.submit(subs[1] if subs[1] is not sub else subs[2])
        await again.wait_status(second["id"], 6)
        await again.sim("POST", "/_sim/pay", json={"dossier_code": second["code"]})
        assert (await again.wait_status(second["id"], 9))["status"] == 9
    finally:
        await client.close()
