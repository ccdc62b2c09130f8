"""Reloading clients, procedures, routes and bundles while the gateway runs, and what a reload refuses."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contracts.calendar import NATIONAL, VN_TZ, WorkCalendar
from gateway.api.keys import STORE
from gateway.auth import hash_key
from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.launcher import Stack
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_smoke import wait_status

NEW_KEY = "lt_haiphong-centre-key-for-the-reload-tests-0001"
NEW_CLIENT = f"""
[client.centre-haiphong]
name = "Trung tâm phục vụ hành chính công phường Hồng Bàng"
kind = "centre"
unit = "000.00.01.H31"
province = "31"
scopes = ["submit", "read"]
api_key_sha256 = "{hash_key(NEW_KEY)}"
"""


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    return copy


def edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text, f"the edit changed nothing in {path.name}"
    path.write_text(changed, encoding="utf-8")


def drop_client(text: str, client: str) -> str:
    start = text.index(f"[client.{client}]")
    end = text.find("\n[client.", start + 1)
    return text[:start] + (text[end + 1 :] if end >= 0 else "")


async def reload(h: GatewayHarness) -> tuple[int, Any]:
    resp = await h.client.post("/v1/admin/reload", headers=h.headers("operator"))
    return resp.status, await resp.json()


async def status_for(h: GatewayHarness, key: str) -> int:
    return (await h.client.get("/v1/dossiers", headers={"X-Api-Key": key})).status


async def test_clients_and_procedures_change_without_a_restart(
    harness: GatewayHarness, gateway_conf: Path, submission: Callable[[int], dict[str, Any]]
) -> None:
    clients, procedures = gateway_conf / "clients.toml", gateway_conf / "procedures.toml"
    await asyncio.to_thread(edit, clients, lambda t: drop_client(t, "centre-danang") + NEW_CLIENT)
    await asyncio.to_thread(
        edit,
        procedures,
        lambda t: t.replace('code = "1.004194"\nprocessing_days = 7', 'code = "1.004194"\nprocessing_days = 12'),
    )
    assert await status_for(harness, NEW_KEY) == 401  # not before the reload
    status, body = await reload(harness)
    assert status == 200, body
    assert body["changed"]["clients"] == {"added": ["centre-haiphong"], "removed": ["centre-danang"], "changed": []}
    assert await status_for(harness, NEW_KEY) == 200
    assert await status_for(harness, DEMO_KEYS["centre-danang"]) == 401
    assert await status_for(harness, DEMO_KEYS["centre-hanoi"]) == 200
    spec = await (await harness.client.get("/v1/procedures/1.004194", headers=harness.headers())).json()
    assert spec["processing_days"] == 12
    accepted = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert accepted.status == 202  # the dispatcher, connectors and store carried on


async def test_an_invalid_folder_changes_nothing(harness: GatewayHarness, gateway_conf: Path) -> None:
    clients = gateway_conf / "clients.toml"
    await asyncio.to_thread(edit, clients, lambda t: drop_client(t, "centre-danang") + NEW_CLIENT)
    await asyncio.to_thread(
        edit, clients, lambda t: t.replace('scopes = ["submit", "read"]\n', 'scopes = ["submit", "fly"]\n')
    )
    status, problem = await reload(harness)
    assert status == 422 and problem["type"] == "urn:lienthong:problem:validation-failed"
    assert any(e["path"].startswith("clients.toml: ") and "centre-haiphong" in e["path"] for e in problem["errors"])
    assert await status_for(harness, DEMO_KEYS["centre-danang"]) == 200  # the running set is untouched
    assert await status_for(harness, NEW_KEY) == 401


async def test_agency_changes_need_a_restart(harness: GatewayHarness, gateway_conf: Path) -> None:
    agencies = gateway_conf / "agencies.toml"
    text = await asyncio.to_thread(agencies.read_text, encoding="utf-8")
    assert "concurrency" in text
    await asyncio.to_thread(edit, agencies, lambda t: t.replace("concurrency = 16", "concurrency = 4", 1))
    await asyncio.to_thread(edit, gateway_conf / "clients.toml", lambda t: t + NEW_CLIENT)
    status, problem = await reload(harness)
    assert status == 409
    assert problem["restart_needed"] == ["agencies.toml (agencies and endpoints)"]
    assert await status_for(harness, NEW_KEY) == 401  # refused whole: not even the new client
    refused = await harness.client.post("/v1/admin/reload", headers=harness.headers("centre-hanoi"))
    assert refused.status == 403


async def test_an_operators_day_off_moves_due_dates_after_a_reload(
    harness: GatewayHarness, gateway_conf: Path, submission: Callable[[int], dict[str, Any]]
) -> None:
    """A late government decision written into calendar.toml applies to the next dossier, without a restart."""

    async def accept() -> dict[str, Any]:
        resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
        assert resp.status == 202, await resp.text()
        accepted = await resp.json()
        dossier = await harness.client.get(f"/v1/dossiers/{accepted['id']}", headers=harness.headers())
        body: dict[str, Any] = await dossier.json()
        assert datetime.fromisoformat(body["due_at"]) == datetime.fromisoformat(accepted["due_at"])
        return body

    code = submission(0)["procedure_code"]
    spec = await (await harness.client.get(f"/v1/procedures/{code}", headers=harness.headers())).json()
    days = spec["processing_days"]
    assert days >= 2

    before = await accept()
    received, due = datetime.fromisoformat(before["received_at"]), datetime.fromisoformat(before["due_at"])
    assert due == NATIONAL.add_working_days(received, days)
    day_off = NATIONAL.add_working_days(received, 1).date()  # a working day the dossier's days run through
    text = f'[[day_off]]\ndate = {day_off.isoformat()}\nreason = "Thông báo nghỉ bù (thử)"\n'
    await asyncio.to_thread((gateway_conf / "calendar.toml").write_text, text, encoding="utf-8")
    status, body = await reload(harness)
    assert status == 200, body
    assert body["changed"]["calendar"] == {
        "days_off": {"added": [day_off.isoformat()], "removed": []},
        "working_days": {"added": [], "removed": []},
    }

    after = await accept()
    received = datetime.fromisoformat(after["received_at"])
    moved = WorkCalendar.of(days_off=[day_off]).add_working_days(received, days)
    assert datetime.fromisoformat(after["due_at"]) == moved
    assert moved.date() > NATIONAL.add_working_days(received, days).date()  # one working day later
    # Dossiers accepted before keep their due dates.
    again = await harness.client.get(f"/v1/dossiers/{before['id']}", headers=harness.headers())
    assert (await again.json())["due_at"] == before["due_at"]


@pytest.mark.parametrize("police_settings", [{"supplement_rate": 1.0, "supplement_due_days": None}])
async def test_a_reloaded_calendar_sets_the_supplement_deadlines_the_store_computes(
    harness: GatewayHarness, gateway_conf: Path, submission: Callable[[int], dict[str, Any]]
) -> None:
    """The agency names no deadline: the store gives seven working days of the live calendar."""
    day_off = NATIONAL.add_working_days(datetime.now(VN_TZ), 2).date()
    text = f'[[day_off]]\ndate = {day_off.isoformat()}\nreason = "Thông báo nghỉ (thử)"\n'
    await asyncio.to_thread((gateway_conf / "calendar.toml").write_text, text, encoding="utf-8")
    assert (await reload(harness))[0] == 200
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did = (await resp.json())["id"]
    asked = await wait_status(harness, did, 5)
    assert asked["status"] == 5
    [request] = asked["supplements"]
    requested_at, due_at = datetime.fromisoformat(request["requested_at"]), datetime.fromisoformat(request["due_at"])
    assert due_at == WorkCalendar.of(days_off=[day_off]).supplement_deadline(requested_at)
    assert due_at != NATIONAL.supplement_deadline(requested_at)


@pytest.mark.slow
async def test_sighup_reloads_a_running_gateway(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    await asyncio.to_thread(shutil.copytree, CONF, conf)
    stack = Stack(conf, tmp_path, [police_sim()])
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        async with aiohttp.ClientSession() as session:

            async def status(key: str) -> int:
                async with session.get(f"{stack.gateway_url}/v1/dossiers", headers={"X-Api-Key": key}) as r:
                    return r.status

            assert await status(NEW_KEY) == 401
            await asyncio.to_thread(edit, conf / "clients.toml", lambda t: t + NEW_CLIENT)
            os.kill(gw.proc.pid, signal.SIGHUP)
            for _ in range(100):
                if await status(NEW_KEY) == 200:
                    break
                await asyncio.sleep(0.05)
            assert await status(NEW_KEY) == 200
            assert await status(DEMO_KEYS["centre-hanoi"]) == 200
            assert gw.proc.returncode is None  # the same process: reloaded, not restarted
    finally:
        await stack.stop()


async def test_reloads_and_replays_are_in_the_audit_log(harness: GatewayHarness, gateway_conf: Path) -> None:
    """Operators' actions sit beside the accesses they may affect: who reloaded what, who replayed what,
    and a reload refused, each one a record of the hash chain."""
    clients = gateway_conf / "clients.toml"
    rotated = "lt_hanoi-rotated-key-for-the-audit-test-0003"
    await asyncio.to_thread(
        edit,
        clients,
        lambda t: (
            t.replace(
                "[client.centre-hanoi]\n",
                f'[client.centre-hanoi]\napi_keys = [{{ sha256 = "{hash_key(rotated)}" }}]\n',
                1,
            )
            + NEW_CLIENT
        ),
    )
    status, body = await reload(harness)
    assert status == 200 and body["changed"]["credentials"] == {"changed": ["centre-hanoi"]}
    assert await status_for(harness, rotated) == 200
    await asyncio.to_thread(edit, clients, lambda t: t.replace('scopes = ["submit", "read"]\n', 'scopes = ["fly"]\n'))
    assert (await reload(harness))[0] == 422
    replayed = await harness.client.post(
        "/v1/admin/deliveries/replay", json={"ids": [7, 8]}, headers=harness.headers("operator")
    )
    assert replayed.status == 200
    records = [r for r in await harness.app[STORE].audit_log(limit=100) if r.basis != "own"]
    assert [(r.client_id, r.action, r.outcome, r.basis) for r in records] == [
        ("operator", "reload", "allowed", "admin"),
        ("operator", "reload", "denied", "configuration-refused"),
        ("operator", "replay", "allowed", "admin"),
    ]
    assert records[0].detail["clients"] == {"added": ["centre-haiphong"], "changed": ["centre-hanoi"]}
    assert records[0].detail["credentials"] == {"changed": ["centre-hanoi"]}
    assert "client.centre-haiphong.scopes[0]" in records[1].detail["error"]
    assert records[2].detail == {"ids": [7, 8], "replayed": 0}
    assert (await harness.app[STORE].verify_audit()).ok
