"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from functools import cache

import orjson
from aiohttp import web

from gateway.api.keys import DISPATCHER, GATE, METRICS, STORE
from gateway.api.openapi import build
from gateway.api.responses import json_response
from gateway.errors import StorageUnavailable

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
    counts = await request.app[STORE].counts()
    d = request.app[DISPATCHER]
    extra: dict[str, float] = {
        "lienthong_deliveries_total": d.delivered,
        "lienthong_delivery_failures_total": d.failed,
    }
    for state, n in counts["jobs_by_state"].items():
        extra[f'lienthong_jobs{{state="{state}"}}'] = n
    for status, n in counts["dossiers_by_status"].items():
        extra[f'lienthong_dossiers{{status="{status}"}}'] = n
    extra.update(request.app[GATE].gauges())  # breakers, holds and held jobs, from memory
    return web.Response(text=request.app[METRICS].render(extra), content_type="text/plain")


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi_bytes(), content_type="application/json")


@cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(build())
