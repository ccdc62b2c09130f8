"""POST /v1/lookups/identity-verification: passed through to the police simulator, failures as problems."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.api.keys import STORE
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem, gateway_variant

IDENTITY_PATH = "/api/v1/dan-cu/xac-thuc"  # the police's identity check, behind the look-up

Make = Callable[[int], dict[str, Any]]
URL = "/v1/lookups/identity-verification"


def query_of(sub: dict[str, Any]) -> dict[str, str]:
    a = sub["applicant"]
    return {"personal_id": a["personal_id"], "full_name": a["full_name"], "date_of_birth": a["date_of_birth"]}


async def test_list_lookups(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/lookups", headers=harness.headers())
    items = (await resp.json())["items"]
    assert [(i["name"], i["agency"]) for i in items] == [("identity-verification", "police")]
    assert sorted(items[0]["input_schema"]["required"]) == ["date_of_birth", "full_name", "personal_id"]


async def test_match(harness: GatewayHarness, submission: Make) -> None:
    resp = await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())
    assert resp.status == 200
    assert await resp.json() == {"found": True, "match": True, "vneid_level": 2, "mismatched": []}
    assert (await harness.sim_stats())["lookups"] == 1


async def test_name_is_compared_without_case(harness: GatewayHarness, submission: Make) -> None:
    q = query_of(submission(0))
    q["full_name"] = f"  {q['full_name'].upper()} "
    assert (await (await harness.client.post(URL, json=q, headers=harness.headers())).json())["match"] is True


async def test_mismatch_on_the_wrong_name(harness: GatewayHarness, submission: Make) -> None:
    q = query_of(submission(0))
    q["full_name"] = "Nguyễn Văn Không Khớp"
    resp = await harness.client.post(URL, json=q, headers=harness.headers("operator"))
    assert resp.status == 200
    assert await resp.json() == {"found": True, "match": False, "vneid_level": 2, "mismatched": ["hoTen"]}


async def test_not_found(harness: GatewayHarness) -> None:
    q = {"personal_id": "001090000001", "full_name": "Trần Văn Vắng", "date_of_birth": "1990-01-01"}
    resp = await harness.client.post(URL, json=q, headers=harness.headers())
    assert resp.status == 200
    assert await resp.json() == {"found": False, "match": False, "vneid_level": 0, "mismatched": []}


async def test_invalid_query_is_422(harness: GatewayHarness) -> None:
    resp = await harness.client.post(URL, json={"personal_id": "12ab", "full_name": ""}, headers=harness.headers())
    problem = await assert_problem(resp, 422, "validation-failed")
    assert sorted(e["path"] for e in problem["errors"]) == ["date_of_birth", "full_name", "personal_id"]
    assert (await harness.sim_stats()).get("lookups", 0) == 0


async def test_unknown_lookup_is_404(harness: GatewayHarness) -> None:
    resp = await harness.client.post("/v1/lookups/land-parcel", json={}, headers=harness.headers())
    problem = await assert_problem(resp, 404, "not-found")
    assert problem["detail"] == "no agency answers the look-up 'land-parcel'"


async def test_agency_down_is_502(harness: GatewayHarness, submission: Make) -> None:
    await harness.set_faults(down=True)
    resp = await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())
    problem = await assert_problem(resp, 502, "upstream-failed")
    assert problem["agency"] == "police"
    assert "police: HTTP 503" in problem["detail"]
    assert (await harness.sim_stats())["refused_down"] == 1


async def test_garbled_answer_is_502(harness: GatewayHarness, submission: Make) -> None:
    await harness.set_faults(malformed_rate=1.0)
    resp = await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())
    problem = await assert_problem(resp, 502, "upstream-failed")
    assert "not JSON" in problem["detail"]


async def test_agency_timeout_is_504(harness: GatewayHarness, submission: Make, tmp_path: Path) -> None:
    await harness.set_faults(latency_ms=1500)
    async with gateway_variant(harness, tmp_path, police_timeout=0.3) as client:
        started = time.monotonic()
        resp = await client.post(URL, json=query_of(submission(0)), headers=harness.headers())
        elapsed = time.monotonic() - started
        problem = await assert_problem(resp, 504, "upstream-timeout")
    assert problem["agency"] == "police"
    assert problem["detail"] == "police did not answer in time"
    assert 0.3 <= elapsed < 1.4


async def test_nothing_is_asked_of_an_agency_paused_or_taken_for_down(
    harness: GatewayHarness, submission: Make
) -> None:
    operator = harness.headers("operator")
    pause = {"until": "1h", "reason": "nâng cấp"}
    assert (await harness.client.post("/v1/admin/agencies/police/pause", json=pause, headers=operator)).status == 200
    resp = await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())
    problem = await assert_problem(resp, 503, "unavailable")
    assert (problem["agency"], problem["detail"]) == ("police", "police is paused: nâng cấp")
    assert 3590 <= int(resp.headers["Retry-After"]) <= 3600
    assert (await harness.client.post("/v1/admin/agencies/police/resume", headers=operator)).status == 200

    await harness.set_faults(down=True)
    for i in range(6):  # deliveries fail until the breaker opens
        assert (await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())).status == 202
    for _ in range(200):
        resp = await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())
        if resp.status == 503:
            break
        await asyncio.sleep(0.02)
    problem = await assert_problem(resp, 503, "unavailable")
    assert problem["detail"].startswith("police is not answering")
    since = time.time()
    assert (await harness.client.post(URL, json=query_of(submission(0)), headers=harness.headers())).status == 503
    async with harness.client.session.get(str(harness.police.make_url("/_sim/calls")), params={"since": since}) as r:
        asked = [c for c in await r.json() if c["path"] == IDENTITY_PATH]
    assert asked == []  # deliveries may probe the agency; look-ups wait


async def test_every_answer_leaves_after_its_audit_record_when_look_ups_share_commits(
    harness: GatewayHarness, submission: Make
) -> None:
    store = harness.app[STORE]
    store._writer.patience = 5.0  # a gathering ends only when a look-up has its answer (or a write cannot wait)
    await harness.set_faults(latency_ms=100)  # every record is queued long before the first answer
    queries = [query_of(submission(i)) for i in range(12)]
    commits_before = store.commits
    answered = 0
    found_at_answer: list[tuple[int, int]] = []

    async def ask(query: dict[str, str]) -> None:
        nonlocal answered
        resp = await harness.client.post(URL, json=query, headers=harness.headers("operator"))
        assert resp.status == 200, await resp.text()
        answered += 1
        now = answered
        records = [r for r in await store.audit_log(limit=1000) if r.action == "lookup"]
        found_at_answer.append((now, len(records)))

    await asyncio.wait_for(asyncio.gather(*(ask(q) for q in queries)), 20)
    # Each answer left after its own record committed, so no answer finds fewer records than answers so far.
    assert all(records >= now for now, records in found_at_answer), found_at_answer
    assert (await store.verify_audit()).ok
    assert store.commits - commits_before < len(queries)  # records shared commits
