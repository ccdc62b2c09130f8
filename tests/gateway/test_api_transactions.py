"""The transaction browser over HTTP against the police simulator: a delivery that failed twice then
succeeded shows three attempts in the dossier's timeline, bodies captured and masked; the deliveries list
honours agency= and dossier=; a filtered re-run after its dry-run count, audited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status

# A second attempt ~1 s after the first, a third ~2 s after the second: time to bring the agency back.
SLOW_RETRIES = pytest.mark.parametrize("gateway_env", [{"LIENTHONG_RETRY_BASE": "1"}])


async def attempts_of(harness: GatewayHarness, did: str, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        resp = await harness.client.get(f"/v1/admin/attempts?dossier={did}", headers=harness.headers("operator"))
        items: list[dict[str, Any]] = (await resp.json())["items"]
        if len(items) >= n or loop.time() > deadline:
            return items
        await asyncio.sleep(0.05)


@SLOW_RETRIES
async def test_two_failures_then_a_success_make_three_attempts_in_the_timeline(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    await harness.set_faults(down=True)
    sub = submission(0)
    resp = await harness.client.post("/v1/dossiers", json=sub, headers=harness.headers())
    did, code = (await resp.json())["id"], (await resp.json())["code"]
    assert [a["outcome"] for a in await attempts_of(harness, did, 2)] == ["failed", "failed"]
    await harness.set_faults(down=False)
    await wait_status(harness, did, 9)

    op = harness.headers("operator")
    body = await (await harness.client.get(f"/v1/admin/dossiers/{code}/timeline", headers=op)).json()
    tried = [i for i in body["items"] if i["kind"] == "attempt"]
    assert [(a["attempt"], a["outcome"]) for a in tried] == [(1, "failed"), (2, "failed"), (3, "delivered")]
    assert all("503" in a["error"] for a in tried[:2]) and tried[2]["agency_ref"]
    assert all(a["duration_ms"] >= 0 for a in tried)
    # Events and attempts together: received, the three attempts, then the agency's news.
    kinds = [(i["kind"], i.get("status") or i.get("attempt")) for i in body["items"]]
    assert kinds == [("event", 2), ("attempt", 1), ("attempt", 2), ("attempt", 3), ("event", 4), ("event", 9)]
    # The bodies are captured with the applicant's personal id and name masked.
    personal_id = sub["applicant"]["personal_id"]
    assert personal_id not in tried[2]["request_body"] and personal_id[:3] in tried[2]["request_body"]
    assert sub["applicant"]["full_name"] not in tried[2]["request_body"]
    assert "agency_ref" in tried[2]["response_body"]
    audit = await (await harness.client.get(f"/v1/admin/audit?dossier={did}", headers=op)).json()
    assert "timeline" in [r["action"] for r in audit["items"]]


async def test_deliveries_honour_agency_and_dossier(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    op = harness.headers("operator")
    ids = []
    for i in range(2):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        ids.append((await resp.json())["id"])
    for did in ids:
        await wait_status(harness, did, 9)
    every = (await (await harness.client.get("/v1/admin/deliveries?agency=police", headers=op)).json())["items"]
    assert sorted(j["dossier_id"] for j in every) == sorted(ids)
    one = (await (await harness.client.get(f"/v1/admin/deliveries?dossier={ids[1]}", headers=op)).json())["items"]
    assert [j["dossier_id"] for j in one] == [ids[1]]
    none = await harness.client.get("/v1/admin/deliveries?dossier=000.00.01.H26-991231-9999", headers=op)
    assert (await none.json())["items"] == []
    assert (await (await harness.client.get("/v1/admin/deliveries?state=dead", headers=op)).json())["items"] == []
    later = await harness.client.get("/v1/admin/deliveries?from=2099-01-01T00:00:00Z", headers=op)
    assert (await later.json())["items"] == []
    bad = await harness.client.get("/v1/admin/deliveries?agency=tax&state=lost", headers=op)
    assert bad.status == 400
    assert sorted(e["path"] for e in (await bad.json())["errors"]) == ["query.agency", "query.state"]


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01"}])
async def test_a_filtered_rerun_after_a_dry_run_count(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    op = harness.headers("operator")
    await harness.set_faults(down=True)
    ids = []
    for i in range(3):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        ids.append((await resp.json())["id"])
    for _ in range(200):
        dead = (await (await harness.client.get("/v1/admin/deliveries?state=dead", headers=op)).json())["items"]
        if len(dead) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(dead) == 3
    await harness.set_faults(down=False)
    chosen = {"dossier": ids[0], "state": "dead", "error": "503"}
    dry = await harness.client.post("/v1/admin/deliveries/rerun", json=chosen | {"dry_run": True}, headers=op)
    assert await dry.json() == {"dry_run": True, "matched": 1}
    assert len((await (await harness.client.get("/v1/admin/deliveries?state=dead", headers=op)).json())["items"]) == 3
    done = await harness.client.post("/v1/admin/deliveries/rerun", json=chosen, headers=op)
    assert await done.json() == {"dry_run": False, "rerun": 1}
    await wait_status(harness, ids[0], 9)
    left = (await (await harness.client.get("/v1/admin/deliveries?state=dead", headers=op)).json())["items"]
    assert sorted(j["dossier_id"] for j in left) == sorted(ids[1:])
    [record] = [
        r
        for r in (await (await harness.client.get("/v1/admin/audit", headers=op)).json())["items"]
        if r["action"] == "rerun"
    ]
    assert record["detail"]["rerun"] == 1 and record["dossier_id"] == ids[0]
    # Delivered jobs are sent again only with a filter; bad filters are named.
    refused = await harness.client.post("/v1/admin/deliveries/rerun", json={"state": "done"}, headers=op)
    assert refused.status == 422
    bad = await harness.client.post("/v1/admin/deliveries/rerun", json={"state": "leased", "ids": "7"}, headers=op)
    assert sorted(e["path"] for e in (await bad.json())["errors"]) == ["ids", "state"]
