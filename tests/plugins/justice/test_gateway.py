"""The gateway in-process on tests/plugins/justice/conf with the justice, police and social insurance
simulators beside it: the Decree 63 bundles run end to end, outputs of one step feeding the next."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from contracts import Gender
from contracts.identifiers import check_personal_id
from gateway.app import create_app
from gateway.config import load_config
from gateway.demo import DEMO_KEYS
from gateway.plugin_manager import load_registry
from gateway.simulation import STATS, SimulatorOptions
from plugins.justice.demo import demo_dossiers as justice_dossiers
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.justice.simulator import create_simulator as justice_simulator
from plugins.police.demo import pdf_attachment
from plugins.police.simulator import ACCEPTED as POLICE_ACCEPTED
from plugins.police.simulator import create_simulator as police_simulator
from plugins.social_insurance.simulator import create_simulator as bhxh_simulator
from plugins.social_insurance.simulator import insurance_number

CONF = Path(__file__).resolve().parent / "conf"
# Plaintext of the callback keys hashed in conf/clients.toml.
CALLBACK_KEYS = {
    "police": DEMO_KEYS["police-callbacks"],
    "justice": "demo-justice-callback-key-Nb2x",
    "social_insurance": "demo-bhxh-callback-key-Rt6w",
}
SECRETS = {
    "police": "gateway-test-police-secret-0001",
    "justice": "gateway-test-justice-secret-001",
    "social_insurance": "gateway-test-bhxh-secret-00001",
}
CENTRE = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
Client = TestClient[Any, Any]


class Stack:
    def __init__(self, client: Client, sims: dict[str, TestServer]) -> None:
        self.client = client
        self.sims = sims

    async def wait_bundle(self, bid: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with self.client.get(f"/v1/bundles/{bid}", headers=CENTRE) as r:
                view: dict[str, Any] = await r.json()
            if view["state"] != "in_progress" or asyncio.get_running_loop().time() > deadline:
                return view
            await asyncio.sleep(0.05)


@pytest.fixture
async def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[Stack]:
    factories: dict[str, Callable[[SimulatorOptions], web.Application]] = {
        "police": police_simulator,
        "justice": justice_simulator,
        "social_insurance": bhxh_simulator,
    }
    sims = {}
    for agency, factory in factories.items():
        options = SimulatorOptions(
            callback_api_key=CALLBACK_KEYS[agency],
            secret=SECRETS[agency],
            processing_delay=0.05,
            settings={"token_ttl": 2} if agency == "social_insurance" else {},
        )
        sims[agency] = await aiohttp_server(factory(options))
        env = agency.upper()
        monkeypatch.setenv(f"{env}_URL", str(sims[agency].make_url("")).rstrip("/"))
        monkeypatch.setenv(f"{env}_SECRET", SECRETS[agency])
    port = unused_tcp_port_factory()
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    registry = await asyncio.to_thread(load_registry)
    config = await asyncio.to_thread(load_config, CONF, registry)
    client = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield Stack(client, sims)
    finally:
        await client.close()


def birth_bundle(i: int = 0) -> dict[str, Any]:
    birth = [d for d in justice_dossiers(11, 40) if d["procedure_code"] == BIRTH_REGISTRATION][i]
    child = birth["form"]["child"]
    newborn = {k: child[k] for k in ("full_name", "date_of_birth", "gender")}  # no personal id yet
    home = {**child["place_of_birth"], "line": "Số 12, ngõ 4"}
    return {
        "bundle": "birth-residence-health-card",
        "applicant": birth["applicant"],
        "jurisdiction": birth["jurisdiction"],
        "summary": f"Liên thông khai sinh, thường trú, BHYT cho trẻ {child['full_name']}",
        "forms": {
            "birth": birth["form"],
            "residence": {
                "registrant": newborn,
                "new_address": home,
                "legal_basis": "relative_house",
                "household_head_id": birth["form"]["mother"]["personal_id"],
                "relationship_to_head": "con",
            },
            "health_card": {"child": newborn, "residence": home},
        },
        "attachments": {
            "birth": birth["attachments"],
            "residence": [pdf_attachment("TK01", "Tờ khai thay đổi thông tin cư trú (CT01)", child["full_name"])],
        },
    }


def death_bundle() -> dict[str, Any]:
    death = next(d for d in justice_dossiers(11, 40) if d["procedure_code"] == DEATH_REGISTRATION)
    applicant, deceased = death["applicant"], death["form"]["deceased"]
    return {
        "bundle": "death-funeral",
        "applicant": applicant,
        "jurisdiction": death["jurisdiction"],
        "summary": f"Liên thông khai tử, trợ cấp mai táng: {deceased['full_name']}",
        "forms": {
            "death": death["form"],
            "funeral": {
                "deceased_personal_id": deceased["personal_id"],
                "deceased_full_name": deceased["full_name"],
                "date_of_death": deceased["date_of_death"],
                "beneficiary": {
                    "full_name": applicant["full_name"],
                    "personal_id": applicant["personal_id"],
                    "relationship": "con",
                },
                "bank_account": {
                    "bank_code": "970436",
                    "account_number": "0011004455667",
                    "account_holder": applicant["full_name"],
                },
            },
        },
        "attachments": {"death": death["attachments"]},
    }


async def submit_bundle(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    async with stack.client.post("/v1/bundles", json=body, headers=CENTRE) as r:
        created: dict[str, Any] = await r.json()
        assert r.status == 202, created
    return await stack.wait_bundle(created["id"])


async def test_birth_residence_and_health_card(stack: Stack) -> None:
    body = birth_bundle()
    view = await submit_bundle(stack, body)
    assert view["state"] == "completed", view
    steps = {s["step"]: s for s in view["steps"]}
    child = body["forms"]["birth"]["child"]
    pid = steps["birth"]["outputs"]["child_personal_id"]
    born = date.fromisoformat(child["date_of_birth"])
    check_personal_id(pid, date_of_birth=born, gender=Gender(child["gender"]))
    assert pid[:3] == "0" + body["jurisdiction"]["province"]
    assert steps["birth"]["outputs"]["birth_register_number"] == "1"
    assert steps["birth"]["results"][0]["name"] == "Giấy khai sinh (bản chính)"
    # Police registered the child under the id justice issued.
    accepted = stack.sims["police"].app[POLICE_ACCEPTED]
    assert [a["soDinhDanh"] for a in accepted.values()] == [pid]
    # Social insurance issued the card for the same child.
    card = "TE1" + body["forms"]["health_card"]["residence"]["province"] + insurance_number(pid)
    assert steps["health_card"]["outputs"]["bhyt_card_number"] == card
    assert steps["health_card"]["results"][0]["result_code"] == card
    assert [s["status"] for s in view["steps"]] == [9, 9, 9]


async def test_health_card_step_alone_after_birth(stack: Stack) -> None:
    body = {**birth_bundle(1), "steps": ["birth", "health_card"]}
    body["forms"] = {k: v for k, v in body["forms"].items() if k != "residence"}
    body["attachments"] = {"birth": body["attachments"]["birth"]}
    view = await submit_bundle(stack, body)
    assert view["state"] == "completed", view
    assert [s["step"] for s in view["steps"]] == ["birth", "health_card"]
    assert not stack.sims["police"].app[POLICE_ACCEPTED]


async def test_death_and_funeral_allowance(stack: Stack) -> None:
    view = await submit_bundle(stack, death_bundle())
    assert view["state"] == "completed", view
    steps = {s["step"]: s for s in view["steps"]}
    assert steps["death"]["outputs"] == {"death_register_number": "1"}
    assert steps["funeral"]["results"][0]["name"] == "Quyết định hưởng trợ cấp mai táng"
    stats = stack.sims["social_insurance"].app[STATS]
    assert stats["tokens_issued"] >= 1
    assert stats["tokens_refused"] == 0


async def test_single_dossiers_and_the_lookup(stack: Stack) -> None:
    birth = copy.deepcopy(next(d for d in justice_dossiers(12, 10) if d["procedure_code"] == BIRTH_REGISTRATION))
    birth["jurisdiction"] = {"province": "01", "commune": "00070"}
    async with stack.client.post("/v1/dossiers", json=birth, headers=CENTRE) as r:
        accepted = await r.json()
        assert r.status == 202, accepted
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with stack.client.get(f"/v1/dossiers/{accepted['id']}", headers=CENTRE) as r:
            dossier = await r.json()
        if dossier["status"] == 9 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert dossier["status"] == 9, dossier
    assert dossier["results"][0]["name"] == "Giấy khai sinh (bản chính)"
    mother = birth["form"]["mother"]
    async with stack.client.post(
        "/v1/lookups/social-insurance-number", json={"personal_id": mother["personal_id"]}, headers=CENTRE
    ) as r:
        answer = await r.json()
        assert r.status == 200, answer
    assert answer["social_insurance_number"] == insurance_number(mother["personal_id"])
    assert answer["full_name"] == mother["full_name"]


async def test_a_forged_callback_is_refused(stack: Stack) -> None:
    headers = {"X-Api-Key": CALLBACK_KEYS["justice"], "Content-Type": "application/json"}
    async with stack.client.post("/v1/callbacks/justice", data=b'{"errorCode": "0"}', headers=headers) as r:
        assert r.status == 401
    wrong_agency = {"X-Api-Key": CALLBACK_KEYS["social_insurance"]}
    async with stack.client.post("/v1/callbacks/justice", data=b"{}", headers=wrong_agency) as r:
        assert r.status == 403
