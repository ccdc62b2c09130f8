"""Per-request middleware: header hygiene, correlation id, rate limits, authentication, the body under a
deadline (except on the routes that stream it: uploads), problem+json for every error (a missing right
audited), one log line.

Header values that are not UTF-8 (aiohttp hands their bytes over as surrogate escapes) are refused
(400, naming the header) before anything else reads them. An address that failed to authenticate too
often waits (429) before any credential it sends is checked; an authenticated client past its rate
waits too.
"""

from __future__ import annotations

import asyncio
import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.keys import LIVE, METRICS, PRINCIPAL, RATE_LIMITS, STORE, TOKEN_KEYS
from gateway.api.responses import problem_response
from gateway.auth import API_KEY_HEADER, Credentials, Principal
from gateway.errors import (
    FieldError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    TooManyRequests,
    Unauthenticated,
)
from gateway.ratelimit import retry_after
from gateway.rights import RightMissing
from gateway.server import gate_of
from gateway.store.base import AuditEntry
from gateway.tls import peer_certificate
from gateway.tokens import bearer, verify

log = structlog.get_logger("lienthong.access")
CORRELATION_HEADER = "X-Correlation-ID"
# The payment platform's callback carries no API key: its HMAC signature is checked by its handler.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json", "/dashboard", "/v1/payments/callback"})
METRICS_PATH = "/metrics"  # public when [metrics] public = true; else the admin right
# What citizens read without a key (guides, the catalog, signature checks, a dossier's public status):
# limited per source address instead of per client.
CITIZEN_PREFIXES = ("/v1/public/", "/v1/verify/", "/guide/", "/status/")
CITIZEN_PATHS = frozenset({"/v1/verify", "/guide"})
# Routes whose handler streams the body itself, under deadlines and a size limit of its own: an upload is
# larger than `limits.max_body_bytes` and must never be held in memory whole (gateway/api/documents.py).
STREAMED_BODY = frozenset({("POST", "/v1/documents")})


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def _public(request: web.Request) -> bool:
    path = request.path
    if path == METRICS_PATH:
        return request.app[LIVE].current.config.gateway.metrics.public
    return path in PUBLIC_PATHS or path.startswith("/static/")


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


def _citizen(path: str) -> bool:
    return path in CITIZEN_PATHS or path.startswith(CITIZEN_PREFIXES)


def _limit_citizen(request: web.Request) -> None:
    address = request.remote or "unknown"
    wait = request.app[RATE_LIMITS].public(address)
    if wait > 0:
        raise TooManyRequests(
            f"too many requests from {address}; try again in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )


async def _authenticate(request: web.Request) -> Principal:
    limits = request.app[RATE_LIMITS]
    address = request.remote or "unknown"
    wait = limits.locked_out(address)
    if wait > 0:
        raise TooManyRequests(
            f"too many failed authentications from {address}; try again in {retry_after(wait)} s",
            headers={"Retry-After": retry_after(wait)},
        )
    try:
        principal = await authenticate(request)
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
    return principal


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
    gate = gate_of(request)
    if gate is not None:
        gate.request_started()
    try:
        _check_headers(request, undecodable, given if undecodable is None else None)
        if _citizen(request.path):
            client = "public"  # keyless: the log line says so rather than naming nobody
            _limit_citizen(request)
        elif not _public(request):
            client = (await _authenticate(request)).client_id
        if request.body_exists and (request.method, _route_name(request)) not in STREAMED_BODY:
            await _read_body(request)
        response = await handler(request)
    except RightMissing as exc:
        await _audit_refusal(request, exc)
        response = problem_response(exc, request.path)
    except ProblemError as exc:
        response = problem_response(exc, request.path)
        if isinstance(exc, RequestTimeout):
            response.force_close()  # what is left of the body is still on its way: drop the connection
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
    finally:
        if gate is not None:
            gate.request_finished()
    elapsed = time.perf_counter() - started
    response.headers[CORRELATION_HEADER] = cid
    route = _route_name(request)
    request.app[METRICS].observe(route, request.method, response.status, client, elapsed)
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round(elapsed * 1000, 2),
        client=client,
    )
    return response


async def authenticate(request: web.Request) -> Principal:
    """The client: an API key or a bearer token, and the connection's verified client certificate."""
    current = request.app[LIVE].current
    token = bearer(request.headers.get("Authorization"))
    verified = None
    if token is not None:
        config = current.config
        verified = await verify(token, config.issuers, config.jwks, request.app[TOKEN_KEYS])
    creds = Credentials(
        api_key=request.headers.get(API_KEY_HEADER), token=verified, peer=peer_certificate(request.transport)
    )
    return current.auth.authenticate(creds)


async def _read_body(request: web.Request) -> None:
    """Read the whole body under `limits.body_timeout` (cached for the handler): a client that sends it
    slowly, or stops half-way, is answered 408 instead of holding a handler and a connection."""
    limit = request.app[LIVE].current.config.gateway.limits.body_timeout
    try:
        if request.content.is_eof():  # all of it came with the head: nothing to wait for, no timer
            await request.read()
            return
        async with asyncio.timeout(limit):
            await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"the body exceeds the limit of {request.app._client_max_size} bytes") from exc
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {limit:g} s") from None


async def _audit_refusal(request: web.Request, exc: RightMissing) -> None:
    principal = request.get(PRINCIPAL)
    if principal is None:
        return
    entry = AuditEntry(
        client_id=principal.client_id,
        action=exc.action,
        outcome="denied",
        basis="missing-right",
        detail={"right": exc.right, "path": request.path},
    )
    await request.app[STORE].audit([entry])
