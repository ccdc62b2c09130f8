"""The command line beside a running gateway: pausing and resuming an agency, listing holds, and listing
and replaying dead letters by agency and time; each action audited under the operator's login."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.gateway.conftest import CONF, GatewayHarness

pytestmark = pytest.mark.slow  # every command is a process of its own
Make = Callable[[int], dict[str, Any]]
OPERATOR = f"cli:{getpass.getuser()}"


async def cli(*args: str) -> tuple[int, str]:
    """`lienthong ...` in a process of its own, on the harness's store (LIENTHONG_DB is in the environment)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        "--conf",
        str(CONF),
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def state(h: GatewayHarness) -> dict[str, Any]:
    resp = await h.client.get("/v1/admin/agencies?check=false", headers=h.headers("operator"))
    [item] = (await resp.json())["items"]
    assert isinstance(item, dict)
    return item


async def test_pause_list_and_resume_from_the_command_line(harness: GatewayHarness) -> None:
    code, out = await cli("agencies", "pause", "police", "--until", "2020-01-01T00:00", "--reason", "x")
    assert (code, out.strip()) == (1, "lienthong: --until 2020-01-01T00:00 has passed")
    code, out = await cli("agencies", "pause", "customs", "--until", "2h", "--reason", "x")
    assert code == 1 and "no agency named 'customs' (known: police)" in out

    code, out = await cli("agencies", "pause", "police", "--until", "2h", "--reason", "nâng cấp hệ thống")
    assert code == 0 and out.startswith("paused police until ")
    for _ in range(100):  # the running gateway reads the pauses again every 0.2 s here
        item = await state(harness)
        if item["state"] == "paused":
            break
        await asyncio.sleep(0.05)
    assert (item["state"], item["reason"], item["paused_by"]) == ("paused", "nâng cấp hệ thống", OPERATOR)
    code, out = await cli("agencies", "list")
    assert code == 0 and out.startswith("police/national: paused until ") and "nâng cấp hệ thống" in out

    code, out = await cli("agencies", "resume", "police")
    assert (code, out.strip()) == (0, "resumed 1 pause(s) of police")
    for _ in range(100):
        if (await state(harness))["state"] == "closed":
            break
        await asyncio.sleep(0.05)
    assert (await state(harness))["state"] == "closed"
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    assert [(r["action"], r["client"], r["basis"]) for r in audit["items"]] == [
        ("pause", OPERATOR, "cli"),
        ("resume", OPERATOR, "cli"),
    ]


async def test_dead_letters_listed_and_replayed_by_agency_and_since(harness: GatewayHarness, submission: Make) -> None:
    ids = []
    for i in range(2):
        body = submission(i)
        body["form"]["household_head_id"] = "001090000001"  # refused for good: dead letters at once
        resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
        ids.append((await resp.json())["id"])
    for _ in range(200):
        code, out = await cli("deliveries", "list", "--state", "dead", "--agency", "police")
        if out.count(" dead ") == 2:
            break
        await asyncio.sleep(0.1)
    assert code == 0 and all(did in out for did in ids)
    code, out = await cli("deliveries", "list", "--state", "dead", "--agency", "justice")
    assert code == 1 and "no agency named 'justice'" in out

    code, out = await cli("deliveries", "replay", "--agency", "police", "--since", "2099-01-01T00:00")
    assert (code, out.splitlines()[0]) == (
        0,
        "replayed 0 dead deliveries; a running gateway picks them up within a second",
    )
    code, out = await cli("deliveries", "replay", "--agency", "police", "--since", "1h")
    assert code == 0 and out.startswith("replayed 2 dead deliveries")
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    replays = [(r["client"], r["detail"]) for r in audit["items"] if r["action"] == "replay"]
    assert [(who, d["agency"], d["replayed"]) for who, d in replays] == [
        (OPERATOR, "police", 0),
        (OPERATOR, "police", 2),
    ]
