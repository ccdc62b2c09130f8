"""The agency asks for a missing document (status 5); the centre answers; the due date moves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from contracts.samples import pdf_attachment
from gateway.api.keys import STORE
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status


@pytest.fixture
def police_settings() -> dict[str, Any]:
    return {"supplement_rate": 1.0}


async def test_supplement_round_trip(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did = (await resp.json())["id"]
    asked = await wait_status(harness, did, 5)
    assert asked["status"] == 5
    events = (await (await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers())).json())[
        "events"
    ]
    request = events[-1]
    assert request["data"]["items"] == ["Giấy tờ, tài liệu chứng minh chỗ ở hợp pháp"]
    assert "due_at" in request["data"]

    # Answering a dossier that is not waiting for one is refused.
    other = await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())
    other_id = (await other.json())["id"]
    answer = {"note": "Bổ sung hợp đồng thuê nhà", "attachments": [pdf_attachment("HD01", "Hợp đồng thuê nhà", "x")]}
    await wait_status(harness, other_id, 5)

    resp = await harness.client.post(f"/v1/dossiers/{did}/supplements", json=answer, headers=harness.headers())
    assert resp.status == 202, await resp.text()
    after = await resp.json()
    assert after["status"] == 4
    assert datetime.fromisoformat(after["due_at"]) >= datetime.fromisoformat(asked["due_at"])
    final = await wait_status(harness, did, 9)
    assert final["status"] == 9
    assert (await harness.sim_stats())["supplements"] == 1

    # A second answer to a dossier no longer waiting is a conflict, not a second delivery.
    again = await harness.client.post(f"/v1/dossiers/{did}/supplements", json=answer, headers=harness.headers())
    assert again.status == 409
    assert (await again.json())["type"] == "urn:lienthong:problem:illegal-transition"

    # An answer without documents is a validation error with a field path.
    bad = await harness.client.post(
        f"/v1/dossiers/{other_id}/supplements", json={"note": "x", "attachments": []}, headers=harness.headers()
    )
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["path"] == "attachments"


@pytest.mark.parametrize("police_settings", [{"supplement_rate": 1.0, "supplement_due_days": 1.5 / 86400}])
async def test_a_deadline_passed_refuses_the_dossier_and_tells_the_agency(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did = (await resp.json())["id"]
    refused = await wait_status(harness, did, 3, timeout=20)  # asked for documents (5), then refused
    assert refused["status"] == 3
    events = (await (await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers())).json())[
        "events"
    ]
    assert [e["status"] for e in events][-2:] == [5, 3]
    assert events[-1]["actor"] == "gateway" and events[-1]["note"].startswith("the documents asked for were not")

    for _ in range(200):  # the withdrawal goes out after the sweep, as a delivery
        if (await harness.sim_stats()).get("withdrawals"):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a second sweep or a retried delivery would show here
    stats = await harness.sim_stats()
    assert (stats.get("withdrawals"), stats.get("duplicates", 0)) == (1, 0)
    withdraw = [j for j in await harness.app[STORE].jobs(limit=1000) if j.step == "withdraw"]
    assert [(str(j.dossier_id), j.state) for j in withdraw] == [(did, "done")]
    late = {"note": "x", "attachments": [pdf_attachment("HD01", "Hợp đồng thuê nhà", "x")]}
    again = await harness.client.post(f"/v1/dossiers/{did}/supplements", json=late, headers=harness.headers())
    assert again.status == 409
