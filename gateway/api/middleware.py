"""Per-request middleware: correlation id, authentication, the body under a deadline, problem+json for
every error (a missing right audited), one log line."""

from __future__ import annotations

import asyncio
import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api.keys import LIVE, METRICS, PRINCIPAL, STORE, TOKEN_KEYS
from gateway.api.responses import problem_response
from gateway.auth import API_KEY_HEADER, Credentials, Principal
from gateway.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ProblemError, RequestTimeout
from gateway.rights import RightMissing
from gateway.server import gate_of
from gateway.store.base import AuditEntry
from gateway.tls import peer_certificate
from gateway.tokens import bearer, verify

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
    gate = gate_of(request)
    if gate is not None:
        gate.request_started()
    try:
        if request.path not in PUBLIC_PATHS and not request.path.startswith("/static/"):
            principal = await authenticate(request)
            request[PRINCIPAL] = principal
            client = principal.client_id
        if request.body_exists:
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
