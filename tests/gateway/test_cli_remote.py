"""The operators' commands against a running gateway (--url, the key from the environment): no
configuration folder and no store file here; each action audited by the gateway under the key's client."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.gateway.conftest import GatewayHarness

pytestmark = pytest.mark.slow  # every command is a process of its own
Make = Callable[[int], dict[str, Any]]


async def remote(h: GatewayHarness, *args: str, key: str | None = "operator") -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}  # no store, no folder
    if key is not None:
        env["LIENTHONG_API_KEY"] = h.keys[key]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        "--url",
        f"http://127.0.0.1:{h.client.port}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_pause_list_resume_deliveries_and_audit_over_the_api(harness: GatewayHarness, submission: Make) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    dossier = (await resp.json())["id"]
    for _ in range(200):
        code, out = await remote(harness, "deliveries", "list", "--agency", "police")
        if "done" in out:
            break
        await asyncio.sleep(0.1)
    assert code == 0 and f"dossier={dossier}" in out and " done " in out, out

    code, out = await remote(harness, "agencies", "pause", "police", "--until", "2h", "--reason", "nâng cấp")
    assert code == 0 and out.startswith("paused police until "), out
    resp = await harness.client.get("/v1/admin/agencies?check=false", headers=harness.headers("operator"))
    [item] = (await resp.json())["items"]
    assert (item["state"], item["paused_by"]) == ("paused", "operator")  # in force at once: the gateway took it
    code, out = await remote(harness, "agencies", "list")
    assert code == 0 and out.startswith("police/national: paused until ") and "nâng cấp" in out, out
    code, out = await remote(harness, "agencies", "resume", "police")
    assert (code, out.strip()) == (0, "resumed 1 pause(s) of police")

    code, out = await remote(harness, "audit", "list", "--client", "operator")
    actions = [line.split()[4] for line in out.splitlines()]
    assert code == 0 and actions[-2:] == ["pause", "resume"], out
    code, out = await remote(harness, "audit", "verify")
    assert code == 0 and "chain intact" in out, out


async def test_refusals_and_errors_are_said(harness: GatewayHarness) -> None:
    code, out = await remote(harness, "deliveries", "list", "--agency", "customs")
    # The operators' searches answer 400 for a filter they cannot read, naming the field and why.
    assert code == 1 and "400" in out and "query.agency: no agency named 'customs'" in out, out
    code, out = await remote(harness, "agencies", "pause", "customs", "--until", "2h", "--reason", "x")
    assert code == 1 and "404" in out, out
    code, out = await remote(harness, "deliveries", "list", key="centre-hanoi")  # no admin right
    assert code == 1 and "403" in out, out
    code, out = await remote(harness, "deliveries", "list", key=None)
    assert code == 1 and "LIENTHONG_API_KEY" in out, out
    code, out = await remote(harness, "audit", "verify", "--checkpoints", "/tmp")
    assert code == 2 and "not with --url" in out, out
