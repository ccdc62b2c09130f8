"""The BHXH simulator on its own: token endpoint, bearer checks, de-duplication, validation, faults."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.sdk.simulation import Faults, SimulatorOptions
from plugins.social_insurance import plugin
from plugins.social_insurance.connector import SocialInsuranceSettings
from plugins.social_insurance.oauth import basic_auth
from plugins.social_insurance.simulator import CLIENT_ID, create_simulator, insurance_number

SECRET = "bhxh-simulator-test-secret-001"
CLAIM = "/api/v1/ho-so"
Client = TestClient[Any, Any]
Factory = Callable[..., Awaitable[Client]]


@pytest.fixture
def make(aiohttp_client: Callable[..., Awaitable[Client]]) -> Factory:
    async def build(**settings: Any) -> Client:
        options = SimulatorOptions(secret=SECRET, processing_delay=3600, faults=Faults(), settings=settings)
        return await aiohttp_client(create_simulator(options))

    return build


async def token(client: Client, client_id: str = CLIENT_ID, secret: str = SECRET) -> Any:
    return await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic_auth(client_id, secret)},
    )


async def bearer(client: Client) -> dict[str, str]:
    return {"Authorization": "Bearer " + (await (await token(client)).json())["access_token"]}


def claim(tx: str = "tx-1", **data: Any) -> dict[str, Any]:
    return {
        "maGiaoDich": tx,
        "maHoSo": "000.00.01.H26-261120-0011",
        "loaiHoSo": "CAP_THE_BHYT_TE",
        "duLieu": {
            "soDinhDanh": "001326000123",
            "hoTen": "Nguyễn Ngọc An",
            "ngaySinh": "20261101",
            "gioiTinh": 0,
            "maTinhCuTru": "01",
            "maXaCuTru": "00070",
        }
        | data,
        "urlCallback": "http://127.0.0.1:9/v1/callbacks/social_insurance",
    }


async def test_token_endpoint(make: Factory) -> None:
    sim = await make(token_ttl=90)
    resp = await token(sim)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 90)
    assert len(body["access_token"]) >= 30
    assert (await (await sim.get("/_sim/stats")).json())["tokens_issued"] == 1


async def test_token_endpoint_refusals(make: Factory) -> None:
    sim = await make()
    wrong = await token(sim, secret="wrong-secret-000000000000")
    assert (wrong.status, await wrong.json()) == (401, {"error": "invalid_client"})
    assert (await token(sim, client_id="someone-else")).status == 401
    garbage = await sim.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!"}
    )
    assert garbage.status == 401
    no_colon = "Basic " + base64.b64encode(b"lienthong-gateway").decode()
    assert (await sim.post("/oauth/token", headers={"Authorization": no_colon})).status == 401
    grant = await sim.post(
        "/oauth/token", data={"grant_type": "password"}, headers={"Authorization": basic_auth(CLIENT_ID, SECRET)}
    )
    assert (grant.status, await grant.json()) == (400, {"error": "unsupported_grant_type"})


async def test_api_needs_a_live_token(make: Factory) -> None:
    sim = await make(token_ttl=0.2)
    missing = await sim.post(CLAIM, json=claim())
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert (await missing.json())["maLoi"] == "401"
    headers = await bearer(sim)
    assert (await sim.post(CLAIM, json=claim(), headers=headers)).status == 202
    await asyncio.sleep(0.25)
    assert (await sim.post(CLAIM, json=claim("tx-2"), headers=headers)).status == 401
    assert (await sim.post(CLAIM, json=claim(), headers={"Authorization": "Bearer made-up"})).status == 401
    assert (await (await sim.get("/_sim/stats")).json())["tokens_refused"] == 3


async def test_claims_deduplicated_and_validated(make: Factory) -> None:
    sim = await make()
    headers = await bearer(sim)
    first = await sim.post(CLAIM, json=claim(), headers=headers)
    again = await sim.post(CLAIM, json=claim(), headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert (await first.json()) == (await again.json()) == {"maTiepNhan": "BHXH-0000001", "trangThai": "DA_TIEP_NHAN"}
    incomplete = await sim.post(CLAIM, json=claim("tx-3", hoTen="", maXaCuTru=None), headers=headers)
    assert incomplete.status == 422
    assert (await incomplete.json())["moTa"] == "missing fields: duLieu.hoTen, duLieu.maXaCuTru"
    unknown = await sim.post(CLAIM, json={**claim("tx-4"), "loaiHoSo": "LUONG_HUU"}, headers=headers)
    assert (await unknown.json())["moTa"] == "unknown loaiHoSo 'LUONG_HUU'"
    not_json = await sim.post(CLAIM, data=b"{", headers=headers)
    assert not_json.status == 400
    listed = await (await sim.get("/_sim/accepted")).json()
    assert [a["maTiepNhan"] for a in listed] == ["BHXH-0000001"]


async def test_revoke_and_faults_skip_control_paths(make: Factory) -> None:
    sim = await make()
    headers = await bearer(sim)
    assert await (await sim.post("/_sim/revoke-tokens")).json() == {"revoked": 1}
    assert (await sim.post(CLAIM, json=claim(), headers=headers)).status == 401
    await sim.post("/_sim/faults", json={"down": True})
    assert (await token(sim)).status == 503
    assert (await sim.post("/_sim/revoke-tokens")).status == 200


def test_insurance_numbers_are_stable_and_provincial() -> None:
    number = insurance_number("079159075954")
    assert number == insurance_number("079159075954")
    assert (len(number), number[:2], number.isdigit()) == (10, "79", True)
    assert number != insurance_number("079159075955")


def test_plugin_registers_kind_procedures_and_lookup() -> None:
    [kind] = plugin.register_agency_kinds()
    assert (kind.name, kind.protocol, kind.settings_model) == ("social_insurance", "rest", SocialInsuranceSettings)
    assert [lk.name for lk in kind.lookups] == ["social-insurance-number"]
    assert kind.simulator is create_simulator
    assert kind.demo_dossiers is not None and len(kind.demo_dossiers(1, 3)) == 3
    procs = {p.code: p for p in plugin.register_procedures()}
    assert set(procs) == {"1.003015", "1.003028"}
    assert procs["1.003028"].processing_days == 10
    assert all(p.agency_kind == "social_insurance" for p in procs.values())
