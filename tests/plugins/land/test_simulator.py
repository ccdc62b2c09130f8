"""The land-office simulator over its real SFTP server, driven through the LandConnector."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.file.model import sidecar_text
from contracts import DossierStatus
from contracts.samples import pdf_attachment
from gateway.connector import AgencyUpdate, ConnectorContext, Delivery
from gateway.errors import AgencyUnavailable
from gateway.sdk.simulation import SimulatorOptions
from plugins.land.connector import LandConnector
from plugins.land.settings import LandSettings
from plugins.land.simulator import create_simulator
from tests.plugins.land.support import dossier, first_certificate, poll_applied, sha, transfer

PASSWORD = "land-sim-password-01"


class Sim:
    def __init__(self, server: TestServer, info: dict[str, Any]) -> None:
        self.server, self.info = server, info
        self.root = Path(info["root"])

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as s, s.get(str(self.server.make_url(path))) as r:
            return await r.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with aiohttp.ClientSession() as s, s.post(str(self.server.make_url(path)), json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    def settings(self, office: str = "hanoi") -> LandSettings:
        return LandSettings(
            host="127.0.0.1",
            port=self.info["port"],
            username=self.info["username"],
            password=PASSWORD,
            host_key=self.info["public_key"],
            root=f"/{office}",
        )


@pytest.fixture
def sim_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sim(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]], sim_settings: dict[str, Any]
) -> Sim:
    settings = {
        "root": str(tmp_path / "sftp"),
        "offices": {"hanoi": "01", "hcm": "79"},
        "scan_interval": 0.01,
        "answer_gap": 0.01,
        "auto_pay_after": 0.05,
        "host_key_path": str(tmp_path / "keys" / "host_ed25519"),
        "public_key_path": str(tmp_path / "keys" / "host.pub"),
        **sim_settings,
    }
    server = await aiohttp_server(
        create_simulator(SimulatorOptions(secret=PASSWORD, processing_delay=0.02, settings=settings))
    )
    async with aiohttp.ClientSession() as s, s.get(str(server.make_url("/_sim/sftp"))) as r:
        info = await r.json()
    return Sim(server, info)


@pytest.fixture
async def hanoi(sim: Sim, http: Any) -> AsyncIterator[LandConnector]:
    c = connector(sim.settings("hanoi"), http)
    await c.start()
    yield c
    await c.aclose()


def connector(settings: LandSettings, http: Any, endpoint: str = "hanoi") -> LandConnector:
    return LandConnector(ConnectorContext("land", endpoint, settings, http, ""))


async def updates_until(
    c: LandConnector, done: Callable[[list[AgencyUpdate]], bool], timeout: float = 10.0
) -> list[AgencyUpdate]:
    """Poll as the dispatcher does: a failed poll is retried on the next round (the test SFTP server
    fails a listing when a file is renamed while it lists the folder)."""
    got: list[AgencyUpdate] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(AgencyUnavailable):
            got += await poll_applied(c)
            if done(got):
                await poll_applied(c)  # the applied answers leave the inbox
                return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out; got {[(u.event_id, int(u.status)) for u in got]}")


def finished(n: int = 1) -> Callable[[list[AgencyUpdate]], bool]:
    return lambda got: sum(u.status in (DossierStatus.FINISHED, DossierStatus.STOPPED) for u in got) >= n


def submit(c: LandConnector, sub: dict[str, Any], **kw: Any) -> Awaitable[Any]:
    did = kw.pop("did", uuid.uuid4())
    return c.submit(dossier(sub, did=did), Delivery(f"{did}:submit", 1, inputs=kw.pop("inputs", {})))


async def test_first_certificate_goes_received_obligation_finished_with_the_certificate(
    sim: Sim, hanoi: LandConnector
) -> None:
    sub = first_certificate()
    sub["jurisdiction"] = {"province": "01"}
    sub["form"]["parcels"][0]["address"] |= {"province": "01", "commune": "00070"}
    await submit(hanoi, sub)
    got = await updates_until(hanoi, finished())
    assert [int(u.status) for u in got] == [4, 6, 9]
    assert got[1].data["obligations"][0]["code"] == "LPTB"
    [gcn] = got[2].results
    assert gcn.component_code == "GCN" and gcn.content_base64
    assert got[2].outputs["certificate_no"] == gcn.result_code
    stats = await sim.get("/_sim/stats")
    assert stats["accepted"] == 1 and stats["paid"] == 1
    pub = await asyncio.to_thread((sim.root.parent / "keys" / "host.pub").read_text)
    assert pub.strip() == sim.info["public_key"]


async def test_the_office_never_sees_a_partial_request(sim: Sim, hanoi: LandConnector, http: Any) -> None:
    """Large requests written while the office scans every 10 ms: every one it reads matches its sidecar."""
    subs = []
    for i in range(12):
        sub = transfer("declaration")
        sub["attachments"] = [pdf_attachment("HD_CN", "Hợp đồng", f"{i} " + "x" * 700_000)]
        subs.append((uuid.uuid4(), sub))
    await asyncio.gather(*(submit(hanoi, s, did=d) for d, s in subs))
    # a second gateway process re-sends every request (a retry after a crash): same files, same bytes
    again = connector(sim.settings("hanoi"), http)
    await again.start()
    try:
        await asyncio.gather(*(submit(again, s, did=d) for d, s in subs))
    finally:
        await again.aclose()
    await updates_until(hanoi, finished(len(subs)), timeout=30)
    stats = await sim.get("/_sim/stats")
    assert stats["accepted"] == len(subs)
    assert stats.get("checksum_mismatch", 0) == 0 and stats.get("invalid", 0) == 0
    received = await sim.get("/_sim/received")
    assert len({r["correlation"] for r in received}) == len(subs) == len(received)


async def test_a_parcel_of_another_province_is_refused_by_the_office(sim: Sim, http: Any) -> None:
    hcm = connector(sim.settings("hcm"), http, "hcm")
    await hcm.start()
    try:
        await submit(hcm, transfer("declaration", province="01"))
        [u] = await updates_until(hcm, finished())
    finally:
        await hcm.aclose()
    assert u.status == DossierStatus.STOPPED
    assert "79" in u.data["reason"]


@pytest.mark.parametrize("sim_settings", [{"duplicate_rate": 1.0}])
async def test_malformed_and_duplicate_answers_are_quarantined_or_dropped(sim: Sim, hanoi: LandConnector) -> None:
    await sim.post("/_sim/faults", {"malformed_rate": 1.0})
    await submit(hanoi, transfer("declaration"))
    got = await updates_until(hanoi, finished())
    assert [int(u.status) for u in got] == [4, 6, 9]  # each answer once, in order
    stats = await sim.get("/_sim/stats")
    assert stats["answers_malformed"] == stats["answers_duplicated"] == 3
    quarantine = await asyncio.to_thread(lambda: sorted(p.name for p in (sim.root / "hanoi" / "quarantine").iterdir()))
    assert sum(n.endswith("-x.xml") for n in quarantine) == 3
    assert all(n.endswith(("-x.xml", ".sha256", ".reason.txt")) for n in quarantine)


async def test_missing_answers_arrive_when_the_office_resends_them(sim: Sim, hanoi: LandConnector) -> None:
    await sim.post("/_sim/land", {"missing_rate": 1.0})
    await submit(hanoi, transfer("declaration"))
    await asyncio.sleep(0.4)
    assert await poll_applied(hanoi) == []
    assert (await sim.get("/_sim/stats"))["answers_missing"] == 3
    await sim.post("/_sim/land", {"missing_rate": 0.0})
    assert (await sim.post("/_sim/resend", {}))["resent"] == 3
    got = await updates_until(hanoi, finished())
    assert [int(u.status) for u in got] == [4, 6, 9]


@pytest.mark.parametrize("fault", ["latency_ms", "answer_delay_ms"])
async def test_a_slow_office_answers_late_but_answers(sim: Sim, hanoi: LandConnector, fault: str) -> None:
    await sim.post("/_sim/faults", {fault: 400})
    started = time.monotonic()
    await submit(hanoi, transfer("declaration"))
    await asyncio.sleep(0.25)
    assert await poll_applied(hanoi) == []  # nothing yet: the office is still busy
    got = await updates_until(hanoi, finished())
    assert [int(u.status) for u in got] == [4, 6, 9]
    assert time.monotonic() - started >= 0.4


async def test_an_office_that_is_down_refuses_the_gateway_until_it_is_back(sim: Sim, hanoi: LandConnector) -> None:
    await sim.post("/_sim/faults", {"down": True})
    await asyncio.sleep(0.15)
    with pytest.raises(AgencyUnavailable):
        await submit(hanoi, transfer("declaration"))
    await sim.post("/_sim/faults", {"down": False})
    await asyncio.sleep(0.15)
    await submit(hanoi, transfer("declaration"))
    assert [int(u.status) for u in await updates_until(hanoi, finished())] == [4, 6, 9]


async def test_a_request_that_breaks_the_schema_is_refused_with_its_reason(sim: Sim) -> None:
    outbox = sim.root / "hanoi" / "outbox"
    data = b'<HoSoXml PhienBan="1.0"><MaYeuCau>x</MaYeuCau></HoSoXml>'

    def plant() -> None:
        (outbox / "request-x.xml.sha256").write_bytes(sidecar_text("request-x.xml", sha(data)))
        (outbox / "request-x.xml").write_bytes(data)

    await asyncio.to_thread(plant)
    refused = sim.root / "hanoi" / "refused"
    for _ in range(100):
        if await asyncio.to_thread((refused / "request-x.xml.reason.txt").exists):
            break
        await asyncio.sleep(0.02)
    reason = await asyncio.to_thread((refused / "request-x.xml.reason.txt").read_text)
    assert "schema" in reason
    assert (await sim.get("/_sim/stats"))["invalid"] == 1


async def test_declaration_then_registration_at_the_same_office(sim: Sim, hanoi: LandConnector) -> None:
    await submit(hanoi, transfer("declaration"))
    declared = await updates_until(hanoi, finished())
    outputs = {k: v for u in declared for k, v in u.outputs.items()}
    assert declared[-1].results[0].component_code == "PCTT"
    assert outputs["assessed_price_vnd"] >= outputs["declared_price_vnd"]
    receipts = [{"receipt_number": "BL-1", "kind": "registration_fee", "amount_vnd": 1, "paid_date": "2026-11-25"}]
    await submit(hanoi, transfer("registration"), inputs={**outputs, "tax_receipts": receipts})
    registered = await updates_until(hanoi, finished())
    assert [int(u.status) for u in registered] == [4, 9]
    assert registered[-1].results[0].component_code == "GCN"
    # a registration the office has no declaration for is refused
    await submit(
        hanoi, transfer("registration"), inputs={**outputs, "land_ref": "VPDK01-999", "tax_receipts": receipts}
    )
    [refused] = await updates_until(hanoi, finished())
    assert refused.status == DossierStatus.STOPPED and "kê khai" in refused.data["reason"]


@pytest.mark.parametrize("sim_settings", [{"auto_pay_after": None}])
async def test_the_obligation_waits_for_payment(sim: Sim, hanoi: LandConnector) -> None:
    sub = transfer("full")
    await submit(hanoi, sub)
    got = await updates_until(hanoi, lambda g: any(u.status == 6 for u in g))
    await asyncio.sleep(0.2)
    assert await poll_applied(hanoi) == []  # nothing more until the applicant pays
    await sim.post("/_sim/pay", {"ref": got[0].agency_ref})
    rest = await updates_until(hanoi, finished())
    assert [int(u.status) for u in rest] == [9]


@pytest.mark.parametrize("body", [{"missing_rate": 2}, {"nope": 1}, {"auto_pay_after": "soon"}])
async def test_land_faults_are_validated(sim: Sim, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s, s.post(str(sim.server.make_url("/_sim/land")), json=body) as r:
        assert r.status == 422
    assert (await sim.get("/_sim/land"))["missing_rate"] == 0.0
