"""The procedure catalog: search by agency kind or keyword; one procedure with its form's JSON Schema."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from contracts import ProcedureSpec
from gateway.api.keys import LIVE
from gateway.api.responses import json_response
from gateway.errors import NotFound

routes = web.RouteTableDef()


def describe(spec: ProcedureSpec, *, form: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = spec.model_dump(mode="json")
    if form:
        out["form_schema"] = spec.form_schema()
    return out


@routes.get("/v1/procedures")
async def search(request: web.Request) -> web.Response:
    found = request.app[LIVE].current.catalog.search(agency_kind=request.query.get("agency"), q=request.query.get("q"))
    return json_response({"items": [describe(p) for p in found]})


@routes.get("/v1/procedures/{code}")
async def get_one(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    spec = request.app[LIVE].current.catalog.get(code)
    if spec is None:
        raise NotFound(f"procedure {code} is not in the catalog")
    return json_response(describe(spec, form=True))
