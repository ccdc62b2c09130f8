"""Acceptance over loopback with real processes: the gateway, the land offices on a real SFTP server, tax.

A land transfer received at a centre in TP HCM (79) for a parcel in Hà Nội (01) goes to the Hà Nội office,
through tax, and comes back with the certificate; a SIGKILL of the gateway mid-exchange loses and
repeats nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.launcher import SimSpec, Stack
from plugins.land.demo import demo_bundles, demo_dossiers, demo_sim

CONF = Path(__file__).resolve().parent / "conf"
PASSWORD = "land-e2e-sftp-password"
pytestmark = pytest.mark.slow


async def land_stack(tmp_path: Path, **land: Any) -> Stack:
    """A stack whose land simulator serves a pre-made host key on a fixed port, so the conf can pin it."""
    spec, env = await asyncio.to_thread(demo_sim, tmp_path, scan_interval=0.05, **land)
    tax = SimSpec(kind="tax", agency="tax", url_env="TAX_URL", settings={"auto_pay_after": 0.3})
    quick = {"LIENTHONG_AGENCY_POLL": "0.1", "LIENTHONG_PROBE_AFTER": "0.2", "LIENTHONG_PROBE_MAX": "1"}
    return Stack(CONF, tmp_path, [spec, tax], extra_env=env | quick)


def headers(centre: str) -> dict[str, str]:
    return {"X-Api-Key": DEMO_KEYS[centre]}


async def get(session: aiohttp.ClientSession, url: str, centre: str = "centre-hcm") -> Any:
    async with session.get(url, headers=headers(centre)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def wait_bundle(session: aiohttp.ClientSession, stack: Stack, bid: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    view: Any = {}
    while time.monotonic() < deadline:
        view = await get(session, f"{stack.gateway_url}/v1/bundles/{bid}")
        if view["state"] in ("completed", "action_required", "cancelled"):
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"bundle {bid} still {view.get('state')}: {json.dumps(view.get('steps'))[:2000]}")


async def test_land_transfer_from_another_province_completes_with_the_certificate(tmp_path: Path) -> None:
    stack = await land_stack(tmp_path, answer_gap=0.05)
    bundle = demo_bundles(11, 1, province="01")[0]
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{stack.gateway_url}/v1/bundles", json=bundle, headers=headers("centre-hcm")) as r:
                created = await r.json()
                assert r.status == 202, created
            view = await wait_bundle(session, stack, created["id"])
            assert view["state"] == "completed", view
            steps = {s["step"]: s for s in view["steps"]}
            assert [s["step"] for s in view["steps"]] == ["declaration", "tax", "registration"]
            assert all(s["status"] == 9 for s in view["steps"])
            declaration, registration = steps["declaration"], steps["registration"]
            assert declaration["outputs"]["assessed_price_vnd"] >= bundle["forms"]["declaration"]["declared_price_vnd"]
            assert steps["tax"]["outputs"]["tax_receipts"]
            reg = await get(session, f"{stack.gateway_url}/v1/dossiers/{registration['dossier_id']}")
            assert (reg["agency"], reg["endpoint"]) == ("land", "hanoi")  # the parcel's province, not the centre's
            assert reg["results"][0]["component_code"] == "GCN"
            async with session.get(
                f"{stack.gateway_url}/v1/dossiers/{registration['dossier_id']}/results/0", headers=headers("centre-hcm")
            ) as r:
                assert r.status == 200 and r.content_type == "application/pdf"
                assert (await r.read()).startswith(b"%PDF")
            office = await _sim(session, stack, "/_sim/received")
            assert [(o["office"], o["phase"]) for o in office] == [("hanoi", "KE_KHAI"), ("hanoi", "DANG_KY")]
    finally:
        await stack.stop()


async def _sim(session: aiohttp.ClientSession, stack: Stack, path: str) -> Any:
    async with session.get(stack.sim("land").url + path) as r:
        return await r.json()


async def test_a_gateway_killed_mid_exchange_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    # Answers a few tenths of a second apart: the kill finds dossiers half-answered, and answers keep
    # arriving in the inbox while the gateway is down.
    stack = await land_stack(tmp_path, answer_gap=0.4, auto_pay_after=0.4)
    singles = [_in_hanoi_or_hcm(d) for d in demo_dossiers(5, 6)]
    bundles = demo_bundles(6, 2, province="79")
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        async with aiohttp.ClientSession() as session:
            ids: list[str] = []
            for i, body in enumerate(singles):
                async with session.post(
                    f"{stack.gateway_url}/v1/dossiers",
                    json=body,
                    headers=headers("centre-hanoi" if i % 2 else "centre-hcm"),
                ) as r:
                    assert r.status == 202
                    ids.append((await r.json())["id"])
            bids = []
            for body in bundles:
                async with session.post(
                    f"{stack.gateway_url}/v1/bundles", json=body, headers=headers("centre-hcm")
                ) as r:
                    assert r.status == 202
                    bids.append((await r.json())["id"])
            await _until_some_answered(session, stack, ids)
            await gw.kill()
            await asyncio.sleep(1.0)  # the offices go on answering into the inbox
            waiting = await asyncio.to_thread(_inbox_answers, tmp_path / "land-sftp")
            assert waiting, "the kill should leave answers the gateway has not taken yet"
            await stack.start_gateway()  # same database
            statuses = {did: (await _wait_finished(session, stack, did, i)) for i, did in enumerate(ids)}
            views = [await wait_bundle(session, stack, b) for b in bids]
            assert all(v["state"] == "completed" for v in views), views
            for i, did in enumerate(ids):
                centre = "centre-hanoi" if i % 2 else "centre-hcm"
                events = (await get(session, f"{stack.gateway_url}/v1/dossiers/{did}/events", centre))["events"]
                counts = Counter(e["status"] for e in events)
                assert counts[6] == 1 and counts[9] == 1 and counts[4] <= 2, events  # each answer applied once
                assert len(statuses[did]["results"]) == 1
            stats = await _sim(session, stack, "/_sim/stats")
            received = await _sim(session, stack, "/_sim/received")
        assert len(received) == len(singles) + 2 * len(bundles) == stats["accepted"]  # each dossier taken once
        assert stats["documents_ok"] == stats["accepted"] and "documents_refused" not in stats  # all documents whole
        assert stats.get("checksum_mismatch", 0) == 0
        root = tmp_path / "land-sftp"
        for _ in range(40):  # the last answers leave the inbox on the poll after they were applied
            if not await asyncio.to_thread(_inbox_answers, root):
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(_inbox_answers, root) == []
        assert await asyncio.to_thread(_quarantined, root) == []
    finally:
        await stack.stop()


def _in_hanoi_or_hcm(body: dict[str, Any]) -> dict[str, Any]:
    if body["jurisdiction"]["province"] == "48":  # no Đà Nẵng office in this configuration
        body["jurisdiction"] = {"province": "01", "commune": "00070"}
        body["form"]["parcels"][0]["address"] |= {"province": "01", "commune": "00070"}
    return body


async def _until_some_answered(session: aiohttp.ClientSession, stack: Stack, ids: list[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses = []
        for i, did in enumerate(ids):
            d = await get(session, f"{stack.gateway_url}/v1/dossiers/{did}", "centre-hanoi" if i % 2 else "centre-hcm")
            statuses.append(d["status"])
        if any(s == 6 for s in statuses):
            assert not all(s == 9 for s in statuses)
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no dossier reached the financial obligation")


async def _wait_finished(session: aiohttp.ClientSession, stack: Stack, did: str, i: int) -> Any:
    deadline = time.monotonic() + 60
    d: Any = {}
    while time.monotonic() < deadline:
        d = await get(session, f"{stack.gateway_url}/v1/dossiers/{did}", "centre-hanoi" if i % 2 else "centre-hcm")
        if d["status"] == 9:
            return d
        await asyncio.sleep(0.2)
    raise AssertionError(f"{did} stayed at {d.get('status')}")


def _inbox_answers(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*/inbox/*.xml"))


def _quarantined(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*/quarantine/*"))
