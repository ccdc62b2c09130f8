"""A dossier goes in over HTTP, reaches the police simulator, and comes back finished."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.gateway.conftest import GatewayHarness


async def wait_status(
    h: GatewayHarness, did: str, status: int, timeout: float = 10.0, who: str = "centre-hanoi"
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await h.client.get(f"/v1/dossiers/{did}", headers=h.headers(who))
        body: dict[str, Any] = await resp.json()
        if body["status"] == status or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_submit_deliver_finish(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert resp.status == 202, await resp.text()
    accepted = await resp.json()
    assert accepted["code"].startswith("000.00.01.H26-")
    final = await wait_status(harness, accepted["id"], 9)
    assert final["status"] == 9
    assert final["results"][0]["name"].startswith("Thông báo kết quả")
    events = await (await harness.client.get(f"/v1/dossiers/{accepted['id']}/events", headers=harness.headers())).json()
    assert [e["status"] for e in events["events"]] == [2, 4, 9]
    assert (await harness.sim_stats())["accepted"] == 1
    download = await harness.client.get(f"/v1/dossiers/{accepted['id']}/results/0", headers=harness.headers())
    assert download.status == 200
    assert download.content_type == "application/pdf"
    assert (await download.read()).startswith(b"%PDF-1.4")
    missing = await harness.client.get(f"/v1/dossiers/{accepted['id']}/results/5", headers=harness.headers())
    assert missing.status == 404
