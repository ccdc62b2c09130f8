"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from functools import cache

import orjson
from aiohttp import web

from gateway.api.keys import DISPATCHER, GATE, METRICS, STORE
from gateway.api.openapi import build
from gateway.api.responses import json_response

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    counts = await request.app[STORE].counts()
    return json_response({"status": "ready", "jobs": counts["jobs_by_state"]})


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
