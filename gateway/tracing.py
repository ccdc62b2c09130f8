"""The correlation id goes with every outbound call: `X-Correlation-ID` as the gateway logs it, and a W3C
`traceparent` whose trace id is derived from it (the same id in every call of one request or job), so an
agency's logs and tracing join the gateway's. Added by the app's one client session (a TraceConfig)."""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace

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


async def _on_request_start(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
) -> None:
    cid = structlog.contextvars.get_contextvars().get("correlation_id")
    if not isinstance(cid, str) or not cid:
        return
    if CORRELATION_HEADER not in params.headers:  # a connector that sets its own keeps it
        params.headers[CORRELATION_HEADER] = cid
    if "traceparent" not in params.headers:
        params.headers["traceparent"] = traceparent(cid)


def correlation_trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_request_start)
    return config
