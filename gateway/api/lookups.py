"""Synchronous look-ups passed through to an agency plugin (e.g. verify a citizen's identity)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from pydantic import ValidationError

from gateway.api.dossiers import principal_of
from gateway.api.keys import CONNECTORS, GATE, LIVE, REGISTRY
from gateway.api.responses import json_response, read_json
from gateway.connector import LookupSpec
from gateway.errors import (
    AgencyError,
    AgencyTimeout,
    NotFound,
    ServiceUnavailable,
    UpstreamFailed,
    UpstreamTimeout,
    ValidationFailed,
)
from gateway.intake import field_errors

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


def held_back(app: web.Application, target: LookupTarget) -> None:
    """Nothing is sent to an agency in a maintenance window or paused, nor while its breaker is open (it is
    down, and a centre waits at its desk): 503 at once, with the time to come back in Retry-After."""
    gate, now = app[GATE], time.time()
    hold = gate.holds.hold(target.agency, target.endpoint, now)
    breaker = gate.breakers.get(target.agency, target.endpoint)
    if hold is not None:
        until, why = hold.until, f"in maintenance: {hold.reason}" if hold.kind == "window" else f"paused: {hold.reason}"
    elif breaker.state == "open" and breaker.next_probe_at is not None:
        until, why = breaker.next_probe_at, "not answering (its deliveries are held until it is back)"
    else:
        return
    raise ServiceUnavailable(
        f"{target.agency} is {why}",
        extra={"agency": target.agency, "until": datetime.fromtimestamp(until, UTC).isoformat()},
        headers={"Retry-After": str(max(1, math.ceil(until - now)))},
    )


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
    principal_of(request).require("lookup")
    name = request.match_info["name"]
    target = find(request.app, name)
    if target is None:
        raise NotFound(f"no agency answers the look-up {name!r}")
    raw, _ = await read_json(request)
    try:
        query = target.spec.input_model.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("the look-up has invalid fields", errors=field_errors(exc)) from None
    held_back(request.app, target)
    connector = request.app[CONNECTORS][(target.agency, target.endpoint)]
    try:
        answer = await connector.lookup(name, query)
    except AgencyTimeout as exc:
        raise UpstreamTimeout(f"{target.agency} did not answer in time", extra={"agency": target.agency}) from exc
    except AgencyError as exc:
        raise UpstreamFailed(exc.message, extra={"agency": target.agency}) from exc
    return json_response(answer)
