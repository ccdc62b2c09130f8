"""The operator console in headless Chromium on a 1366x768 laptop screen, from a seeded store: every panel
renders (live counts, the KPI table, the league, both charts, agencies and endpoints, the transaction
browser, a dossier's timeline, dead letters); nothing overflows its card (the agency table used to); a
filter narrows the browser; a re-run click, after its count, delivers the dossier. The screenshot is kept
in var/artefacts/ for CI."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.api.keys import STORE
from tests.browser.webdriver import headless_chromium, needs_browser
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_kpi import HANOI, HCM, seeded
from tests.gateway.test_smoke import wait_status

pytestmark = needs_browser
ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "artefacts"
SCREEN = (1366, 768)

# What sticks out: the page wider than the screen, a card past the screen's edge or wider inside than
# itself, a table wider than the box that holds it, or a cell's text wider than its cell.
OVERFLOWS = """
const out = [];
const vw = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth > vw) out.push(`page ${document.documentElement.scrollWidth} > ${vw}`);
for (const card of document.querySelectorAll("main > section")) {
  const r = card.getBoundingClientRect();
  if (r.right > vw + 0.5) out.push(`${card.id} ends at ${r.right} > ${vw}`);
  if (card.scrollWidth > card.clientWidth + 1) out.push(`${card.id} holds ${card.scrollWidth} > ${card.clientWidth}`);
  for (const box of card.querySelectorAll(".scroll")) {
    if (box.scrollWidth > box.clientWidth + 1) out.push(`${card.id} table ${box.scrollWidth} > ${box.clientWidth}`);
  }
  for (const cell of card.querySelectorAll("th, td")) {
    if (cell.scrollWidth > cell.clientWidth + 1) out.push(`${card.id} cell ${JSON.stringify(cell.textContent)}`);
  }
}
return out;
"""


BARS = "return [...document.querySelectorAll('#chart-agency rect.bar')].map((b) => b.dataset.item);"


async def texts(browser: Any, css: str) -> list[str]:
    """The text of every element matching `css`, read in one step (the page re-renders as it refreshes)."""
    found: list[str] = await browser.execute(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText ?? e.textContent);", css
    )
    return found


async def wait_for(browser: Any, css: str, predicate: Callable[[list[str]], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = await texts(browser, css)
        if predicate(last):
            return
        if loop.time() > deadline:
            raise AssertionError(f"{css!r} never satisfied the check; last {last!r}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01"}])
async def test_the_console_on_a_laptop_screen(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], tmp_path: Path
) -> None:
    op = harness.headers("operator")
    await harness.set_faults(down=True)
    await seeded(harness.app[STORE])  # five dossiers of two centres in January 2026 (test_kpi.py)
    live = []
    for i in range(2):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        live.append(await resp.json())
    # Every delivery dead after two attempts; and the seeded dossier asked for documents in January is past
    # its deadline: refused (3), its agency told by a withdrawal that is refused at once (one attempt).
    for _ in range(200):
        dead = (await (await harness.client.get("/v1/admin/deliveries?state=dead", headers=op)).json())["items"]
        if len(dead) == 8:
            break
        await asyncio.sleep(0.1)
    assert len(dead) == 8
    await harness.set_faults(down=False)

    async with headless_chromium(tmp_path / "profile", window=SCREEN) as browser:
        await browser.get(str(harness.client.make_url("/dashboard")))
        await browser.type(await browser.find("#key"), harness.keys["operator"])
        await browser.click(await browser.find("#connect"))
        # Live counts, agencies, endpoints, dead letters.
        await wait_for(browser, '.kpi[data-status="9"] .n', lambda t: t == ["2"])
        assert await texts(browser, "#counted") == ["live"]  # a small store: counted afresh each time
        await wait_for(browser, 'tr[data-agency="police"] .dead-count', lambda t: t == ["8"])
        await wait_for(browser, 'tr[data-endpoint="police/national"]', lambda t: "police / national" in t[0])
        await wait_for(browser, "#dead tbody tr[data-job]", lambda t: len(t) == 8)
        # The period of the seeded dossiers: the KPI table, the league, both charts.
        await browser.execute("document.querySelector('#p-from').value = '2025-12-31';")
        await browser.execute("document.querySelector('#p-to').value = '2026-01-31';")
        await browser.click(await browser.find("#p-apply"))
        rates = "#kpi-centres tr[data-centre] .on-time"
        await wait_for(browser, rates, lambda t: t == ["50%", "100%"])  # Hà Nội, then Hồ Chí Minh City
        # Default weights (0.7 on time, 0.3 volume): HCM 1.0, Hà Nội 0.65.
        league = await texts(browser, "#league tbody tr[data-centre]")
        assert [row.split()[:3] for row in league] == [["1", HCM, "1"], ["2", HANOI, "0.65"]]
        assert len(await texts(browser, "#chart-centre path.line")) == 2
        assert await browser.execute(BARS) == ["police"]
        await browser.select("#chart-by", "agency")  # the weekly chart per agency: police alone
        await wait_for(browser, "#chart-centre path.line", lambda t: len(t) == 1)
        await browser.select("#chart-by", "centre")
        await wait_for(browser, "#chart-centre path.line", lambda t: len(t) == 2)
        # The transaction browser: 15 attempts (2 per submission, 1 withdrawal); a dossier's are 2.
        await wait_for(browser, "#attempts tbody tr[data-attempt]", lambda t: len(t) == 15 and "503" in t[0])
        await browser.type(await browser.find("#f-dossier"), live[0]["code"])
        await browser.click(await browser.find("#f-search"))
        await wait_for(browser, "#attempts tbody tr[data-attempt]", lambda t: len(t) == 2)
        await browser.select("#f-outcome", "dead")
        await browser.click(await browser.find("#f-search"))
        await wait_for(browser, "#attempts tbody tr[data-attempt] .outcome", lambda t: t == ["dead"])
        # Its timeline: received, then the two attempts.
        await browser.click((await browser.find_all("#attempts tbody tr[data-attempt]"))[0])
        await wait_for(browser, "#timeline li", lambda t: len(t) == 3 and "status 2" in t[0] and "attempt 2" in t[2])
        assert live[0]["code"] in (await texts(browser, "#timeline-of"))[0]

        problems = await browser.execute(OVERFLOWS)
        assert problems == [], problems
        await browser.execute("window.scrollTo(0, 0);")
        await browser.screenshot(tmp_path / "console.png")
        await browser.execute("document.querySelector('#browser').scrollIntoView();")
        await browser.screenshot(tmp_path / "console-browser.png")

        # Count, then re-run this dossier's dead delivery: it reaches the agency and is finished.
        await browser.click(await browser.find("#rerun-count"))
        await wait_for(browser, "#rerun-note", lambda t: t[0].startswith("1 job"))
        await browser.click(await browser.find("#rerun"))
        await wait_for(browser, "#rerun-note", lambda t: t == ["re-ran 1 job(s)"])
        assert (await wait_status(harness, live[0]["id"], 9))["status"] == 9
        await wait_for(browser, 'tr[data-agency="police"] .dead-count', lambda t: t == ["7"])
        await browser.select("#f-outcome", "")
        await browser.click(await browser.find("#f-search"))
        await wait_for(browser, "#attempts tbody tr[data-attempt] .outcome", lambda t: "delivered" in t)
        await browser.screenshot(tmp_path / "console-rerun.png")
        # A store whose count takes long reuses it (gateway/store/costly.py): the heading says how old it is.
        costly = harness.app[STORE]._counts  # type: ignore[attr-defined]
        costly.slow, costly.reuse = 0.0, 1e6
        await wait_for(browser, "#counted", lambda t: t[0].startswith("counted ") and t[0].endswith("reused)"))

    png = await asyncio.to_thread((tmp_path / "console.png").read_bytes)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    await asyncio.to_thread(ARTEFACTS.mkdir, parents=True, exist_ok=True)
    for name in ("console.png", "console-browser.png", "console-rerun.png"):
        await asyncio.to_thread(shutil.copyfile, tmp_path / name, ARTEFACTS / name)
