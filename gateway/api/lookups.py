"""Synchronous look-ups passed through to an agency plugin (e.g. verify a citizen's identity).

Each client may run so many a minute (its own [rate_limits], then 429 with Retry-After): a look-up
that says which field did not match would otherwise let a date of birth be found by trying. Each one
is audited before the agency is asked: who asked, which look-up, and each field of the query as a keyed
hash ([audit] pseudonym_key), never in clear; whoever holds the key can tell whether a given person
was looked up, nobody can read who was.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.api.access import audit_later
from gateway.api.dossiers import principal_of
from gateway.api.keys import CONNECTORS, GATE, LIVE, RATE_LIMITS, REGISTRY
from gateway.api.responses import json_response, read_json
from gateway.connector import LookupSpec
from gateway.errors import (
    AgencyError,
    AgencyTimeout,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamFailed,
    UpstreamTimeout,
    ValidationFailed,
)
from gateway.intake import field_errors
from gateway.ratelimit import retry_after
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


def held_back(app: web.Application, target: LookupTarget) -> None:
    """Nothing is sent to an agency in a maintenance window or paused, nor while its breaker is open (it is
    down, and a centre waits at its desk): 503 at once, with the time to come back in Retry-After."""
    hold_check(app, target.agency, target.endpoint)


def hold_check(app: web.Application, agency: str, endpoint: str) -> None:
    """`held_back` for any synchronous call to an agency endpoint (look-ups, appointments)."""
    gate, now = app[GATE], time.time()
    hold = gate.holds.hold(agency, endpoint, now)
    breaker = gate.breakers.get(agency, endpoint)
    if hold is not None:
        until, why = hold.until, f"in maintenance: {hold.reason}" if hold.kind == "window" else f"paused: {hold.reason}"
    elif breaker.state == "open" and breaker.next_probe_at is not None:
        until, why = breaker.next_probe_at, "not answering (its deliveries are held until it is back)"
    else:
        return
    raise ServiceUnavailable(
        f"{agency} is {why}",
        extra={"agency": agency, "until": datetime.fromtimestamp(until, UTC).isoformat()},
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


def pseudonym(value: Any, key: str) -> str:
    """A keyed hash standing for a value in the audit log (HMAC-SHA256, 128 bits shown)."""
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if key:
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def query_record(query: BaseModel, key: str) -> dict[str, str]:
    return {field: pseudonym(value, key) for field, value in query.model_dump(mode="json").items()}


@routes.post("/v1/lookups/{name}")
async def run_lookup(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("lookup")
    wait = request.app[RATE_LIMITS].lookup(p.client_id, p.conf)
    if wait > 0:
        raise TooManyRequests(
            f"client {p.client_id!r} ran more look-ups than its limit allows; try again in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )
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
    held_back(request.app, target)
    key = request.app[LIVE].current.config.gateway.audit.pseudonym_key
    detail = {"lookup": name, "agency": target.agency, "query": query_record(query, key)}
    connector = request.app[CONNECTORS][(target.agency, target.endpoint)]
    # Who asked which agency what, the query's fields as keyed hashes only. The record commits while the
    # agency answers (under load, with the records of other look-ups in flight), and the answer leaves
    # only once it has: a look-up costs no more time than the slower of the two.
    recorded = audit_later(request, "lookup", basis="lookup-scope", detail=detail)
    try:
        answer = await connector.lookup(name, query)
    except AgencyTimeout as exc:
        raise UpstreamTimeout(f"{target.agency} did not answer in time", extra={"agency": target.agency}) from exc
    except AgencyError as exc:
        raise UpstreamFailed(exc.message, extra={"agency": target.agency}) from exc
    finally:
        await recorded  # failed or not, the look-up was asked: its record is there before anything is answered
    return json_response(answer)
