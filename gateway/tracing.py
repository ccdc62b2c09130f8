"""The correlation id goes with every outbound call: `X-Correlation-ID` as the gateway logs it, and a W3C
`traceparent` whose trace id is derived from it (the same id in every call of one request or job), so an
agency's logs and tracing join the gateway's. Added by the app's one client session (a client middleware)."""

from __future__ import annotations

import hashlib
import os

import aiohttp
import structlog

CORRELATION_HEADER = "X-Correlation-ID"
_HEX = frozenset("0123456789abcdef")


def trace_id(correlation_id: str) -> str:
    """32 lowercase hex digits: the correlation id itself when it is one (not all zeros), else its hash."""
    cid = correlation_id.lower()
    if len(cid) == 32 and set(cid) <= _HEX and cid.strip("0"):
        return cid
    return hashlib.sha256(correlation_id.encode()).hexdigest()[:32]


def traceparent(correlation_id: str) -> str:
    """version 00, the trace id, a new span id for this call, sampled."""
    return f"00-{trace_id(correlation_id)}-{os.urandom(8).hex()}-01"


async def correlation_middleware(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A client middleware rather than a TraceConfig: tracing sends a signal for every step of every call
    (about ten awaits each), where this is one call."""
    cid = structlog.contextvars.get_contextvars().get("correlation_id")
    if isinstance(cid, str) and cid:
        headers = request.headers
        if CORRELATION_HEADER not in headers:  # a connector that sets its own keeps it
            headers[CORRELATION_HEADER] = cid
        if "traceparent" not in headers:
            headers["traceparent"] = traceparent(cid)
    return await handler(request)
