"""The operator dashboard: one static page; its data comes from /v1/admin/* with the operator's key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

routes = web.RouteTableDef()
PAGE = Path(__file__).resolve().parents[1] / "static" / "dashboard.html"
_PAGE = web.AppKey("dashboard_page", bytes)


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[_PAGE],
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            "Cache-Control": "no-store",
        },
    )


async def load_page(app: web.Application) -> None:
    """Read once at start-up, in a thread: no file I/O per request, none on the event loop."""
    app[_PAGE] = await asyncio.to_thread(PAGE.read_bytes)
