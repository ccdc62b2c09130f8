"""The printed receipt in headless Chromium: its QR code, decoded from the screenshot by zxing-cpp, opens the
public status page, which shows the dossier's status and nothing about the applicant."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.webdriver import headless_chromium, needs_browser
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_guide_page import artefacts, decode_qr
from tests.gateway.test_receipts import SEED, finished

pytestmark = needs_browser


@pytest.fixture
def gateway_env() -> dict[str, str]:
    return {"LIENTHONG_SIGNING_KEY": base64.b64encode(SEED).decode()}


async def test_receipt_qr_opens_the_status_page(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], tmp_path: Path
) -> None:
    d = await finished(harness, submission)
    resp = await harness.client.get(f"/v1/dossiers/{d['id']}/receipt/page", headers=harness.headers())
    page = await resp.read()
    out = await asyncio.to_thread(artefacts, tmp_path)
    async with headless_chromium(tmp_path / "profile") as browser:
        # The centre's system holds the key and prints the page: here it hands the browser the page itself.
        await browser.get("data:text/html;charset=utf-8;base64," + base64.b64encode(page).decode())
        assert await browser.text(await browser.find("#dossier-code")) == d["code"]
        await browser.screenshot(out / "receipt.png")
        found = await asyncio.to_thread(decode_qr, out / "receipt.png")
        assert len(found) == 1 and found[0].startswith(str(harness.client.make_url(f"/status/{d['code']}?k=")))

        await browser.get(found[0])
        assert await browser.text(await browser.find("#status")) == "Đã xử lý xong"
        assert await browser.text(await browser.find("#dossier-code")) == d["code"]
        await browser.screenshot(out / "status.png")
        body = await browser.text(await browser.find("body"))
    applicant = submission(0)["applicant"]
    for personal in (applicant["full_name"], applicant["personal_id"], applicant["phone"]):
        assert personal not in body
