"""The application's shared resources: the one outbound client session."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.api.keys import HTTP
from tests.gateway.conftest import GatewayHarness


async def test_an_agency_cookie_does_not_ride_along_later_calls(harness: GatewayHarness) -> None:
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        resp = web.Response(text="ok")
        resp.set_cookie("SESSION", "issued-to-the-first-caller")
        return resp

    agency = web.Application()
    agency.router.add_get("/", answer)
    server = TestServer(agency, host="127.0.0.1")
    await server.start_server()
    try:
        session = harness.app[HTTP]
        for _ in range(2):
            # by name: a default cookie jar keeps no cookie from a bare IP address, so 127.0.0.1 proves nothing
            async with session.get(f"http://localhost:{server.port}/") as resp:
                assert resp.status == 200 and "SESSION" in resp.cookies
        assert seen == [None, None]
    finally:
        await server.close()
