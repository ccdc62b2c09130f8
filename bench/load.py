"""A closed-loop HTTP/1.1 load generator on raw asyncio protocols (keep-alive, one request in flight
per connection), cheap enough to leave the CPU to the servers it measures.

It is callback driven: a response completes inside `data_received`, which records its latency and
writes the next request at once; there is no coroutine or future per request. Its own CPU time is
reported with every run (and its ceiling against a trivial server) so it can be shown not to be
the bottleneck.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# i -> the bytes of request i (request line, headers, body).
RequestFactory = Callable[[int], bytes]
# (status, body) of each completed response, for callers that keep what the server answered.
ResponseHook = Callable[[int, bytes], None]


@dataclass
class LoadResult:
    requests: int  # completed inside the measured window
    seconds: float  # length of the measured window
    latencies: list[float]  # seconds, one per completed request in the window
    statuses: Counter[int]
    errors: int  # connections lost or refused
    cpu_seconds: float  # the load generator's own CPU time (user + system) over the window
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return percentile(sorted(self.latencies), p)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


class _Run:
    """Shared state of one load run: which request comes next, what is recorded, when to stop."""

    def __init__(self, make: RequestFactory, count: int | None, on_response: ResponseHook | None) -> None:
        self.make = make
        self.count = count
        self.on_response = on_response
        self.issued = 0
        self.recording = count is not None  # a counted run records from the first request
        self.stopping = False
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.open = 0
        self.all_closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def next_request(self) -> bytes | None:
        if self.stopping or (self.count is not None and self.issued >= self.count):
            return None
        i = self.issued
        self.issued += 1
        return self.make(i)

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.all_closed.done():
            self.all_closed.set_result(None)


class _Conn(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buf = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.head_end = -1
        self.need = -1  # total bytes of the response being read (head + body), once known

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        req = self.run.next_request()
        assert self.transport is not None
        if req is None:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head_end = end + 4
                head = bytes(buf[:end]).lower()
                i = head.find(b"\r\ncontent-length:")
                if i < 0:
                    raise RuntimeError("the load generator reads Content-Length responses only")
                j = head.find(b"\r\n", i + 2)
                self.need = self.head_end + int(head[i + 17 : j if j > 0 else None])
            if len(buf) < self.need:
                return
            status = int(buf[9:12])
            run = self.run
            if run.recording:
                run.latencies.append(time.perf_counter() - self.sent_at)
                run.statuses[status] += 1
                if run.on_response is not None:
                    run.on_response(status, bytes(buf[self.head_end : self.need]))
            del buf[: self.need]
            self.need = -1
            self._send()
            if not buf:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or self.need >= 0 or self.buf:
            self.run.errors += 1
        self.run.closed()


async def run_load(
    host: str,
    port: int,
    make: RequestFactory,
    *,
    connections: int,
    duration: float | None = None,
    warmup: float = 0.0,
    count: int | None = None,
    on_response: ResponseHook | None = None,
    on_window: Callable[[str], None] | None = None,
) -> LoadResult:
    """Drive `connections` keep-alive connections, each with one request in flight.

    Either for `warmup` + `duration` seconds (only the last `duration` is measured), or until
    `count` requests are answered (all measured). `on_window("start"|"end")` is called at the edges
    of the measured window, for the caller to sample the servers' CPU and memory there.
    """
    if (duration is None) == (count is None):
        raise ValueError("give a duration or a count")
    loop = asyncio.get_running_loop()
    run = _Run(make, count, on_response)
    conns: list[asyncio.Transport] = []
    for _ in range(connections):
        try:
            transport, _ = await loop.create_connection(lambda: _Conn(run), host, port)
        except OSError:
            run.errors += 1
            continue
        run.open += 1
        conns.append(transport)
    if not conns:
        raise ConnectionError(f"cannot connect to {host}:{port}")
    if duration is not None:
        await asyncio.sleep(warmup)
        run.latencies.clear()
        run.statuses.clear()
    run.recording = True
    if on_window:
        on_window("start")
    t0, cpu0 = time.perf_counter(), time.process_time()
    if duration is not None:
        await asyncio.sleep(duration)
        run.recording = False
        t1, cpu1 = time.perf_counter(), time.process_time()
        if on_window:
            on_window("end")
        run.stopping = True
        # requests in flight finish (unrecorded); a server that stalls is not waited for long
        try:
            await asyncio.wait_for(asyncio.shield(run.all_closed), 30.0)
        except TimeoutError:
            for t in conns:
                t.abort()
    else:
        await run.all_closed
        t1, cpu1 = time.perf_counter(), time.process_time()
        if on_window:
            on_window("end")
    return LoadResult(
        requests=len(run.latencies),
        seconds=t1 - t0,
        latencies=run.latencies,
        statuses=run.statuses,
        errors=run.errors,
        cpu_seconds=cpu1 - cpu0,
    )


def http_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
