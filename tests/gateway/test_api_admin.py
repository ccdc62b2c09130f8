"""Operators' endpoints for agency outages: pausing and resuming (checked, audited), the endpoints' state
with and without connectivity checks, replays by agency and time, and the metrics of breakers and holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway.conftest import GatewayHarness

Make = Callable[[int], dict[str, Any]]


async def post(h: GatewayHarness, path: str, body: Any = None, who: str = "operator") -> tuple[int, Any]:
    resp = await h.client.post(path, json=body, headers=h.headers(who))
    return resp.status, await resp.json()


def soon(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"until": soon()}, [("reason", "why, in 1 to 500 characters")]),
        ({"until": "2020-01-01T00:00+07:00", "reason": "x"}, [("until", "a time to come")]),
        ({"reason": "x"}, [("until", "a date and time, or a duration")]),
        ({"until": "tomorrow", "reason": "x"}, None),
        ({"until": soon(), "reason": "x", "endpoint": "provincial"}, [("endpoint", "one of: national")]),
        ({"until": soon(), "reason": " " * 3}, [("reason", "why, in 1 to 500 characters")]),
    ],
)
async def test_a_pause_with_bad_fields_is_refused_and_changes_nothing(
    harness: GatewayHarness, body: dict[str, Any], errors: list[tuple[str, str]] | None
) -> None:
    status, problem = await post(harness, "/v1/admin/agencies/police/pause", body)
    assert (status, problem["type"]) == (422, "urn:lienthong:problem:validation-failed")
    if errors is not None:
        assert [(e["path"], e["message"]) for e in problem["errors"]] == errors
    else:
        assert "neither a date and time" in problem["detail"]
    state = await (
        await harness.client.get("/v1/admin/agencies?check=false", headers=harness.headers("operator"))
    ).json()
    assert state["items"][0]["state"] == "closed"
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    assert [r for r in audit["items"] if r["action"] == "pause"] == []


async def test_pausing_is_for_operators_and_known_agencies(harness: GatewayHarness) -> None:
    status, problem = await post(
        harness, "/v1/admin/agencies/police/pause", {"until": "1h", "reason": "x"}, "centre-hanoi"
    )
    assert (status, problem["type"]) == (403, "urn:lienthong:problem:forbidden")
    status, problem = await post(harness, "/v1/admin/agencies/customs/pause", {"until": "1h", "reason": "x"})
    assert (status, problem["detail"]) == (404, "no agency named 'customs'")
    status, problem = await post(harness, "/v1/admin/agencies/customs/resume")
    assert status == 404
    status, body = await post(harness, "/v1/admin/agencies/police/resume")
    assert (status, body["resumed"]) == (200, 0)


async def test_a_held_endpoint_is_not_checked(harness: GatewayHarness) -> None:
    checked = await (await harness.client.get("/v1/admin/agencies", headers=harness.headers("operator"))).json()
    [item] = checked["items"]
    assert (item["state"], item["ok"], item["detail"]) == ("closed", True, "HTTP 200")
    assert (await harness.sim_stats()).get("requests", 0) == 0  # /health is not a call of the protocol
    assert (await post(harness, "/v1/admin/agencies/police/pause", {"until": "1h", "reason": "bảo trì"}))[0] == 200
    [item] = (await (await harness.client.get("/v1/admin/agencies", headers=harness.headers("operator"))).json())[
        "items"
    ]
    assert (item["state"], item["ok"]) == ("paused", None)
    assert item["detail"].startswith("not checked: paused until ")


async def test_replay_by_agency_and_since_is_audited(harness: GatewayHarness, submission: Make) -> None:
    body = submission(0)
    body["form"]["household_head_id"] = "001090000001"  # refused for good: a dead letter at once
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    did = (await resp.json())["id"]
    dead = await dead_letters(harness)
    assert [d["dossier_id"] for d in dead] == [did]
    status, problem = await post(harness, "/v1/admin/deliveries/replay", {"agency": "customs"})
    assert (status, problem["errors"][0]["path"]) == (422, "agency")
    status, problem = await post(harness, "/v1/admin/deliveries/replay", {"since": "last week"})
    assert (status, problem["errors"][0]["path"]) == (422, "since")
    # Dead-lettered since an hour from now: none. Since an hour ago: this one (refused again at once).
    assert await post(harness, "/v1/admin/deliveries/replay", {"agency": "police", "since": soon(60)}) == (
        200,
        {"replayed": 0},
    )
    assert await post(harness, "/v1/admin/deliveries/replay", {"agency": "police", "since": "1h"}) == (
        200,
        {"replayed": 1},
    )
    assert [d["dossier_id"] for d in await dead_letters(harness, attempts=1)] == [did]
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    replays = [r for r in audit["items"] if r["action"] == "replay"]
    assert [(r["client"], r["basis"], r["detail"]["agency"], r["detail"]["replayed"]) for r in replays] == [
        ("operator", "admin", "police", 0),
        ("operator", "admin", "police", 1),
    ]


async def dead_letters(h: GatewayHarness, attempts: int = 1) -> list[dict[str, Any]]:
    """The dead letters, once every job that is not done is dead after `attempts` attempts."""
    for _ in range(300):
        items = (await (await h.client.get("/v1/admin/deliveries", headers=h.headers("operator"))).json())["items"]
        if items and all(j["state"] == "dead" and j["attempts"] == attempts for j in items if j["state"] != "done"):
            return [j for j in items if j["state"] == "dead"]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no dead letter after {attempts} attempt(s): {items}")


def samples(text: str) -> dict[str, float]:
    return {k: float(v) for k, _, v in (line.rpartition(" ") for line in text.splitlines() if line[:1] != "#")}


async def test_metrics_of_breakers_holds_and_held_jobs(harness: GatewayHarness, submission: Make) -> None:
    labels = '{agency="police",endpoint="national"}'
    await harness.set_faults(down=True)
    for i in range(6):
        assert (await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())).status == 202
    for _ in range(300):  # the breaker opens, then the held jobs are counted (every 0.2 s here)
        m = samples(await (await harness.client.get("/metrics", headers=harness.headers("operator"))).text())
        if m[f"lienthong_endpoint_held_jobs{labels}"] >= 5:
            break
        await asyncio.sleep(0.05)
    assert m[f"lienthong_endpoint_breaker_open{labels}"] == 1.0
    assert m[f"lienthong_endpoint_breaker_openings_total{labels}"] == 1.0
    assert m[f"lienthong_endpoint_held{labels}"] == 0.0  # open, not paused
    assert (await post(harness, "/v1/admin/agencies/police/pause", {"until": "1h", "reason": "bảo trì"}))[0] == 200
    m = samples(await (await harness.client.get("/metrics", headers=harness.headers("operator"))).text())
    assert m[f"lienthong_endpoint_held{labels}"] == 1.0
