"""API keys and scopes: who may submit, read and administer, and which dossiers each client sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem

Make = Callable[[int], dict[str, Any]]


async def _submit(h: GatewayHarness, body: dict[str, Any], who: str = "centre-hanoi") -> dict[str, Any]:
    resp = await h.client.post("/v1/dossiers", json=body, headers=h.headers(who))
    assert resp.status == 202, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_no_key_is_401(harness: GatewayHarness, submission: Make) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0))
    problem = await assert_problem(resp, 401, "unauthenticated")
    assert problem["detail"] == "send your API key in the X-Api-Key header"
    assert resp.headers["WWW-Authenticate"] == 'ApiKey realm="lienthong"'


@pytest.mark.parametrize("key", ["not-a-key", "demo-centre-hanoi-key-7Qk", "DEMO-CENTRE-HANOI-KEY-7QK2"])
async def test_unknown_key_is_401(harness: GatewayHarness, key: str) -> None:
    resp = await harness.client.get("/v1/dossiers", headers={"X-Api-Key": key})
    problem = await assert_problem(resp, 401, "unauthenticated")
    assert problem["detail"] == "unknown API key"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/openapi.json"])
async def test_public_paths_need_no_key(harness: GatewayHarness, path: str) -> None:
    resp = await harness.client.get(path)
    assert resp.status == 200


@pytest.mark.parametrize("path", ["/v1/procedures", "/v1/lookups", "/v1/admin/deliveries", "/metrics"])
async def test_other_paths_need_a_key(harness: GatewayHarness, path: str) -> None:
    await assert_problem(await harness.client.get(path), 401, "unauthenticated")


async def test_portal_cannot_submit(harness: GatewayHarness, submission: Make) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers("portal"))
    problem = await assert_problem(resp, 403, "forbidden")
    assert problem["detail"] == "client 'portal' lacks the 'submit' scope"
    listed = await (await harness.client.get("/v1/dossiers", headers=harness.headers("portal"))).json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("centre-hanoi", "GET", "/v1/admin/deliveries"),
        ("portal", "POST", "/v1/lookups/identity-verification"),
        ("police-callbacks", "GET", "/v1/dossiers"),
        ("operator", "POST", "/v1/dossiers"),
        ("centre-hcm", "POST", "/v1/callbacks/police"),
    ],
)
async def test_scopes_are_enforced(harness: GatewayHarness, who: str, method: str, path: str) -> None:
    resp = await harness.client.request(method, path, json={}, headers=harness.headers(who))
    problem = await assert_problem(resp, 403, "forbidden")
    assert problem["detail"].startswith(f"client {who!r} lacks the ")


async def test_centre_cannot_see_another_centres_dossier(harness: GatewayHarness, submission: Make) -> None:
    accepted = await _submit(harness, submission(0), "centre-hanoi")
    for ref in (accepted["id"], accepted["code"]):
        for suffix in ("", "/events"):
            resp = await harness.client.get(f"/v1/dossiers/{ref}{suffix}", headers=harness.headers("centre-hcm"))
            problem = await assert_problem(resp, 404, "not-found")
            assert problem["detail"] == f"no dossier {ref} for client 'centre-hcm'"
    # The same answer as for a dossier that does not exist: existence is not revealed.
    missing = await harness.client.get("/v1/dossiers/000.00.01.H26-251122-9999", headers=harness.headers("centre-hcm"))
    await assert_problem(missing, 404, "not-found")


async def test_centres_list_only_their_own(harness: GatewayHarness, submission: Make) -> None:
    hanoi = await _submit(harness, submission(0), "centre-hanoi")
    hcm = await _submit(harness, submission(1), "centre-hcm")
    seen = await (
        await harness.client.get("/v1/dossiers?client=centre-hanoi", headers=harness.headers("centre-hcm"))
    ).json()
    assert [d["id"] for d in seen["items"]] == [hcm["id"]]
    seen = await (await harness.client.get("/v1/dossiers", headers=harness.headers("centre-hanoi"))).json()
    assert [d["id"] for d in seen["items"]] == [hanoi["id"]]


@pytest.mark.parametrize("reader", ["portal", "operator"])
async def test_portal_and_operator_read_any_dossier(harness: GatewayHarness, submission: Make, reader: str) -> None:
    hanoi = await _submit(harness, submission(0), "centre-hanoi")
    hcm = await _submit(harness, submission(1), "centre-hcm")
    for accepted in (hanoi, hcm):
        resp = await harness.client.get(f"/v1/dossiers/{accepted['code']}", headers=harness.headers(reader))
        assert resp.status == 200
        assert (await resp.json())["id"] == accepted["id"]
    listed = await (await harness.client.get("/v1/dossiers", headers=harness.headers(reader))).json()
    assert sorted(d["id"] for d in listed["items"]) == sorted([hanoi["id"], hcm["id"]])
    only = await (await harness.client.get("/v1/dossiers?client=centre-hcm", headers=harness.headers(reader))).json()
    assert [d["id"] for d in only["items"]] == [hcm["id"]]


async def test_operator_sees_deliveries(harness: GatewayHarness, submission: Make) -> None:
    accepted = await _submit(harness, submission(0))
    resp = await harness.client.get("/v1/admin/deliveries", headers=harness.headers("operator"))
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert [i["dossier_id"] for i in items] == [accepted["id"]]
