"""Outbound calls carry the correlation id and a W3C traceparent derived from it, over real HTTP."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.tracing import correlation_middleware, trace_id

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


async def test_each_call_carries_the_correlation_id_and_a_traceparent() -> None:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/", record)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(middlewares=(correlation_middleware,)) as http:
            structlog.contextvars.bind_contextvars(correlation_id="job-42")
            for _ in range(2):
                async with http.post(str(server.make_url("/")), json={}) as r:
                    assert r.status == 200
            async with http.get(str(server.make_url("/")), headers={"X-Correlation-ID": "own"}) as r:
                assert r.status == 200
            structlog.contextvars.clear_contextvars()
            async with http.get(str(server.make_url("/"))) as r:  # outside a request or a job: nothing added
                assert r.status == 200
    finally:
        structlog.contextvars.clear_contextvars()
        await server.close()
    first, second, own, bare = seen
    assert first["X-Correlation-ID"] == second["X-Correlation-ID"] == "job-42"
    m1, m2 = TRACEPARENT.match(first["traceparent"]), TRACEPARENT.match(second["traceparent"])
    assert m1 and m2
    assert m1[1] == m2[1] == trace_id("job-42")  # one trace for the job's calls
    assert m1[2] != m2[2]  # each call its own span
    assert own["X-Correlation-ID"] == "own"
    assert "X-Correlation-ID" not in bare and "traceparent" not in bare


def test_a_correlation_id_of_32_hex_digits_is_the_trace_id() -> None:
    assert trace_id("4bf92f3577b34da6a3ce929d0e0e4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id("4BF92F3577B34DA6A3CE929D0E0E4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id("0" * 32) != "0" * 32  # all zeros is invalid in W3C trace context
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id("corr-123"))
