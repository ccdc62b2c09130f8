"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from functools import cache

import orjson
from aiohttp import web

from gateway.api.dossiers import principal_of
from gateway.api.keys import LIVE, METRICS, STORE
from gateway.api.openapi import build
from gateway.api.openapi_ops import complete
from gateway.api.responses import json_response
from gateway.errors import StorageUnavailable
from gateway.metrics import CONTENT_TYPE

routes = web.RouteTableDef()
READY_WITHIN = 2.0  # seconds the readiness probe's commit may take before the gateway is called not ready


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready when the store can commit: one small write through the writer, like every other (no scan)."""
    try:
        async with asyncio.timeout(READY_WITHIN):
            await request.app[STORE].probe()
    except TimeoutError:
        raise StorageUnavailable(f"the store did not commit within {READY_WITHIN:.0f} s") from None
    except RuntimeError:  # the store is closed: the gateway is stopping
        raise StorageUnavailable("the store is closed") from None
    return json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the open jobs are read through their own index, at most every few seconds."""
    if not request.app[LIVE].current.config.gateway.metrics.public:
        principal_of(request).require("admin")
    m = request.app[METRICS]
    if m.open_jobs_stale():
        m.set_open_jobs(await request.app[STORE].open_jobs(list(request.app[LIVE].current.config.agencies)))
    return web.Response(body=await m.render_async(), headers={"Content-Type": CONTENT_TYPE})


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi_bytes(), content_type="application/json")


@cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(complete(build()))
