"""Online payment of a land transfer's tax notices through the national payment platform's simulator: the
payment request, the payment, a lost callback found by reconciliation, the tax step going on, the portal
record saying paid online, the receipt kept."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.signing import HmacSigner
from contracts.portal import PortalDossier
from gateway.app import create_app
from gateway.config import load_config
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.payment_sim import create_payment_simulator
from gateway.sdk.simulation import SimulatorOptions
from plugins.land.demo import demo_bundles
from plugins.land.simulator import create_simulator as land_simulator
from plugins.tax.simulator import create_simulator as tax_simulator
from tests.builtin import builtin_registry
from tests.plugins.land.support import first_certificate

CONF = Path(__file__).resolve().parent / "conf"
PASSWORD = "land-gateway-test-pw"
PAY_SECRET = "payment-platform-test-secret-01"
HCM = {"X-Api-Key": DEMO_KEYS["centre-hcm"]}
PORTAL = {"X-Api-Key": DEMO_KEYS["portal"]}


@dataclass
class Run:
    client: TestClient[Any, Any]
    pay: str  # the payment platform simulator's URL
    tax: str


@pytest.fixture
async def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[Run]:
    land_settings = {"root": str(tmp_path / "sftp"), "scan_interval": 0.02, "answer_gap": 0.02, "auto_pay_after": 0.1}
    land = await aiohttp_server(
        land_simulator(SimulatorOptions(secret=PASSWORD, processing_delay=0.05, settings=land_settings))
    )
    tax = await aiohttp_server(tax_simulator(SimulatorOptions(processing_delay=0.05)))  # nobody pays by itself
    tax_url = str(tax.make_url("")).rstrip("/")
    pay_settings = {"settle_urls": {"tax": f"{tax_url}/_sim/pay"}, "merchants": ["LIENTHONG"]}
    pay = await aiohttp_server(create_payment_simulator(SimulatorOptions(secret=PAY_SECRET, settings=pay_settings)))
    async with aiohttp.ClientSession() as s, s.get(str(land.make_url("/_sim/sftp"))) as r:
        sftp = await r.json()
    port = unused_tcp_port_factory()
    env = {
        "LAND_SFTP_PORT": str(sftp["port"]),
        "LAND_SFTP_PASSWORD": PASSWORD,
        "LAND_HOST_KEY": sftp["public_key"],
        "LIENTHONG_DB": str(tmp_path / "gw.db"),
        "LIENTHONG_PORT": str(port),
        "TAX_URL": tax_url,
        "PAY_URL": str(pay.make_url("")).rstrip("/"),
        "PAY_SECRET": PAY_SECRET,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    conf = tmp_path / "conf"
    await asyncio.to_thread(shutil.copytree, CONF, conf)
    extra = (
        '\n[payments]\nurl = "${PAY_URL}"\nmerchant_code = "LIENTHONG"\nsecret = "${PAY_SECRET}"\n'
        "reconcile_after = 1.0\nreconcile_interval = 0.2\n"
    )
    await asyncio.to_thread(_append, conf / "gateway.toml", extra)
    # The first certificate's fee, as an operator sets it from the province's tariff.
    fee = 'code = "1.004269"  # cấp Giấy chứng nhận lần đầu'
    text = (await asyncio.to_thread((conf / "procedures.toml").read_text, encoding="utf-8")).replace(
        fee, fee + "\nfees_vnd = 500000"
    )
    await asyncio.to_thread((conf / "procedures.toml").write_text, text, encoding="utf-8")
    registry = await asyncio.to_thread(builtin_registry)
    config = await asyncio.to_thread(load_config, conf, registry)
    client = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield Run(client, env["PAY_URL"], tax_url)
    finally:
        await client.close()


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


async def get(run: Run, path: str, headers: dict[str, str] = HCM) -> Any:
    async with run.client.get(path, headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def sim(url: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as s:
        call = s.post(url, json=body) if body is not None else s.get(url)
        async with call as r:
            assert r.status == 200, await r.text()
            return await r.json()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := await check()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


async def tax_step_waiting(run: Run) -> tuple[str, str]:
    bundle = demo_bundles(11, 1, province="01")[0]
    async with run.client.post("/v1/bundles", json=bundle, headers=HCM) as r:
        created = await r.json()
        assert r.status == 202, created

    async def tax_at_6() -> str | None:
        steps = {s["step"]: s for s in (await get(run, f"/v1/bundles/{created['id']}"))["steps"]}
        return steps["tax"]["dossier_id"] if steps["tax"]["status"] == 6 else None

    return created["id"], await until(tax_at_6)


async def request_payment(run: Run, dossier: str, key: str) -> tuple[int, dict[str, Any]]:
    async with run.client.post(
        f"/v1/dossiers/{dossier}/payments",
        json={"return_url": "https://dichvucong.example.vn/ho-so"},
        headers=HCM | {"Idempotency-Key": key},
    ) as r:
        return r.status, await r.json()


async def test_a_paid_land_transfer_with_a_lost_callback_is_found_by_reconciliation(run: Run) -> None:
    await sim(f"{run.pay}/_sim/payments", {"drop_callbacks": True})
    bundle, tax = await tax_step_waiting(run)
    notices = [e for e in (await get(run, f"/v1/dossiers/{tax}/events"))["events"] if e["status"] == 6][-1]
    status, payment = await request_payment(run, tax, "pay-1")
    assert status == 201, payment
    assert payment["amount_vnd"] == notices["data"]["total_vnd"] > 0
    assert [b["code"] for b in payment["bills"]] == [n["notice_number"] for n in notices["data"]["notices"]]
    assert payment["state"] == "pending" and payment["qr_data"].startswith("000201")
    again = await request_payment(run, tax, "pay-1")
    assert again[0] == 200 and again[1]["id"] == payment["id"]  # one payment per key
    async with aiohttp.ClientSession() as s, s.get(payment["pay_url"]) as r:
        assert r.status == 200 and payment["transaction_id"] in await r.text()  # the payer's redirect

    paid = await sim(f"{run.pay}/_sim/pay", {"order_id": payment["id"]})
    assert paid["state"] == "PAID" and paid["callback"] == "dropped"

    async def recorded() -> dict[str, Any] | None:
        p: dict[str, Any] = await get(run, f"/v1/payments/{payment['id']}")
        return p if p["state"] == "paid" else None

    done = await until(recorded)
    assert done["bank_ref"] == paid["bank_ref"] and done["receipt"]["number"] == paid["receipt"]["number"]
    stats = await sim(f"{run.pay}/_sim/stats")
    assert stats["callbacks_dropped"] == 1 and stats["queries"] >= 1 and stats["payments_created"] == 1
    async with run.client.get(f"/v1/payments/{payment['id']}/receipt", headers=HCM) as r:
        receipt = await r.read()
        assert r.status == 200 and r.content_type == "application/pdf"
    assert receipt.startswith(b"%PDF") and hashlib.sha256(receipt).hexdigest() == done["receipt"]["sha256"]

    async def completed() -> dict[str, Any] | None:
        view: dict[str, Any] = await get(run, f"/v1/bundles/{bundle}")
        return view if view["state"] == "completed" else None

    view = await until(completed)  # the treasury credited the tax office: the tax step, then the land one
    assert [s["status"] for s in view["steps"]] == [9, 9, 9]
    events = (await get(run, f"/v1/dossiers/{tax}/events"))["events"]
    [event] = [e for e in events if "payment" in e["data"]]
    assert event["data"]["payment"]["learnt_by"] == "reconciliation" and event["status"] in (6, 9)
    assert [e["status"] for e in events][-1] == 9
    feed = (await get(run, "/v1/feed?after=0&limit=1000", PORTAL))["items"]
    code = (await get(run, f"/v1/dossiers/{tax}"))["code"]
    record = PortalDossier.model_validate([i for i in feed if i["dossier"]["MaHoSo"] == code][-1]["dossier"])
    assert record.DuocThanhToanTrucTuyen == "1" and record.TrangThaiHoSo == "9"


async def test_the_callback_records_the_payment_once(run: Run) -> None:
    _, tax = await tax_step_waiting(run)
    status, payment = await request_payment(run, tax, "pay-cb")
    assert status == 201
    await sim(f"{run.pay}/_sim/pay", {"order_id": payment["id"]})
    await sim(f"{run.pay}/_sim/pay", {"order_id": payment["id"]})  # paid already: nothing new

    async def recorded() -> dict[str, Any] | None:
        p: dict[str, Any] = await get(run, f"/v1/payments/{payment['id']}")
        return p if p["state"] == "paid" else None

    await until(recorded)
    await asyncio.sleep(1.5)  # past reconcile_after: the reconciliation finds it paid, and records nothing more
    events = (await get(run, f"/v1/dossiers/{tax}/events"))["events"]
    [event] = [e for e in events if "payment" in e["data"]]
    assert event["data"]["payment"]["learnt_by"] == "callback"
    listed = (await get(run, f"/v1/payments?dossier={tax}"))["items"]
    assert [p["id"] for p in listed] == [payment["id"]]
    # A signed callback that does not match the payment (another amount) changes nothing: 409.
    paid = (await sim(f"{run.pay}/_sim/payments"))["orders"][0]
    raw = orjson.dumps(paid | {"amount": paid["amount"] + 1})
    headers = {"Content-Type": "application/json"} | HmacSigner("lienthong-gateway", PAY_SECRET)(
        "POST", "/v1/payments/callback", raw
    )
    async with run.client.post("/v1/payments/callback", data=raw, headers=headers) as r:
        assert r.status == 409, await r.text()


async def test_a_forged_callback_is_refused_and_nothing_to_pay_is_409(run: Run) -> None:
    body = {"transaction_id": "PGX", "order_id": "x", "state": "PAID", "amount": 1}
    async with run.client.post("/v1/payments/callback", json=body) as r:
        problem = await r.json()
        assert r.status == 401, problem
    first = demo_bundles(3, 1, province="01")[0]
    async with run.client.post("/v1/bundles", json=first, headers=HCM) as r:
        created = await r.json()
    declaration = created["steps"][0]["dossier_id"] if "steps" in created else None
    if declaration is None:
        declaration = (await get(run, f"/v1/bundles/{created['id']}"))["steps"][0]["dossier_id"]
    status, problem = await request_payment(run, declaration, "nothing")
    assert status == 409 and "nothing to pay" in problem["detail"], problem


async def test_the_platform_down_answers_502_and_the_same_key_goes_on_once_it_is_back(run: Run) -> None:
    _, tax = await tax_step_waiting(run)
    await sim(f"{run.pay}/_sim/faults", {"down": True})
    status, problem = await request_payment(run, tax, "pay-down")
    assert status == 502, problem
    await sim(f"{run.pay}/_sim/faults", {"down": False})
    status, payment = await request_payment(run, tax, "pay-down")
    assert status == 201 and payment["state"] == "pending"
    assert (await sim(f"{run.pay}/_sim/stats"))["payments_created"] == 1


async def test_a_procedures_fee_from_the_catalog_is_paid_and_called_back(run: Run) -> None:
    sub = first_certificate(2)
    sub["jurisdiction"] = {"province": "01", "commune": "00070"}
    for p in sub["form"]["parcels"]:
        p["address"] |= sub["jurisdiction"]
    async with run.client.post("/v1/dossiers", json=sub, headers=HCM) as r:
        created = await r.json()
        assert r.status == 202, created
    status, payment = await request_payment(run, created["id"], "fee-1")
    assert status == 201, payment
    assert payment["amount_vnd"] == 500_000 and [b["code"] for b in payment["bills"]] == ["1.004269"]
    await sim(f"{run.pay}/_sim/pay", {"transaction_id": payment["transaction_id"]})

    async def recorded() -> dict[str, Any] | None:
        p: dict[str, Any] = await get(run, f"/v1/payments/{payment['id']}")
        return p if p["state"] == "paid" else None

    await until(recorded)
    events = (await get(run, f"/v1/dossiers/{created['id']}/events"))["events"]
    assert [e["data"]["payment"]["learnt_by"] for e in events if "payment" in e["data"]] == ["callback"]
    feed = (await get(run, "/v1/feed?after=0&limit=1000", PORTAL))["items"]
    record = PortalDossier.model_validate([i for i in feed if i["dossier"]["MaHoSo"] == created["code"]][-1]["dossier"])
    assert record.DuocThanhToanTrucTuyen == "1"
