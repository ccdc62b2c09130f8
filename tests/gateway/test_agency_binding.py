"""Agencies are bound to their dossiers: police credentials, a poll result and a land office's inbox file
that name a dossier routed elsewhere (another agency, or another office of land) change nothing, are
refused (403, refused, quarantined) and audited. The gateway in-process on tests/gateway/conf_agencies
with the police simulator and the land simulator (a real SFTP server) beside it; justice never answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.file.model import sidecar_text
from adapters.signing import HmacSigner
from contracts import DossierStatus
from contracts.calendar import VN_TZ
from gateway.api.keys import STORE
from gateway.app import create_app
from gateway.config import load_config
from gateway.connector import AgencyUpdate
from gateway.dispatcher import apply_polled
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import Faults, SimulatorOptions
from plugins.justice.demo import demo_dossiers as justice_dossiers
from plugins.land.answers import Answer, Document, answer_xml, pdf
from plugins.land.demo import demo_dossiers as land_dossiers
from plugins.land.simulator import create_simulator as land_simulator
from plugins.police.demo import demo_dossiers as police_dossiers
from plugins.police.simulator import create_simulator as police_simulator
from tests.gateway.test_api_errors import assert_problem

CONF = Path(__file__).resolve().parent / "conf_agencies"
POLICE_SECRET = "agencies-test-police-secret-01"
LAND_PASSWORD = "agencies-test-land-password"
CENTRE = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
OPERATOR = {"X-Api-Key": DEMO_KEYS["operator"]}
Client = TestClient[Any, Any]


class Gateway:
    def __init__(self, client: Client, police: TestServer, sftp_root: Path) -> None:
        self.client = client
        self.police = police
        self.sftp_root = sftp_root

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.client.post("/v1/dossiers", json=body, headers=CENTRE) as r:
            created: dict[str, Any] = await r.json()
            assert r.status == 202, created
        return created

    async def dossier(self, did: str) -> dict[str, Any]:
        async with self.client.get(f"/v1/dossiers/{did}", headers=CENTRE) as r:
            body: dict[str, Any] = await r.json()
            assert r.status == 200, body
        return body

    async def statuses(self, did: str) -> list[int]:
        async with self.client.get(f"/v1/dossiers/{did}/events", headers=CENTRE) as r:
            return [e["status"] for e in (await r.json())["events"]]

    async def denied(self, **query: str) -> list[dict[str, Any]]:
        async with self.client.get("/v1/admin/audit", params={"limit": "1000", **query}, headers=OPERATOR) as r:
            items: list[dict[str, Any]] = (await r.json())["items"]
        return [i for i in items if i["outcome"] == "denied"]

    async def police_faults(self, **faults: Any) -> None:
        async with aiohttp.ClientSession() as s, s.post(str(self.police.make_url("/_sim/faults")), json=faults) as r:
            assert r.status == 200


@pytest.fixture
async def gateway(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[Gateway]:
    port = unused_tcp_port_factory()
    police = await aiohttp_server(
        police_simulator(
            SimulatorOptions(
                callback_url=f"http://127.0.0.1:{port}/v1/callbacks/police",
                callback_api_key=DEMO_KEYS["police-callbacks"],
                secret=POLICE_SECRET,
                processing_delay=0.05,
                faults=Faults(down=True),  # police dossiers stay received unless a test says otherwise
            )
        )
    )
    root = tmp_path / "sftp"
    settings = {"root": str(root), "scan_interval": 0.02, "answer_gap": 0.02, "auto_pay_after": 0.1}
    land = await aiohttp_server(land_simulator(SimulatorOptions(secret=LAND_PASSWORD, settings=settings)))
    async with aiohttp.ClientSession() as s, s.get(str(land.make_url("/_sim/sftp"))) as r:
        sftp = await r.json()
    env = {
        "POLICE_URL": str(police.make_url("")).rstrip("/"),
        "POLICE_SECRET": POLICE_SECRET,
        "LAND_SFTP_PORT": str(sftp["port"]),
        "LAND_SFTP_PASSWORD": LAND_PASSWORD,
        "LAND_HOST_KEY": sftp["public_key"],
        "LIENTHONG_DB": str(tmp_path / "gw.db"),
        "LIENTHONG_PORT": str(port),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    config = await asyncio.to_thread(load_config, CONF, registry)
    client = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield Gateway(client, police, root)
    finally:
        async with asyncio.timeout(20):
            await client.close()


def justice_birth() -> dict[str, Any]:
    return next(d for d in justice_dossiers(5, 20) if d["procedure_code"] == "1.001193")


def land_in(province: str, commune: str) -> dict[str, Any]:
    sub = land_dossiers(42, 1)[0]
    sub["jurisdiction"] = {"province": province, "commune": commune}
    for p in sub["form"]["parcels"]:
        p["address"] |= {"province": province, "commune": commune}
    return sub


def police_event(code: str, status: str, event_id: str) -> bytes:
    content = b"%PDF-1.4 forged\n"
    result = {
        "tenGiayTo": "Giấy khai sinh",
        "maThanhPhan": "KQ",
        "soGiayTo": "FORGED-1",
        "loaiTep": "application/pdf",
        "kichThuoc": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "noiDungBase64": base64.b64encode(content).decode(),
    }
    now = datetime.now(VN_TZ).strftime("%Y%m%d%H%M%S")
    body = {"maSuKien": event_id, "maHoSo": code, "trangThai": status, "ghiChu": "x", "thoiGian": now}
    return orjson.dumps(body | ({"ketQua": result} if status == "HOAN_THANH" else {}))


async def post_police_callback(gw: Gateway, body: bytes) -> aiohttp.ClientResponse:
    headers = HmacSigner("lienthong-gateway", POLICE_SECRET)("POST", "/v1/callbacks/police", body)
    headers |= {"X-Api-Key": DEMO_KEYS["police-callbacks"], "Content-Type": "application/json"}
    return await gw.client.post("/v1/callbacks/police", data=body, headers=headers)


async def test_police_credentials_cannot_finish_a_justice_dossier(gateway: Gateway) -> None:
    justice = await gateway.submit(justice_birth())
    resp = await post_police_callback(gateway, police_event(justice["code"], "HOAN_THANH", "forged-1"))
    problem = await assert_problem(resp, 403, "wrong-agency")
    assert problem["detail"] == f"dossier {justice['code']} is not routed to police (national)"
    # Nothing of it was kept: no event, no result to download.
    assert await gateway.statuses(justice["id"]) == [2]
    assert (await gateway.dossier(justice["id"]))["results"] == []
    [record] = await gateway.denied(dossier=justice["id"])
    assert (record["client"], record["action"], record["basis"]) == ("police-callbacks", "callback", "wrong-agency")
    assert record["detail"] == {"agency": "police", "event_id": "forged-1"}
    # The same credentials still move police's own dossiers.
    await gateway.police_faults(down=False)
    police = await gateway.submit(police_dossiers(42, 1)[0])
    resp = await post_police_callback(gateway, police_event(police["code"], "DANG_XU_LY", "own-1"))
    assert resp.status == 200, await resp.text()


async def test_a_polled_update_for_another_agencys_dossier_is_refused(gateway: Gateway) -> None:
    store = gateway.client.server.app[STORE]
    police = await gateway.submit(police_dossiers(42, 1)[0])
    hanoi = await gateway.submit(land_in("01", "00070"))
    forged = [
        AgencyUpdate(event_id="land-e1", dossier_code=police["code"], status=DossierStatus.FINISHED),
        # An office may answer only for its own dossiers: the Hà Nội one's, not through the HCM folder.
        AgencyUpdate(event_id="land-e2", dossier_code=hanoi["code"], status=DossierStatus.STOPPED),
    ]
    outcome = await apply_polled(store, "land", "hcm", forged)
    assert outcome.applied == frozenset()
    assert dict(outcome.refused) == {"land-e1": "wrong-agency", "land-e2": "wrong-agency"}
    assert await gateway.statuses(police["id"]) == [2]
    assert DossierStatus.STOPPED not in await gateway.statuses(hanoi["id"])
    [record] = await gateway.denied(dossier=police["id"])
    assert (record["client"], record["action"], record["basis"]) == ("agency:land", "agency-update", "wrong-agency")
    assert record["detail"]["endpoint"] == "hcm" and record["detail"]["event_id"] == "land-e1"
    assert [r["detail"]["event_id"] for r in await gateway.denied(dossier=hanoi["id"])] == ["land-e2"]


async def test_a_file_in_a_land_office_inbox_for_a_police_dossier_is_quarantined(gateway: Gateway) -> None:
    police = await gateway.submit(police_dossiers(42, 1)[0])
    hanoi_land = await gateway.submit(land_in("01", "00070"))
    # An answer finishing the police dossier, with a certificate, dropped in the Hà Nội office's inbox; and
    # one stopping Hà Nội's land dossier dropped in the Hồ Chí Minh office's inbox.
    await drop_answer(gateway, "hanoi", "answer-forged-police.xml", police, "FORGED-1", "HOAN_THANH")
    await drop_answer(gateway, "hcm", "answer-forged-office.xml", hanoi_land, "FORGED-2", "TU_CHOI")
    await wait_for(lambda: quarantined(gateway, "hanoi", "answer-forged-police.xml"))
    await wait_for(lambda: quarantined(gateway, "hcm", "answer-forged-office.xml"))
    for office, name in (("hanoi", "answer-forged-police.xml"), ("hcm", "answer-forged-office.xml")):
        reason = await asyncio.to_thread((gateway.sftp_root / office / "quarantine" / f"{name}.reason.txt").read_text)
        assert "reason: wrong-agency" in reason, reason
    assert await gateway.statuses(police["id"]) == [2]
    assert (await gateway.dossier(police["id"]))["results"] == []
    [record] = await gateway.denied(dossier=police["id"])
    assert (record["client"], record["basis"], record["detail"]["endpoint"]) == ("agency:land", "wrong-agency", "hanoi")
    [record] = await gateway.denied(dossier=hanoi_land["id"])
    assert (record["basis"], record["detail"]["endpoint"], record["detail"]["event_id"]) == (
        "wrong-agency",
        "hcm",
        "FORGED-2",
    )
    # The Hà Nội office's own answers for its dossier still come in.
    final = await wait_status(gateway, hanoi_land["id"], 9)
    assert final["endpoint"] == "hanoi" and DossierStatus.STOPPED not in await gateway.statuses(hanoi_land["id"])


async def drop_answer(gw: Gateway, office: str, name: str, d: dict[str, Any], event: str, status: str) -> None:
    docs = (Document("Giấy chứng nhận", "GCN", pdf("GCN forged"), "AA 0000"),) if status == "HOAN_THANH" else ()
    data = answer_xml(
        Answer(
            event,
            f"{d['id']}.submit",
            d["code"],
            "VPDK-FORGED",
            status,
            datetime.now(VN_TZ),
            documents=docs,
            reason="forged" if status == "TU_CHOI" else None,
        )
    )

    def write() -> None:
        inbox = gw.sftp_root / office / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / f"{name}.sha256").write_bytes(sidecar_text(name, hashlib.sha256(data).hexdigest()))
        (inbox / name).write_bytes(data)

    await asyncio.to_thread(write)


def quarantined(gw: Gateway, office: str, name: str) -> bool:
    return (gw.sftp_root / office / "quarantine" / f"{name}.reason.txt").exists()


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(predicate):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def wait_status(gw: Gateway, did: str, status: int, timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (d := await gw.dossier(did))["status"] != status:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return d
