"""The printed guide in headless Chromium: it renders, prints on A4, and its QR code, read back from the
screenshot by a real decoder (zxing-cpp), opens the same page."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import zxingcpp
from PIL import Image

from tests.browser.webdriver import headless_chromium, needs_browser
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_dashboard import wait_text

pytestmark = needs_browser


def artefacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: $LIENTHONG_TEST_ARTEFACTS (CI collects it), else the test's tmp_path."""
    folder = Path(os.environ.get("LIENTHONG_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def decode_qr(png: Path) -> list[str]:
    with Image.open(png) as image:
        return [b.text for b in zxingcpp.read_barcodes(image.convert("L")) if b.format == zxingcpp.BarcodeFormat.QRCode]


async def test_guide_page_renders_and_its_qr_code_opens_it(harness: GatewayHarness, tmp_path: Path) -> None:
    url = str(harness.client.make_url("/guide/1.004194"))
    out = await asyncio.to_thread(artefacts, tmp_path)
    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(url)
        assert (await browser.text(await browser.find("#procedure-name"))).startswith("Đăng ký thường trú")
        rows = await browser.find_all("#documents tbody tr")
        assert len(rows) == 2
        assert "Mẫu CT01" in await browser.text(rows[0])
        assert "20.000 đồng" in await browser.text(await browser.find("#fees"))
        await browser.screenshot(out / "guide-1.004194.png")
        await browser.element_screenshot(await browser.find("#qr svg"), out / "guide-1.004194-qr.png")
        pdf = await browser.print_pdf(page={"width": 21.0, "height": 29.7}, background=True)

        found = await asyncio.to_thread(decode_qr, out / "guide-1.004194.png")
        assert found == [url]  # read from the whole page as a phone camera would
        assert await asyncio.to_thread(decode_qr, out / "guide-1.004194-qr.png") == [url]

        await browser.get(found[0])  # the code opens the same page
        assert (await browser.title()).startswith("Hướng dẫn thủ tục 1.004194")
    assert pdf.startswith(b"%PDF-")
    await asyncio.to_thread((out / "guide-1.004194.pdf").write_bytes, pdf)
    # A4 portrait in points (595 x 842), on at most two sheets.
    assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox[0 0 595" in pdf
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type/Page/") + pdf.count(b"/Type /Page ") <= 2


async def test_an_applicant_searches_without_diacritics_and_opens_a_guide(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    async with headless_chromium(tmp_path / "profile") as browser:
        await browser.get(str(harness.client.make_url("/guide")))
        assert await browser.text(await browser.find("#count")) == "2 thủ tục"
        await browser.type(await browser.find("#q"), "dang ky thuong tru")
        await browser.click(await browser.find('#agency option[value="police"]'))
        await browser.click(await browser.find("#search"))
        await wait_text(browser, "#count", lambda t: t == "1 thủ tục")  # the results page has loaded
        await browser.click(await browser.find("#results a"))
        name = await browser.text(await browser.find("#procedure-name"))
        assert name.startswith("Đăng ký thường trú")
        assert (await browser.title()).startswith("Hướng dẫn thủ tục 1.004194")
