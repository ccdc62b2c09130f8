"""The listener `lienthong serve` runs: TLS, a cap on open connections, and a deadline for request headers.

aiohttp's `run_app` takes neither a connection cap nor a protocol wrapper, so the gateway runs its own
site: every accepted connection is a `_Gate` around aiohttp's request handler. The gate counts open
connections (past `server.max_connections` a new one gets 503 and is closed, at once, before any
handler runs) and gives a request's headers `server.header_timeout` seconds from their first byte (a
connection that trickles headers would otherwise hold its place for ever). Slow bodies are the
middleware's (`limits.body_timeout`), which reads them under a deadline before any handler does.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from typing import Any, cast

import orjson
import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config import Config
from gateway.errors import ServiceUnavailable
from gateway.tls import ServerTLS, reload_server_chain, server_context

log = structlog.get_logger("lienthong.server")


def _refusal() -> bytes:
    problem = ServiceUnavailable("the gateway has too many open connections; try again in a moment")
    body = orjson.dumps(problem.to_problem())
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


REFUSAL = _refusal()
LINGER = 1.0


class Listener:
    """What the gates of one listener share: the request-handler factory, the count and the limits."""

    def __init__(self, server: web.Server, max_connections: int, header_timeout: float) -> None:
        self.server = server
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.refused = 0  # connections turned away at the cap, since start
        self.timed_out = 0  # connections closed because their headers did not come in time

    def __call__(self) -> _Gate:
        return _Gate(self)


class _Gate(asyncio.Protocol):
    """One connection. With TLS, `connection_made` comes after the handshake, so the cap counts
    connections that finished it; handshakes in progress are bounded by `tls.handshake_timeout`."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.inner: RequestHandler | None = None
        self.transport: asyncio.Transport | None = None
        self.in_request = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the Transport methods without deriving from asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        listener = self.listener
        if listener.open >= listener.max_connections:
            listener.refused += 1
            transport.write(REFUSAL)
            transport.close()
            return
        listener.open += 1
        self.inner = listener.server()
        self.inner.connection_made(transport)
        self._arm()  # the first request's headers, from the moment the connection is open

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if not self.in_request and self._timer is None:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None  # type: ignore[func-returns-value]

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        inner, self.inner = self.inner, None
        if inner is not None:
            self.listener.open -= 1
            inner.connection_lost(exc)

    # The middleware says when a request's headers have been read and when its handling ended.
    def request_started(self) -> None:
        self.in_request = True
        self._disarm()

    def request_finished(self) -> None:
        self.in_request = False

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.listener.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        if self.in_request or self.transport is None:
            return
        self.listener.timed_out += 1
        peer = self.transport.get_extra_info("peername")
        log.warning("connection_closed", reason="request headers too slow", peer=str(peer))
        self.transport.close()


def gate_of(request: web.BaseRequest) -> _Gate | None:
    """The gate of a request's connection (None under another server, e.g. the test server)."""
    transport = request.transport
    proto = transport.get_protocol() if transport is not None else None
    return proto if isinstance(proto, _Gate) else None


class ListenerSite(web.BaseSite):
    """A TCP site whose connections pass through the gates of one `Listener`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        backlog: int,
        max_connections: int,
        header_timeout: float,
        handshake_timeout: float | None = None,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self.reuse_port = reuse_port  # several processes listen on the port (serve --workers)
        self.host, self.port = host, port
        self.max_connections, self.header_timeout = max_connections, header_timeout
        self.handshake_timeout = handshake_timeout
        self.listener: Listener | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.listener = Listener(server, self.max_connections, self.header_timeout)
        extra: dict[str, Any] = {}
        if self._ssl_context is not None and self.handshake_timeout is not None:
            extra["ssl_handshake_timeout"] = self.handshake_timeout
        if self.reuse_port:
            extra["reuse_port"] = True
        self._server = await asyncio.get_running_loop().create_server(
            self.listener, self.host, self.port, ssl=self._ssl_context, backlog=self._backlog, **extra
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]


class ServerTLSState:
    """The listener's SSL context and what it was built from, so SIGHUP can load a renewed certificate."""

    def __init__(self, context: ssl.SSLContext, settings: ServerTLS, config: Config) -> None:
        self.context, self.settings, self.base = context, settings, config.base_dir

    def reload(self) -> dict[str, str]:
        """Load the certificate and key files again (blocking: call in a thread); what is served now."""
        cert = reload_server_chain(self.context, self.settings, self.base)
        return {"subject": cert.subject.rfc4514_string(), "not_after": cert.not_valid_after_utc.isoformat()}


SERVER_TLS = web.AppKey("server_tls", ServerTLSState)


async def start_listener(
    app: web.Application, config: Config, port: int | None = None, *, reuse_port: bool = False
) -> tuple[web.AppRunner, ListenerSite]:
    """Start the app behind one listener as `gateway.toml [server]` describes it; the caller cleans up
    the runner. Used by `serve` and by tests that need the real listener."""
    settings = config.gateway.server
    ssl_context: ssl.SSLContext | None = None
    if settings.tls is not None:
        ssl_context = await asyncio.to_thread(server_context, settings.tls, config.base_dir)
        app[SERVER_TLS] = ServerTLSState(ssl_context, settings.tls, config)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=settings.keepalive_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        # After an answer sent before the body was read (408, 413, 401), aiohttp reads what is left of the
        # body before closing, up to this long (10 s by default): a slow sender would keep its place.
        lingering_time=LINGER,
    )
    try:
        await runner.setup()
    except BaseException:
        await runner.cleanup()  # what start-up opened before it failed is closed again
        raise
    site = ListenerSite(
        runner,
        settings.host,
        settings.port if port is None else port,
        ssl_context=ssl_context,
        backlog=settings.backlog,
        max_connections=settings.max_connections,
        header_timeout=settings.header_timeout,
        handshake_timeout=settings.tls.handshake_timeout if settings.tls else None,
        reuse_port=reuse_port,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info(
        "listening",
        url=site.name,
        tls=settings.tls is not None,
        max_connections=settings.max_connections,
        loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    return runner, site


async def serve(app: web.Application, config: Config, port: int | None = None, *, reuse_port: bool = False) -> None:
    """Run until SIGTERM or SIGINT, then shut down in order (aiohttp's cleanup contexts, in reverse)."""
    runner, _ = await start_listener(app, config, port, reuse_port=reuse_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
