"""The gateway in-process on tests/plugins/justice/conf with the justice, police and social insurance
simulators beside it: the Decree 63 bundles run end to end, outputs of one step feeding the next."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from contracts import Gender
from contracts.identifiers import check_personal_id
from plugins.justice.demo import demo_dossiers as justice_dossiers
from plugins.justice.forms import BIRTH_REGISTRATION
from plugins.police.simulator import ACCEPTED as POLICE_ACCEPTED
from plugins.social_insurance.simulator import ACCEPTED as BHXH_ACCEPTED
from plugins.social_insurance.simulator import insurance_number
from tests.plugins.justice.support import (
    CALLBACK_KEYS,
    CENTRE,
    ServerFactory,
    Stack,
    birth_bundle,
    death_bundle,
    gateway_stack,
    sha256,
)


@pytest.fixture
async def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: ServerFactory,
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[Stack]:
    settings = {"social_insurance": {"token_ttl": 2}}
    async with gateway_stack(tmp_path, monkeypatch, aiohttp_server, unused_tcp_port_factory(), settings=settings) as s:
        yield s


async def assert_results_downloadable(stack: Stack, step: dict[str, Any]) -> None:
    """Every result document of a step comes back through the API, byte for byte what the agency sent."""
    assert step["results"], f"step {step['step']} has no result documents"
    for n, doc in enumerate(step["results"]):
        data, media_type = await stack.download(step["dossier_id"], n)
        assert (len(data), sha256(data), media_type) == (doc["size"], doc["sha256"], doc["media_type"])


async def test_birth_residence_and_health_card(stack: Stack) -> None:
    body = birth_bundle()
    view = await stack.run(body)
    assert view["state"] == "completed", view
    assert view["actions"] == []
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
    for step in view["steps"]:
        await assert_results_downloadable(stack, step)
    # Each step was delivered once, to its own agency, with all its documents whole.
    assert [stack.stats(a).get("accepted") for a in ("justice", "police", "social_insurance")] == [1, 1, 1]
    assert [stack.stats(a).get("documents_ok") for a in ("justice", "police", "social_insurance")] == [1, 1, 1]
    assert not any(stack.stats(a).get("duplicates") for a in ("justice", "police", "social_insurance"))
    assert not any(stack.stats(a).get("documents_refused") for a in ("justice", "police", "social_insurance"))


async def test_health_card_step_alone_after_birth(stack: Stack) -> None:
    body = {**birth_bundle(1), "steps": ["birth", "health_card"]}
    body["forms"] = {k: v for k, v in body["forms"].items() if k != "residence"}
    body["attachments"] = {"birth": body["attachments"]["birth"]}
    view = await stack.run(body)
    assert view["state"] == "completed", view
    assert [s["step"] for s in view["steps"]] == ["birth", "health_card"]
    assert not stack.sims["police"].app[POLICE_ACCEPTED]


async def test_death_residence_removal_and_funeral_allowance(stack: Stack) -> None:
    body = death_bundle()
    view = await stack.run(body)
    assert view["state"] == "completed", view
    steps = {s["step"]: s for s in view["steps"]}
    assert list(steps) == ["death", "residence_removal", "funeral"]
    assert steps["death"]["outputs"] == {"death_register_number": "1"}
    # Police removed the deceased on the strength of the death step's register entry.
    deceased = body["forms"]["death"]["deceased"]["personal_id"]
    (removal,) = stack.sims["police"].app[POLICE_ACCEPTED].values()
    assert (removal["maTTHC"], removal["soDinhDanh"], removal["soTrichLucKhaiTu"]) == ("1.004206", deceased, "1")
    assert steps["residence_removal"]["results"][0]["name"] == "Thông báo kết quả xóa đăng ký thường trú"
    assert steps["funeral"]["results"][0]["name"] == "Quyết định hưởng trợ cấp mai táng"
    for step in view["steps"]:
        await assert_results_downloadable(stack, step)
    stats = stack.stats("social_insurance")
    assert stats["tokens_issued"] >= 1
    assert stats.get("tokens_refused", 0) == 0


@pytest.mark.parametrize("chosen", [["death", "funeral"], ["death", "residence_removal"]])
async def test_death_bundle_with_the_steps_the_applicant_chose(stack: Stack, chosen: list[str]) -> None:
    view = await stack.run(death_bundle(chosen))
    assert view["state"] == "completed", view
    assert [s["step"] for s in view["steps"]] == chosen
    assert bool(stack.sims["police"].app[POLICE_ACCEPTED]) == ("residence_removal" in chosen)
    assert bool(stack.sims["social_insurance"].app[BHXH_ACCEPTED]) == ("funeral" in chosen)


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
