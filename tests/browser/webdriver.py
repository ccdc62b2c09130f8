"""A small async W3C WebDriver client for Debian's chromedriver: headless Chromium driven over HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.sandbox.launcher import free_port

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


# Skipped only on a developer's machine without the browser; in CI a missing browser fails the test.
needs_browser = pytest.mark.skipif(
    not available() and not os.environ.get("CI"), reason="Debian chromium and chromium-driver are not installed"
)


class StaleElement(AssertionError):
    """The element belonged to a page that has since been replaced (a navigation happened meanwhile)."""


class Browser:
    def __init__(self, http: aiohttp.ClientSession, base: str, session_id: str) -> None:
        self.http, self.base, self.sid = http, base, session_id

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        url = f"{self.base}/session/{self.sid}{path}"
        async with self.http.request(method, url, json=payload if payload is not None else {}) as resp:
            body = await resp.json()
            if resp.status >= 400:
                if body["value"].get("error") == "stale element reference":
                    raise StaleElement(f"webdriver {method} {path}: the page changed under the element")
                raise AssertionError(f"webdriver {method} {path}: {body['value'].get('message', body)}")
            return body["value"]

    async def get(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def find_all(self, css: str) -> list[str]:
        found = await self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    async def find(self, css: str, timeout: float = 10.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self.find_all(css)
            if found:
                return found[0]
            if loop.time() > deadline:
                raise AssertionError(f"no element matches {css!r}")
            await asyncio.sleep(0.1)

    async def type(self, element: str, text: str) -> None:
        await self._call("POST", f"/element/{element}/value", {"text": text})

    async def click(self, element: str) -> None:
        await self._call("POST", f"/element/{element}/click", {})

    async def text(self, element: str) -> str:
        value: str = await self._call("GET", f"/element/{element}/text", None)
        return value

    async def execute(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body; `arguments` holds `args`) in the page and return its value."""
        return await self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def select(self, css: str, value: str) -> None:
        """Choose an option of a <select> by value, as a user would (the change and input events fire)."""
        await self.execute(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
            "el.dispatchEvent(new Event('input', {bubbles: true}));"
            "el.dispatchEvent(new Event('change', {bubbles: true}));",
            css,
            value,
        )

    async def screenshot(self, path: Path) -> None:
        data = base64.b64decode(await self._call("GET", "/screenshot", None))
        await asyncio.to_thread(path.write_bytes, data)

    async def element_screenshot(self, element: str, path: Path) -> None:
        data = base64.b64decode(await self._call("GET", f"/element/{element}/screenshot", None))
        await asyncio.to_thread(path.write_bytes, data)

    async def title(self) -> str:
        value: str = await self._call("GET", "/title", None)
        return value

    async def print_pdf(self, **options: Any) -> bytes:
        """The page printed as Chromium prints it (WebDriver `print`; sizes in centimetres)."""
        return base64.b64decode(await self._call("POST", "/print", options))


@asynccontextmanager
async def headless_chromium(profile: Path, window: tuple[int, int] = (1280, 900)) -> AsyncIterator[Browser]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        CHROMEDRIVER, f"--port={port}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/status") as r:
                        if (await r.json())["value"]["ready"]:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            args = [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                f"--window-size={window[0]},{window[1]}",
            ]
            caps = {
                "capabilities": {
                    "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}
                }
            }
            async with http.post(f"{base}/session", json=caps) as r:
                body = await r.json()
                if r.status >= 400:
                    raise AssertionError(f"chromedriver could not start Chromium: {body}")
            browser = Browser(http, base, body["value"]["sessionId"])
            try:
                yield browser
            finally:
                async with http.delete(f"{base}/session/{browser.sid}"):
                    pass
    finally:
        proc.terminate()
        await proc.wait()
