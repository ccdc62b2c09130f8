"""Synchronous look-ups passed through to an agency plugin (e.g. verify a citizen's identity)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from gateway.api.access import audit
from gateway.api.dossiers import principal_of
from gateway.api.keys import CONNECTORS, LIVE, REGISTRY
from gateway.api.responses import json_response, read_json
from gateway.connector import LookupSpec
from gateway.errors import AgencyError, AgencyTimeout, NotFound, UpstreamFailed, UpstreamTimeout, ValidationFailed
from gateway.intake import field_errors
from gateway.rights import check_lookup

routes = web.RouteTableDef()


@dataclass(frozen=True)
class LookupTarget:
    spec: LookupSpec
    agency: str
    endpoint: str


def find(app: web.Application, name: str) -> LookupTarget | None:
    registry = app[REGISTRY]
    for a_name, agency in app[LIVE].current.config.agencies.items():
        spec = registry.lookup(agency.kind, name)
        if spec is not None:
            return LookupTarget(spec, a_name, next(iter(agency.endpoints)))
    return None


@routes.get("/v1/lookups")
async def list_lookups(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    items = []
    for a_name, agency in request.app[LIVE].current.config.agencies.items():
        for spec in registry.agency_kinds[agency.kind].lookups:
            items.append(
                {
                    "name": spec.name,
                    "agency": a_name,
                    "description": spec.description,
                    "input_schema": spec.input_model.model_json_schema(),
                }
            )
    return json_response({"items": items})


@routes.post("/v1/lookups/{name}")
async def run_lookup(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("lookup")
    name = request.match_info["name"]
    target = find(request.app, name)
    if target is None:
        raise NotFound(f"no agency answers the look-up {name!r}")
    check_lookup(p.client_id, p.conf.rights, name=name, agency=target.agency)
    raw, _ = await read_json(request)
    try:
        query = target.spec.input_model.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the look-up has invalid fields", errors=field_errors(exc)) from None
    connector = request.app[CONNECTORS][(target.agency, target.endpoint)]
    # Who asked which agency what kind of question; never the query itself (it holds personal ids: the
    # agency that answers keeps its own log). The record commits while the agency answers, and the answer
    # leaves only once it has: a look-up costs no more time than the slower of the two.
    recorded = asyncio.ensure_future(
        audit(request, "lookup", basis="right", detail={"lookup": name, "agency": target.agency})
    )
    try:
        answer = await connector.lookup(name, query)
    except AgencyTimeout as exc:
        raise UpstreamTimeout(f"{target.agency} did not answer in time", extra={"agency": target.agency}) from exc
    except AgencyError as exc:
        raise UpstreamFailed(exc.message, extra={"agency": target.agency}) from exc
    finally:
        await recorded  # failed or not, the look-up was asked: its record is there before anything is answered
    return json_response(answer)
