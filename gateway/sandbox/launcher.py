"""Starts the gateway and agency simulators as child processes on loopback, the way operators run them.

Used by the demo, the end-to-end tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

_LOWEST_PORT = 20000
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


_EPHEMERAL_LOW = _ephemeral_low()  # read once at import, never from the event loop


def free_port() -> int:
    """A loopback port free now, for a server another process starts a moment later.

    Taken below the ephemeral range when there is room: a port the kernel hands out for binding to 0
    can also be taken, before that server binds it, as the source port of an outgoing connection.
    """
    high = _EPHEMERAL_LOW
    for _ in range(50 if high - _LOWEST_PORT > 1000 else 0):
        port = random.randrange(_LOWEST_PORT, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    url: str
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.alive:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or an OOM kill."""
        await self.stop(signal.SIGKILL)


async def wait_healthy(
    url: str, timeout: float = 60.0, child: Child | None = None, ssl_context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if child is not None and not child.alive:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}; see {child.log_path}")
            try:
                tls: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=1), ssl=tls) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy in {timeout}s")


async def start_child(
    name: str,
    args: list[str],
    *,
    url: str,
    health: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    ssl_context: ssl.SSLContext | None = None,
    cwd: Path | None = None,
) -> Child:
    log_path = log_dir / f"{name}.log"
    fh = await asyncio.to_thread(log_path.open, "ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            stdout=fh,
            stderr=fh,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    finally:
        await asyncio.to_thread(fh.close)
    child = Child(name, proc, url, log_path)
    await wait_healthy(url + health, timeout, child, ssl_context)
    return child


@dataclass
class SimSpec:
    """One agency simulator of a stack, and how the configuration finds it."""

    kind: str  # the plugin's agency kind
    agency: str  # the agency instance in the configuration (its callback path)
    url_env: str = ""  # environment variable a configuration reads for the endpoint URL, if any
    callback_key: str = ""
    secret: str = "demo-secret"
    secret_env: str | None = None
    processing_delay: float = 0.2
    settings: dict[str, object] = field(default_factory=dict)
    faults: str | None = None
    port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """A gateway on a configuration folder with the agency simulators beside it, all on loopback."""

    conf: Path
    workdir: Path
    sims: list[SimSpec]
    gateway_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    gateway: Child | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def sim(self, agency: str) -> SimSpec:
        return next(s for s in self.sims if s.agency == agency)

    def env(self) -> dict[str, str]:
        env = {"LIENTHONG_PORT": str(self.gateway_port), "LIENTHONG_DB": str(self.workdir / "lienthong.db")}
        for s in self.sims:
            if s.url_env:
                env[s.url_env] = s.url
            if s.secret_env:
                env[s.secret_env] = s.secret
        return env | self.extra_env

    async def start_simulator(self, spec: SimSpec) -> Child:
        import json

        args = [
            "simulate",
            spec.kind,
            "--port",
            str(spec.port),
            "--callback-url",
            f"{self.gateway_url}/v1/callbacks/{spec.agency}",
            "--callback-key",
            spec.callback_key,
            "--secret",
            spec.secret,
            "--processing-delay",
            str(spec.processing_delay),
            "--settings",
            json.dumps(spec.settings),
        ]
        if spec.faults:
            args += ["--faults", spec.faults]
        spec.child = await start_child(
            f"{spec.agency}-simulator", args, url=spec.url, health="/_sim/stats", log_dir=self.workdir, env=self.env()
        )
        return spec.child

    async def start_simulators(self) -> None:
        await asyncio.gather(*(self.start_simulator(s) for s in self.sims))

    async def start_gateway(self) -> Child:
        self.gateway = await start_child(
            "gateway",
            ["serve", "--conf", str(self.conf), "--demo-secrets"],
            url=self.gateway_url,
            health="/healthz",
            log_dir=self.workdir,
            env=self.env(),
        )
        return self.gateway

    async def stop(self) -> None:
        for child in (self.gateway, *(s.child for s in self.sims)):
            if child is not None:
                await child.stop()
