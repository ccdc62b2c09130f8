"""Per-request middleware: correlation id, authentication, problem+json for every error, one log line."""

from __future__ import annotations

import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.keys import LIVE, METRICS, PRINCIPAL
from gateway.api.responses import problem_response
from gateway.auth import API_KEY_HEADER
from gateway.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ProblemError

log = structlog.get_logger("lienthong.access")
CORRELATION_HEADER = "X-Correlation-ID"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/dashboard"})


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    cid = request.headers.get(CORRELATION_HEADER) or os.urandom(16).hex()
    cid = cid[:64]
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=cid)
    started = time.perf_counter()
    client = None
    try:
        if request.path not in PUBLIC_PATHS and not request.path.startswith("/static/"):
            principal = request.app[LIVE].current.auth.authenticate(request.headers.get(API_KEY_HEADER))
            request[PRINCIPAL] = principal
            client = principal.client_id
        response = await handler(request)
    except ProblemError as exc:
        response = problem_response(exc, request.path)
    except web.HTTPRequestEntityTooLarge:
        response = problem_response(PayloadTooLarge("the request body is too large"), request.path)
    except web.HTTPNotFound:
        response = problem_response(NotFound(f"no resource at {request.path}"), request.path)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = problem_response(
            MethodNotAllowed(f"{request.method} is not allowed here; allowed: {allowed}", headers={"Allow": allowed}),
            request.path,
        )
    except Exception:
        log.exception("unhandled_error", path=request.path)
        response = problem_response(
            ProblemError("the gateway failed to handle this request; it was logged"), request.path
        )
    elapsed = time.perf_counter() - started
    response.headers[CORRELATION_HEADER] = cid
    route = _route_name(request)
    request.app[METRICS].observe(route, response.status, elapsed)
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round(elapsed * 1000, 2),
        client=client,
    )
    return response
