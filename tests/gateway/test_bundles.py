"""Bundles (liên thông): the state derived from the steps, choosing steps, and against the real justice,
police and social insurance simulators over loopback: a step failing for good, a dead step retried,
a supplement asked for inside a bundle, the remaining steps cancelled, and a crash between two steps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contracts import DossierStatus
from contracts.bundle import BundleStepView, StepState
from contracts.calendar import due_after_supplement, supplement_deadline
from contracts.samples import pdf_attachment
from gateway.bundles import BundleSpec, BundleStepSpec, derive_state
from gateway.config import Config
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.launcher import SimSpec
from gateway.sandbox.launcher import Stack as ProcessStack
from plugins.police.simulator import ACCEPTED as POLICE_ACCEPTED
from plugins.social_insurance.simulator import ACCEPTED as BHXH_ACCEPTED
from tests.browser.webdriver import headless_chromium, needs_browser
from tests.gateway.test_dashboard import wait_text
from tests.plugins.justice.support import (
    CALLBACK_KEYS,
    CENTRE,
    CONF,
    SECRETS,
    ServerFactory,
    Stack,
    birth_bundle,
    death_bundle,
    gateway_stack,
)

# -- the derived state --------------------------------------------------------------------------------

S = DossierStatus


def step(status: DossierStatus, delivery: StepState, name: str = "s") -> BundleStepView:
    return BundleStepView(
        step=name,
        procedure_code="1.001193",
        dossier_id=uuid.uuid4(),
        dossier_code="000.00.01.H26-261120-0001",
        agency="justice",
        status=status,
        delivery=delivery,
        attempts=1,
    )


DONE = step(S.FINISHED, "delivered")
WAITING = step(S.RECEIVED, "waiting")


@pytest.mark.parametrize(
    ("steps", "state", "actions"),
    [
        pytest.param([DONE, step(S.RETURNED, "delivered"), DONE], "completed", [], id="all-finished"),
        pytest.param([step(S.RECEIVED, "pending"), WAITING, WAITING], "in_progress", ["cancel_remaining"], id="start"),
        pytest.param([DONE, step(S.PROCESSING, "delivered"), WAITING], "in_progress", ["cancel_remaining"], id="mid"),
        pytest.param([DONE, DONE, step(S.PROCESSING, "in_flight")], "in_progress", [], id="last-step-running"),
        pytest.param(
            [DONE, step(S.RECEIVED, "dead"), WAITING], "action_required", ["retry", "cancel_remaining"], id="dead"
        ),
        # A dead last step can still be given up: cancel_remaining withdraws it.
        pytest.param([DONE, DONE, step(S.RECEIVED, "dead")], "action_required", ["retry", "cancel_remaining"]),
        # A refusal cannot be retried; the rest waits for the centre to cancel it.
        pytest.param([DONE, step(S.STOPPED, "delivered"), WAITING], "action_required", ["cancel_remaining"]),
        pytest.param([DONE, DONE, step(S.STOPPED, "delivered")], "stopped", [], id="last-step-refused"),
        pytest.param(
            [DONE, step(S.SUPPLEMENT_REQUESTED, "delivered"), WAITING],
            "supplement_requested",
            ["supplement", "cancel_remaining"],
            id="supplement",
        ),
        pytest.param(
            [DONE, step(S.SUPPLEMENT_REQUESTED, "delivered"), step(S.WITHDRAWN, "cancelled")],
            "supplement_requested",
            ["supplement"],
            id="supplement-rest-cancelled",
        ),
        # The answer to a supplement is being delivered: the step runs, the cancelled rest stays cancelled.
        pytest.param([DONE, step(S.PROCESSING, "pending"), step(S.WITHDRAWN, "cancelled")], "in_progress", []),
        pytest.param([DONE, DONE, step(S.WITHDRAWN, "cancelled")], "cancelled", [], id="rest-cancelled"),
        pytest.param([step(S.WITHDRAWN, "cancelled")] * 3, "cancelled", [], id="all-cancelled"),
    ],
)
def test_derive_state(steps: list[BundleStepView], state: str, actions: list[str]) -> None:
    assert derive_state(steps) == (state, actions)


# -- choosing steps -----------------------------------------------------------------------------------


def spec(*, birth_optional: bool = False) -> BundleSpec:
    return BundleSpec(
        id="birth-test",
        name="test",
        step=[
            BundleStepSpec(id="birth", procedure="1.001193", optional=birth_optional),
            BundleStepSpec(
                id="residence", procedure="1.004194", optional=True, inputs={"pid": "birth.child_personal_id"}
            ),
            BundleStepSpec(
                id="health_card", procedure="1.003015", optional=True, inputs={"pid": "birth.child_personal_id"}
            ),
        ],
    )


def test_choose_steps() -> None:
    assert [s.id for s in spec().choose(None)] == ["birth", "residence", "health_card"]
    assert [s.id for s in spec().choose(["health_card", "birth"])] == ["birth", "health_card"]  # bundle order
    with pytest.raises(ValueError, match=r"steps \['birth'\] cannot be left out"):
        spec().choose(["residence", "health_card"])
    with pytest.raises(ValueError, match="choose at least 2 steps"):
        spec().choose(["birth"])
    with pytest.raises(ValueError, match=r"unknown steps \['tax'\]"):
        spec().choose(["birth", "tax"])
    with pytest.raises(ValueError, match=r"step 'residence' needs 'birth\.child_personal_id': choose step 'birth' too"):
        spec(birth_optional=True).choose(["residence", "health_card"])


def test_a_step_takes_inputs_only_from_earlier_steps() -> None:
    with pytest.raises(ValueError, match="does not come before it"):
        BundleSpec(
            id="x",
            name="x",
            step=[
                BundleStepSpec(id="a", procedure="1.001193", inputs={"n": "b.number"}),
                BundleStepSpec(id="b", procedure="1.000656"),
            ],
        )


# -- against the simulators ---------------------------------------------------------------------------

StackFactory = Callable[..., Any]


@pytest.fixture
def make_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: ServerFactory,
    unused_tcp_port_factory: Callable[[], int],
) -> StackFactory:
    def make(**kwargs: Any) -> Any:
        return gateway_stack(tmp_path, monkeypatch, aiohttp_server, unused_tcp_port_factory(), **kwargs)

    return make


@pytest.fixture
async def stack(make_stack: StackFactory) -> AsyncIterator[Stack]:
    async with make_stack() as s:
        yield s


def by_step(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in view["steps"]}


async def problem(stack: Stack, method: str, path: str, status: int, json: Any = None) -> dict[str, Any]:
    async with stack.client.request(method, path, json=json, headers=CENTRE) as r:
        assert r.status == status, await r.text()
        assert r.content_type == "application/problem+json"
        body: dict[str, Any] = await r.json()
    return body


async def test_leaving_out_a_step_whose_output_a_chosen_step_needs(make_stack: StackFactory) -> None:
    def add_test_bundle(config: Config) -> None:
        config.bundles["birth-test"] = spec(birth_optional=True)

    async with make_stack(adjust=add_test_bundle) as stack:
        body = {**birth_bundle(), "bundle": "birth-test", "steps": ["residence", "health_card"]}
        body["forms"] = {k: v for k, v in body["forms"].items() if k != "birth"}
        body["attachments"] = {"residence": body["attachments"]["residence"]}
        err = await problem(stack, "POST", "/v1/bundles", 422, body)
        assert err["type"] == "urn:lienthong:problem:validation-failed"
        assert err["errors"] == [
            {
                "path": "steps",
                "message": "step 'residence' needs 'birth.child_personal_id': choose step 'birth' too",
                "code": "invalid_choice",
            }
        ]
        # In the real bundle the birth step may not be left out at all.
        err = await problem(stack, "POST", "/v1/bundles", 422, {**body, "bundle": "birth-residence-health-card"})
        assert err["errors"][0]["path"] == "steps"
        assert "cannot be left out" in err["errors"][0]["message"]
        # A form for a step that was not chosen is a field error, not silently dropped.
        full = birth_bundle()
        err = await problem(stack, "POST", "/v1/bundles", 422, {**full, "steps": ["birth", "health_card"]})
        assert [e["path"] for e in err["errors"]] == ["forms.residence"]
        assert not stack.stats("justice").get("accepted")


async def test_a_step_failing_for_good_waits_for_the_centre_then_the_rest_is_cancelled(stack: Stack) -> None:
    body = birth_bundle()
    body["forms"]["residence"]["household_head_id"] = "001090000001"  # not in the population register
    bid = (await stack.submit(body))["id"]
    view = await stack.wait_bundle(bid)
    assert view["state"] == "action_required", view
    assert view["actions"] == ["retry", "cancel_remaining"]
    steps = by_step(view)
    assert (steps["birth"]["status"], steps["birth"]["delivery"]) == (9, "delivered")
    residence = steps["residence"]
    assert (residence["status"], residence["delivery"], residence["attempts"]) == (2, "dead", 1)
    assert "AgencyRejected" in residence["last_error"] and "201" in residence["last_error"]
    # The step after it waits: nothing went to social insurance.
    await asyncio.sleep(0.3)
    assert by_step(await stack.bundle(bid))["health_card"]["delivery"] == "waiting"
    assert not stack.sims["social_insurance"].app[BHXH_ACCEPTED]
    # The operator's dashboard lists it with the reason, until the centre acts.
    [listed] = (await stack.call("GET", "/v1/admin/overview", who="operator"))["bundles_needing_action"]
    assert (listed["id"], listed["state"], listed["client_id"]) == (bid, "action_required", "centre-hanoi")
    assert "201" in next(s["last_error"] for s in listed["steps"] if s["step"] == "residence")

    cancelled = await stack.call("POST", f"/v1/bundles/{bid}/cancel")
    assert cancelled["cancelled"] == 2
    after = cancelled["bundle"]
    assert (after["state"], after["actions"]) == ("cancelled", [])
    assert [(s["status"], s["delivery"]) for s in after["steps"]] == [
        (9, "delivered"),
        (7, "cancelled"),
        (7, "cancelled"),
    ]
    # Nothing is left to cancel or retry, and the API says so.
    for action in ("cancel", "retry"):
        err = await problem(stack, "POST", f"/v1/bundles/{bid}/{action}", 409)
        assert err["type"] == "urn:lienthong:problem:conflict"
        assert err["actions"] == []
    events = await stack.call("GET", f"/v1/dossiers/{residence['dossier_id']}/events")
    assert events["events"][-1]["note"] == "remaining steps of the bundle cancelled"
    assert (await stack.call("GET", "/v1/admin/overview", who="operator"))["bundles_needing_action"] == []
    await asyncio.sleep(0.2)
    assert not stack.sims["social_insurance"].app[BHXH_ACCEPTED]
    assert not stack.stats("police").get("accepted")


@needs_browser
async def test_the_dashboard_shows_a_bundle_waiting_for_its_centre(stack: Stack, tmp_path: Path) -> None:
    body = birth_bundle()
    body["forms"]["residence"]["household_head_id"] = "001090000001"  # not in the population register
    bid = (await stack.submit(body))["id"]
    assert (await stack.wait_bundle(bid))["state"] == "action_required"
    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(str(stack.client.make_url("/dashboard")))
        await browser.type(await browser.find("#key"), DEMO_KEYS["operator"])
        await browser.click(await browser.find("#connect"))
        row = await wait_text(browser, f'#bundles tr[data-bundle="{bid}"]', lambda t: "action required" in t)
        assert "centre-hanoi" in row and "residence: status 2, dead" in row and "201" in row
        assert "retry, cancel remaining" in row
        await browser.screenshot(tmp_path / "dashboard-bundles.png")


async def test_a_dead_step_is_retried_once_the_agency_is_back(make_stack: StackFactory) -> None:
    # No breaker to hold the step, and a retry budget shorter than the first backoff: dead after 2 attempts.
    async with make_stack(env={"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01"}) as stack:
        await stack.faults("police", down=True)
        body = birth_bundle()
        bid = (await stack.submit(body))["id"]
        view = await stack.wait_bundle(bid)
        assert (view["state"], view["actions"]) == ("action_required", ["retry", "cancel_remaining"]), view
        residence = by_step(view)["residence"]
        assert (residence["delivery"], residence["attempts"]) == ("dead", 2)
        assert "503" in residence["last_error"]

        await stack.faults("police", down=False)
        retried = await stack.call("POST", f"/v1/bundles/{bid}/retry")
        assert retried["retried"] == 1
        assert retried["bundle"]["state"] == "in_progress"
        view = await stack.wait_bundle(bid)
        assert view["state"] == "completed", view
        steps = by_step(view)
        pid = steps["birth"]["outputs"]["child_personal_id"]
        assert [a["soDinhDanh"] for a in stack.sims["police"].app[POLICE_ACCEPTED].values()] == [pid]
        assert steps["residence"]["attempts"] == 1  # counted afresh after the retry
        assert stack.stats("police")["refused_down"] == 2


@pytest.mark.parametrize("agency_deadline", [True, False], ids=["agency-deadline", "default-deadline"])
async def test_a_supplement_asked_inside_a_bundle(make_stack: StackFactory, agency_deadline: bool) -> None:
    police = {"supplement_rate": 1.0} | ({} if agency_deadline else {"supplement_due_days": None})
    async with make_stack(settings={"police": police}) as stack:
        bid = (await stack.submit(birth_bundle()))["id"]
        view = await stack.wait_bundle(bid)
        assert (view["state"], view["actions"]) == ("supplement_requested", ["supplement", "cancel_remaining"]), view
        residence = by_step(view)["residence"]
        asked = residence["supplement"]
        assert residence["status"] == 5
        assert asked["requested_by"] == "police"
        assert asked["items"] == ["Giấy tờ, tài liệu chứng minh chỗ ở hợp pháp"]
        requested_at = datetime.fromisoformat(asked["requested_at"])
        if agency_deadline:  # the police simulator names 9 calendar days
            assert (datetime.fromisoformat(asked["due_at"]) - requested_at).days == 9
        else:  # none named: 7 working days
            assert datetime.fromisoformat(asked["due_at"]) == supplement_deadline(requested_at)
        did = residence["dossier_id"]
        before = await stack.call("GET", f"/v1/dossiers/{did}")
        assert before["supplements"] == [asked]

        answer = {
            "note": "Bổ sung giấy xác nhận chỗ ở hợp pháp",
            "attachments": [pdf_attachment("CT07", "Giấy tờ chứng minh chỗ ở hợp pháp", "x")],
        }
        after = await stack.call("POST", f"/v1/dossiers/{did}/supplements", json=answer, status=202)
        assert after["status"] == 4
        (request,) = after["supplements"]
        answered_at = datetime.fromisoformat(request["answered_at"])
        old_due = datetime.fromisoformat(before["due_at"])
        # The time the dossier waited on the applicant does not count against the agency.
        assert datetime.fromisoformat(request["dossier_due_before"]) == old_due
        expected = due_after_supplement(old_due, requested_at, answered_at)
        assert datetime.fromisoformat(request["dossier_due_after"]) == expected
        assert datetime.fromisoformat(after["due_at"]) == expected

        view = await stack.wait_bundle(bid)
        assert view["state"] == "completed", view
        assert by_step(view)["residence"]["supplement"] is None
        assert stack.stats("police")["supplements"] == 1
        assert len(stack.sims["social_insurance"].app[BHXH_ACCEPTED]) == 1
        # A second answer is a conflict, not a second delivery.
        err = await problem(stack, "POST", f"/v1/dossiers/{did}/supplements", 409, answer)
        assert err["type"] == "urn:lienthong:problem:illegal-transition"


async def test_cancelling_the_remaining_steps_while_an_agency_waits_for_documents(make_stack: StackFactory) -> None:
    async with make_stack(settings={"police": {"supplement_rate": 1.0}}) as stack:
        bid = (await stack.submit(birth_bundle()))["id"]
        await stack.wait_bundle(bid)
        cancelled = await stack.call("POST", f"/v1/bundles/{bid}/cancel")
        assert cancelled["cancelled"] == 1  # the health card; the residence step is with the police
        view = cancelled["bundle"]
        assert (view["state"], view["actions"]) == ("supplement_requested", ["supplement"])
        residence = by_step(view)["residence"]
        answer = {"attachments": [pdf_attachment("CT07", "Giấy tờ chứng minh chỗ ở hợp pháp", "x")]}
        await stack.call("POST", f"/v1/dossiers/{residence['dossier_id']}/supplements", json=answer, status=202)
        view = await stack.wait_bundle(bid, lambda v: by_step(v)["residence"]["status"] == 9)
        assert (view["state"], view["actions"]) == ("cancelled", [])
        assert [s["status"] for s in view["steps"]] == [9, 9, 7]
        await asyncio.sleep(0.2)
        assert not stack.sims["social_insurance"].app[BHXH_ACCEPTED]


async def test_an_agency_refusing_the_last_step_stops_the_bundle(make_stack: StackFactory) -> None:
    # Social insurance keeps another register: it has no record of the deceased and refuses the claim.
    async with make_stack(seeds={"social_insurance": 8}) as stack:
        view = await stack.run(death_bundle())
        assert (view["state"], view["actions"]) == ("stopped", []), view
        assert [s["status"] for s in view["steps"]] == [9, 9, 8]
        events = await stack.call("GET", f"/v1/dossiers/{view['steps'][2]['dossier_id']}/events")
        assert events["events"][-1]["note"] == "Không tìm thấy quá trình tham gia BHXH của người đã mất"


async def test_the_same_bundle_submitted_twice_with_one_key(stack: Stack) -> None:
    body, key = birth_bundle(), {"Idempotency-Key": "bundle-0001", **CENTRE}
    async with stack.client.post("/v1/bundles", json=body, headers=key) as r:
        assert r.status == 202
        first = await r.json()
    async with stack.client.post("/v1/bundles", json=body, headers=key) as r:
        assert r.status == 200
        assert (await r.json())["id"] == first["id"]
    async with stack.client.post("/v1/bundles", json=birth_bundle(1), headers=key) as r:  # same key, new body
        assert r.status == 409
        problem = await r.json()
        assert problem["type"].endswith("idempotency-key-reused") and problem["bundle_id"] == first["id"]
    assert (await stack.wait_bundle(first["id"]))["state"] == "completed"
    assert stack.stats("justice")["accepted"] == 1


# -- a crash between two steps, with real processes ---------------------------------------------------


def process_sims(police_faults: str) -> list[SimSpec]:
    return [
        SimSpec(
            kind=agency,
            agency=agency,
            url_env=f"{agency.upper()}_URL",
            secret_env=f"{agency.upper()}_SECRET",
            secret=SECRETS[agency],
            callback_key=CALLBACK_KEYS[agency],
            # The police answers its callback after the restart: the kill is between the steps.
            processing_delay=1.5 if agency == "police" else 0.1,
            faults=police_faults if agency == "police" else None,
        )
        for agency in ("justice", "police", "social_insurance")
    ]


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers=CENTRE) as r:
        return await r.json()


async def poll(session: aiohttp.ClientSession, url: str, until: Callable[[Any], bool], timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await get_json(session, url)
        if until(got) or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("police_faults", "killed_when"),
    [
        # The police is down: the residence step is queued for another attempt when the gateway dies.
        pytest.param('{"down": true}', "queued", id="before-delivery"),
        # The police records the residence step but its answer is late: the gateway dies not knowing.
        pytest.param('{"answer_delay_ms": 3000}', "sent", id="answer-lost"),
    ],
)
async def test_sigkill_between_steps_resumes_and_repeats_nothing(
    tmp_path: Path, police_faults: str, killed_when: str
) -> None:
    stack = ProcessStack(CONF, tmp_path, process_sims(police_faults), extra_env={"LIENTHONG_RETRY_BASE": "0.2"})
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        police = stack.sim("police").url
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{stack.gateway_url}/v1/bundles", json=birth_bundle(), headers=CENTRE) as r:
                assert r.status == 202, await r.text()
                bid = (await r.json())["id"]
            url = f"{stack.gateway_url}/v1/bundles/{bid}"
            if killed_when == "queued":
                view = await poll(
                    session, url, lambda v: v["steps"][1]["attempts"] >= 1 and v["steps"][1]["last_error"]
                )
                assert view["steps"][0]["status"] == 9, view
                assert view["steps"][1]["delivery"] in ("pending", "in_flight"), view
            else:
                await poll(session, f"{police}/_sim/accepted", lambda a: len(a) == 1)
                view = await get_json(session, url)
                assert view["steps"][0]["status"] == 9, view
                assert (view["steps"][1]["status"], view["steps"][1]["delivery"]) == (2, "in_flight"), view
            await gw.kill()
            async with session.post(f"{police}/_sim/faults", json={"down": False, "answer_delay_ms": 0}) as r:
                assert r.status == 200
            await stack.start_gateway()  # the same database file
            view = await poll(session, url, lambda v: v["state"] != "in_progress")
            assert view["state"] == "completed", view
            stats = {s.agency: await get_json(session, f"{s.url}/_sim/stats") for s in stack.sims}
            accepted = {s.agency: await get_json(session, f"{s.url}/_sim/accepted") for s in stack.sims}
    finally:
        await stack.stop()
    # Each step reached its agency once; the birth step was not sent again after the restart.
    assert {a: len(v) for a, v in accepted.items()} == {"justice": 1, "police": 1, "social_insurance": 1}
    assert stats["justice"].get("duplicates", 0) == 0
    assert stats["social_insurance"].get("duplicates", 0) == 0
    pid = view["steps"][0]["outputs"]["child_personal_id"]
    assert accepted["police"][0]["soDinhDanh"] == pid
    if killed_when == "sent":
        # The gateway sent the step again under the same key and the police recognised it.
        assert stats["police"]["duplicates"] >= 1
    else:
        assert stats["police"]["refused_down"] >= 1
        assert stats["police"].get("duplicates", 0) == 0
