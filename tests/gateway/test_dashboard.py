"""The operator dashboard in headless Chromium: figures load, dead letters show, Replay delivers them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.webdriver import StaleElement, headless_chromium, needs_browser
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status

pytestmark = needs_browser


async def wait_text(browser: Any, css: str, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = ""
    while loop.time() < deadline:
        try:
            for el in await browser.find_all(css):
                last = await browser.text(el)
                if predicate(last):
                    return last
        except StaleElement:  # a navigation replaced the page between finding and reading: look again
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{css!r} never satisfied the check; last text {last!r}")


# Dead letters of a down agency: no breaker to hold them, and a retry budget shorter than the first backoff.
@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01"}])
async def test_dashboard_shows_dead_letters_and_replays_them(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], tmp_path: Path
) -> None:
    await harness.set_faults(down=True)
    ids = []
    for i in range(2):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        ids.append((await resp.json())["id"])
    for did in ids:  # 2 attempts with a short backoff (test settings), then dead
        for _ in range(100):
            body = await (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers())).json()
            if body["delivery"]["state"] == "dead":
                break
            await asyncio.sleep(0.1)
        assert body["delivery"]["state"] == "dead"

    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(str(harness.client.make_url("/dashboard")))
        await browser.type(await browser.find("#key"), harness.keys["operator"])
        await browser.click(await browser.find("#connect"))
        await wait_text(browser, "#dead tbody tr[data-job]", lambda t: "503" in t)
        assert len(await browser.find_all("#dead tbody tr[data-job]")) == 2
        received = await wait_text(browser, '.kpi[data-status="2"] .n', lambda t: t.isdigit())
        assert received == "2"
        assert await browser.text(await browser.find('tr[data-agency="police"] .dead-count')) == "2"
        assert await browser.text(await browser.find("#undeliverable .n")) == "2"  # the dossiers, counted
        await browser.screenshot(tmp_path / "dashboard-dead.png")

        await harness.set_faults(down=False)
        await browser.click(await browser.find("#replay-all"))
        await wait_text(browser, "#dead tbody", lambda t: "none" in t)
        await wait_text(browser, '.kpi[data-status="9"] .n', lambda t: t == "2")
        await wait_text(browser, "#undeliverable .n", lambda t: t == "0")
        await browser.screenshot(tmp_path / "dashboard-replayed.png")
    for did in ids:
        assert (await wait_status(harness, did, 9))["status"] == 9
    png = await asyncio.to_thread((tmp_path / "dashboard-replayed.png").read_bytes)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


async def test_dashboard_lists_refused_accesses_from_the_audit_log(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], tmp_path: Path
) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did = (await resp.json())["id"]
    wrong = harness.headers("centre-hcm", **{"X-Applicant-Id": "999999990001"})
    assert (await harness.client.get(f"/v1/dossiers/{did}", headers=wrong)).status == 404
    assert (
        await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers("centre-danang"))
    ).status == 404

    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(str(harness.client.make_url("/dashboard")))
        await browser.type(await browser.find("#key"), harness.keys["operator"])
        await browser.click(await browser.find("#connect"))
        newest = await wait_text(browser, "#refused tbody tr[data-seq]", lambda t: "centre-danang" in t)
        assert "events" in newest and "no applicant id" in newest and did in newest
        rows = await browser.find_all("#refused tbody tr[data-seq]")
        assert len(rows) == 2
        assert "wrong applicant id" in await browser.text(rows[1]) and "centre-hcm" in await browser.text(rows[1])
        await browser.screenshot(tmp_path / "dashboard-refused.png")


async def test_dashboard_shows_each_endpoint_open_then_paused_then_closed(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], tmp_path: Path
) -> None:
    await harness.set_faults(down=True)
    for i in range(6):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        assert resp.status == 202
    operator = harness.headers("operator")
    row = 'tr[data-endpoint="police/national"]'
    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(str(harness.client.make_url("/dashboard")))
        await browser.type(await browser.find("#key"), harness.keys["operator"])
        await browser.click(await browser.find("#connect"))
        shown = await wait_text(browser, row, lambda t: "open since" in t and "next probe" in t and "503" in t)
        assert "police / national" in shown
        held = await browser.text(await browser.find(f"{row} .held"))
        assert held.isdigit() and int(held) >= 5  # all but the one being probed, if any
        await browser.screenshot(tmp_path / "dashboard-open.png")

        pause = {"until": "2h", "reason": "Bảo trì theo lịch của Bộ Công an"}
        resp = await harness.client.post("/v1/admin/agencies/police/pause", json=pause, headers=operator)
        assert resp.status == 200
        shown = await wait_text(browser, row, lambda t: "paused" in t and "Bảo trì theo lịch" in t)
        assert "by operator" in shown
        await browser.screenshot(tmp_path / "dashboard-paused.png")

        await harness.set_faults(down=False)
        assert (await harness.client.post("/v1/admin/agencies/police/resume", headers=operator)).status == 200
        await wait_text(browser, row, lambda t: "closed" in t)
        await wait_text(browser, '.kpi[data-status="9"] .n', lambda t: t == "6")
        assert await browser.text(await browser.find(f"{row} .held")) == "0"
