"""Results to the VNeID wallet: a dossier whose applicant chose the wallet (with consent) ends at status 10
once the wallet simulator has its result, through the outbox; the wallet down, it is delivered once back."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from contracts.portal import PortalDossier
from gateway.sandbox.wallet_sim import create_wallet_simulator
from gateway.sdk.simulation import SimulatorOptions
from tests.gateway.conftest import CONF, GatewayHarness

WALLET_SECRET = "wallet-test-hmac-secret-0001"
CONSENT = {"given_at": "2026-12-01T09:00:00+07:00", "channel": "counter", "reference": "PDY-2026-000123"}


@pytest.fixture
async def wallet() -> AsyncIterator[TestServer]:
    server = TestServer(create_wallet_simulator(SimulatorOptions(secret=WALLET_SECRET)), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    with (conf / "gateway.toml").open("a", encoding="utf-8") as f:
        f.write('\n[wallet]\nurl = "${WALLET_URL}"\nsecret = "${WALLET_SECRET}"\ntimeout = 2.0\n')
    return conf


@pytest.fixture
def gateway_env(wallet: TestServer) -> dict[str, str]:
    return {"WALLET_URL": str(wallet.make_url("")).rstrip("/"), "WALLET_SECRET": WALLET_SECRET}


def to_wallet(sub: dict[str, Any]) -> dict[str, Any]:
    return sub | {"return_method": 2, "wallet_consent": CONSENT}


async def status_of(h: GatewayHarness, did: str) -> dict[str, Any]:
    async with h.client.get(f"/v1/dossiers/{did}", headers=h.headers()) as r:
        body: dict[str, Any] = await r.json()
        return body


async def wait_status(h: GatewayHarness, did: str, status: int, timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (d := await status_of(h, did))["status"] != status:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return d


async def sim(h: GatewayHarness, server: TestServer, path: str, body: Any = None) -> Any:
    call = h.client.session.post if body is not None else h.client.session.get
    async with call(str(server.make_url(path)), json=body) as r:
        assert r.status == 200
        return await r.json()


async def test_a_wallet_dossier_ends_returned_with_the_wallet_holding_its_result(
    harness: GatewayHarness, wallet: TestServer, submission: Callable[[int], dict[str, Any]]
) -> None:
    sub = to_wallet(submission(0))
    async with harness.client.post("/v1/dossiers", json=sub, headers=harness.headers()) as r:
        created = await r.json()
        assert r.status == 202, created
    d = await wait_status(harness, created["id"], 10)
    held = await sim(harness, wallet, f"/_sim/wallet/{sub['applicant']['personal_id']}")
    assert [doc["sha256"] for doc in held] == [res["sha256"] for res in d["results"]]
    assert held[0]["dossier_code"] == d["code"] and len(held[0]["signature"]) == 64  # the request's HMAC
    async with harness.client.get(f"/v1/dossiers/{created['id']}/events", headers=harness.headers()) as r:
        events = (await r.json())["events"]
    assert [e["status"] for e in events] == [2, 4, 9, 10]
    assert events[-1]["data"] == {"returned_via": "vneid-wallet", "wallet_ref": held[0]["wallet_ref"]}
    async with harness.client.get("/v1/feed?after=0&limit=100", headers=harness.headers("portal")) as r:
        items = (await r.json())["items"]
    record = PortalDossier.model_validate([i for i in items if i["dossier"]["MaHoSo"] == d["code"]][-1]["dossier"])
    assert (record.TrangThaiHoSo, record.HinhThuc) == ("10", "2")
    assert "ví VNeID" in record.ThongTinTra and held[0]["wallet_ref"] in record.ThongTinTra
    assert (await sim(harness, wallet, "/_sim/stats"))["wallet_pushes"] == 1


async def test_the_wallet_down_the_result_goes_once_it_is_back(
    harness: GatewayHarness, wallet: TestServer, submission: Callable[[int], dict[str, Any]]
) -> None:
    await sim(harness, wallet, "/_sim/faults", {"down": True})
    sub = to_wallet(submission(1))
    async with harness.client.post("/v1/dossiers", json=sub, headers=harness.headers()) as r:
        created = await r.json()
    await wait_status(harness, created["id"], 9)
    async with asyncio.timeout(20):
        while (await sim(harness, wallet, "/_sim/stats")).get("refused_down", 0) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    d = await status_of(harness, created["id"])
    # Retried, never given up: between two attempts, or in one (the wallet refuses it while down).
    assert d["status"] == 9 and d["delivery"]["state"] in ("pending", "in_flight")
    assert "503" in d["delivery"]["last_error"]
    await sim(harness, wallet, "/_sim/faults", {"down": False})
    await wait_status(harness, created["id"], 10)
    assert len(await sim(harness, wallet, f"/_sim/wallet/{sub['applicant']['personal_id']}")) == 1


async def test_the_wallet_needs_the_applicants_consent(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    sub = submission(2) | {"return_method": 2}
    async with harness.client.post("/v1/dossiers", json=sub, headers=harness.headers()) as r:
        problem = await r.json()
        assert r.status == 422, problem
    assert "wallet_consent" in problem["errors"][0]["message"]


def test_the_wallets_name_is_reserved(tmp_path: Path) -> None:
    from gateway.config import load_config
    from gateway.errors import ConfigError
    from tests.builtin import builtin_registry

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    text = (conf / "agencies.toml").read_text(encoding="utf-8").replace("[agency.police", "[agency.vneid")
    (conf / "agencies.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(conf, builtin_registry())
    assert ("agencies.toml", "agency.vneid", "'vneid' is reserved for the VNeID wallet") in err.value.problems


def test_the_wallets_names_agree() -> None:
    from gateway import wallet
    from gateway.config.loader import WALLET_AGENCY
    from gateway.store import wallet as stored

    assert wallet.AGENCY == stored.AGENCY == WALLET_AGENCY
    assert (wallet.ENDPOINT, wallet.STEP) == (stored.ENDPOINT, stored.STEP)
