"""The reference hop: a bare aiohttp reverse proxy with one shared ClientSession, and nothing else.

No authentication, validation, logging or metrics: it reads the request, forwards it with the same
connection pool settings as the gateway (gateway/app.py), and returns the answer. What the gateway
costs beyond this is what Lienthong itself adds.

    python -m bench.proxy --port 9000 --target http://127.0.0.1:8701
    python -m bench.proxy --port 9001 --trivial   # a fixed answer from a raw asyncio server

`--trivial` is not a proxy: it answers every request with the same small JSON, at a cost close to
nothing, to measure the load generator's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.cli import event_loop_factory

HEALTH = "/__bench/health"
SESSION = web.AppKey("session", aiohttp.ClientSession)
TARGET = web.AppKey("target", str)
# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp recomputes.
DROP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"})


async def forward(request: web.Request) -> web.Response:
    if request.path == HEALTH:
        return web.Response(text="ok")
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP}
    async with request.app[SESSION].request(
        request.method, request.app[TARGET] + request.path_qs, data=body or None, headers=headers
    ) as resp:
        data = await resp.read()
        return web.Response(body=data, status=resp.status, content_type=resp.content_type)


async def _session(app: web.Application) -> AsyncIterator[None]:
    # The gateway's pool settings (gateway/app.py _http_session), so both hops queue alike.
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=128, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        app[SESSION] = session
        yield


def proxy_app(target: str) -> web.Application:
    app = web.Application()
    app[TARGET] = target.rstrip("/")
    app.router.add_route("*", "/{tail:.*}", forward)
    app.cleanup_ctx.append(_session)
    return app


_ANSWER = b'{"ok":true}'
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_ANSWER)).encode()
    + b"\r\n\r\n"
    + _ANSWER
)


class _Trivial(asyncio.Protocol):
    """Answers each request (head and Content-Length body) with the same bytes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            self.transport.write(_RESPONSE)


async def _serve_trivial(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Trivial, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--target", help="base URL of the server to forward to")
    group.add_argument("--trivial", action="store_true", help="answer every request with a fixed JSON")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop, as the gateway's")
    args = p.parse_args(argv)
    factory = event_loop_factory(args.loop)
    if args.trivial:
        with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve_trivial(args.host, args.port))
        return 0
    web.run_app(
        proxy_app(args.target),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        loop=factory() if factory else None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
