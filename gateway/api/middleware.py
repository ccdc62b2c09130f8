"""Per-request middleware: header hygiene, correlation id, rate limits, authentication, problem+json for
every error, one log line.

Header values that are not UTF-8 (aiohttp hands their bytes over as surrogate escapes) are refused
(400, naming the header) before anything else reads them. An address that failed to authenticate too
often waits (429) before any key it sends is checked; an authenticated client past its rate waits too.
"""

from __future__ import annotations

import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.keys import LIVE, METRICS, PRINCIPAL, RATE_LIMITS
from gateway.api.responses import problem_response
from gateway.auth import API_KEY_HEADER
from gateway.errors import (
    FieldError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    TooManyRequests,
    Unauthenticated,
)
from gateway.ratelimit import retry_after

log = structlog.get_logger("lienthong.access")
CORRELATION_HEADER = "X-Correlation-ID"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/dashboard"})


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def undecodable_header(request: web.Request) -> str | None:
    """The name of the first header whose value is not UTF-8, or None."""
    for name, value in request.headers.items():
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # surrogate escapes of bytes that were not UTF-8
                return name
    return None


def _header_error(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"the {name} header {message}", errors=[FieldError(f"headers.{name}", message, "invalid")])


def _check_headers(request: web.Request, undecodable: str | None, correlation: str | None) -> None:
    if undecodable is not None:
        raise _header_error(undecodable, "is not valid UTF-8")
    if correlation is not None and not correlation.isprintable():
        raise _header_error(CORRELATION_HEADER, "must be printable characters (no control characters)")


def _authenticate(request: web.Request) -> str:
    live, limits = request.app[LIVE].current, request.app[RATE_LIMITS]
    address = request.remote or "unknown"
    wait = limits.locked_out(address)
    if wait > 0:
        raise TooManyRequests(
            f"too many failed authentications from {address}; try again in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )
    try:
        principal = live.auth.authenticate(request.headers.get(API_KEY_HEADER))
    except Unauthenticated:
        limits.auth_failed(address)
        raise
    request[PRINCIPAL] = principal
    wait = limits.request(principal.client_id, principal.conf)
    if wait > 0:
        raise TooManyRequests(
            f"client {principal.client_id!r} sends requests faster than its rate limit; "
            f"try again in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )
    return principal.client_id


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    undecodable = undecodable_header(request)
    given = request.headers.get(CORRELATION_HEADER)
    usable = given is not None and undecodable != CORRELATION_HEADER and given.isprintable() and given.isascii()
    cid = given[:64] if given is not None and usable else os.urandom(16).hex()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=cid)
    started = time.perf_counter()
    client = None
    response: web.StreamResponse
    try:
        _check_headers(request, undecodable, given if undecodable is None else None)
        if request.path not in PUBLIC_PATHS and not request.path.startswith("/static/"):
            client = _authenticate(request)
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
    except web.HTTPRedirection as exc:
        response = exc  # a redirect is an answer, not an error
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
