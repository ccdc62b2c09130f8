"""Agencies report status changes here; the plugin turns their wire format into canonical updates."""

from __future__ import annotations

from aiohttp import web

from gateway.api.dossiers import principal_of
from gateway.api.keys import CONNECTORS, LIVE, STORE
from gateway.api.responses import json_response
from gateway.errors import Forbidden, NotFound

routes = web.RouteTableDef()


@routes.post("/v1/callbacks/{agency}")
async def callback(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("callback")
    agency = request.match_info["agency"]
    if p.conf.agency != agency:
        raise Forbidden(f"client {p.client_id!r} may post callbacks for {p.conf.agency!r} only")
    conf = request.app[LIVE].current.config.agencies.get(agency)
    if conf is None:
        raise NotFound(f"no agency {agency!r}")
    endpoint = next(iter(conf.endpoints))
    body = await request.read()
    connector = request.app[CONNECTORS][(agency, endpoint)]
    updates = await connector.handle_callback(body, request.headers)
    store = request.app[STORE]
    applied = 0
    for update in updates:
        try:
            outcome = await store.apply_update(update, actor=f"agency:{agency}")
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        applied += outcome.applied
    return json_response({"received": len(updates), "applied": applied})
