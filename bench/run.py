"""The Lienthong benchmark: one command, everything on loopback, figures side by side in one run.

    .venv/bin/python -m bench.run            # the full run (about 4 minutes)
    .venv/bin/python -m bench.run --quick    # a smoke run (about 40 seconds), same rows, noisy figures
    .venv/bin/python -m bench.run --store postgresql://postgres@127.0.0.1:5432/test   # the stores (bench/stores.py)

It starts the police simulator (the agency), a bare aiohttp reverse proxy (bench/proxy.py, the
reference hop) and the gateway on the demo configuration (gateway/sandbox/launcher.py), then drives them
with the load generator of bench/load.py:

1. look-up: identity verification through the gateway (auth, validation, plugin, signed REST call)
   against the same signed call to the simulator straight and through the bare proxy, taken in
   alternating rounds, at 1, 8, 32 and 128 connections, and 1,000 connections for memory;
2. submission: durable dossier submissions (auth, validation, routing, the declaration's document stored,
   group commit, 202), each with its own small inline PDF, every 202's dossier looked up in the SQLite
   file after the gateway is SIGKILLed; and submissions whose 1 MiB scan is uploaded first
   (POST /v1/documents, then the dossier naming it), each pair timed as one;
3. delivery: a backlog of 10,000 accepted dossiers (submitted while the agency is down) drained to
   the simulator once it is back, timed until every job is done, then until every callback landed.

Per row: throughput, p50 and p99 latency, CPU microseconds per request of the server process (from
/proc/<pid>/stat utime + stime), its RSS, and the load generator's own CPU per request. Results go
to bench/results/ (JSON and the printed table).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import tomli_w

from adapters.signing import HmacSigner
from bench.load import LoadResult, http_request, percentile, run_load
from gateway.plugin_manager import Registry, load_registry
from gateway.sandbox.agencies import Sandbox, sandbox
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.launcher import Child, SimSpec, Stack, free_port, wait_healthy
from plugins.police.population import population
from plugins.police.simulator import KEY_ID

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "demo"
RESULTS = ROOT / "bench" / "results"
# The agency whose simulator is the measured backend: its identity look-up and its dossiers. The others of
# the configuration run beside it, idle, as in production.
MEASURED = "police"
SLOTS = tomllib.loads((CONF / "agencies.toml").read_text())["agency"][MEASURED]["concurrency"]  # its calls in flight
CENTRES = ["centre-hanoi", "centre-hcm", "centre-danang"]
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    sweep: tuple[int, ...]  # connections of the look-up and submission sweeps
    rounds: int  # alternating rounds per look-up setting
    seconds: float  # measured seconds per look-up round
    warmup: float  # unmeasured seconds before each measured window
    submit_seconds: float  # measured seconds per submission setting
    many: int  # connections of the memory rows
    many_seconds: float
    backlog: int  # dossiers accepted while the agency is down, then drained
    upload_sweep: tuple[int, ...] = (32, 128)  # connections of the rows uploading a 1 MiB scan first
    upload_seconds: float = 5.0


FULL = Plan(
    sweep=(1, 8, 32, 128),
    rounds=3,
    seconds=3.0,
    warmup=0.5,
    submit_seconds=5.0,
    many=1000,
    many_seconds=5.0,
    backlog=10_000,
)
# The smoke run: every row of the full run, each for a moment.
QUICK = dataclasses.replace(
    FULL, rounds=1, seconds=0.5, warmup=0.2, submit_seconds=0.6, many_seconds=1.0, backlog=500, upload_seconds=1.0
)


# -- measuring the server processes ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def loop_seconds(pid: int) -> float:
    """utime + stime of a process's main thread (the event loop; the store's threads are the others)."""
    with open(f"/proc/{pid}/task/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine, all cores (/proc/stat): the load generator, the
    simulators and the gateway share them."""
    with open("/proc/stat", "rb") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / TICK, sum(ticks) / TICK


def memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process in MiB."""
    rss = peak = 0.0
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith(b"VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return rss, peak


class Probe:
    """Samples the CPU time of some processes at the edges of a measured window, and memory at its end."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.loop_start: dict[str, float] = {}
        self.loop: dict[str, float] = {}
        self.rss: dict[str, tuple[float, float]] = {}

    def __call__(self, edge: str) -> None:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        loop = {name: loop_seconds(pid) for name, pid in self.pids.items()}
        if edge == "start":
            self.start, self.loop_start = now, loop
        else:
            self.cpu = {name: now[name] - self.start[name] for name in now}
            self.loop = {name: loop[name] - self.loop_start[name] for name in loop}
            self.rss = {name: memory(pid) for name, pid in self.pids.items()}


# -- rows of the table ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    target: str
    conns: int
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    server_cpu: float = 0.0  # seconds, summed over rounds
    server_loop: float = 0.0  # of which the main thread's (the event loop)
    backend_cpu: float = 0.0
    gen_cpu: float = 0.0
    rss_mib: float = 0.0
    peak_mib: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    note: str = ""

    def add(self, res: LoadResult, probe: Probe, server: str, backend: str | None) -> None:
        self.requests += res.requests
        self.seconds += res.seconds
        self.latencies += res.latencies
        self.server_cpu += probe.cpu[server]
        self.server_loop += probe.loop[server]
        self.backend_cpu += probe.cpu[backend] if backend else 0.0
        self.gen_cpu += res.cpu_seconds
        self.rss_mib, peak = probe.rss[server]
        self.peak_mib = max(self.peak_mib, peak)
        self.statuses.update(res.statuses)
        self.errors += res.errors

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.requests * 1e6 if self.requests else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        bad = sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + self.errors
        return {
            "scenario": self.scenario,
            "target": self.target,
            "conns": self.conns,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(percentile(ordered, 50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 99) * 1000, 2),
            "server_cpu_us": round(self.per_request_us(self.server_cpu), 1),
            "loop_cpu_us": round(self.per_request_us(self.server_loop), 1),
            "backend_cpu_us": round(self.per_request_us(self.backend_cpu), 1),
            "gen_cpu_us": round(self.per_request_us(self.gen_cpu), 1),
            "rss_mib": round(self.rss_mib, 1),
            "peak_rss_mib": round(self.peak_mib, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "bad": bad,
            "note": self.note,
        }


# -- processes -------------------------------------------------------------------------------------------


async def start_module(name: str, args: list[str], *, url: str, health: str, log_dir: Path) -> Child:
    """A benchmark helper (bench/proxy.py) as a child process, started like the launcher's."""
    log_path = log_dir / f"{name}.log"
    fh = await asyncio.to_thread(log_path.open, "ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, stdout=fh, stderr=fh, stdin=asyncio.subprocess.DEVNULL, cwd=ROOT
        )
    finally:
        await asyncio.to_thread(fh.close)
    child = Child(name, proc, url, log_path)
    await wait_healthy(url + health, 30.0, child)
    return child


@functools.cache
def registry() -> Registry:
    return load_registry()


def measured_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    make = registry().agency_kinds[MEASURED].demo_dossiers
    assert make is not None, f"kind {MEASURED} offers no demo dossiers"
    return make(seed, count)


# Rates that no load of this benchmark reaches. The limits stay on, so every request takes its tokens as
# in production; but the load generator is one client sending as fast as the gateway takes it.
OUT_OF_REACH = {"requests_per_second": 1e9, "burst": 10**9, "lookups_per_minute": 1e11, "lookup_burst": 10**9}


def bench_sandbox(folder: Path) -> Sandbox:
    """The demo configuration bound to its simulators in `folder` (blocking), its rate limits out of reach."""
    box = sandbox(CONF, folder, registry())
    path = box.conf / "gateway.toml"
    conf = tomllib.loads(path.read_text(encoding="utf-8"))
    conf["rate_limits"] = conf.get("rate_limits", {}) | {"enabled": True, **OUT_OF_REACH}
    path.write_text(tomli_w.dumps(conf), encoding="utf-8")
    return box


@contextlib.asynccontextmanager
async def stack(
    work: Path,
    name: str,
    *,
    processing_delay: float = 0.05,
    faults: dict[str, Any] | None = None,
    start_sim: bool = True,
    env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Stack, SimSpec]]:
    """The gateway on the demo configuration with every agency's simulator beside it (gateway/sandbox/
    agencies.py); the measured agency's simulator is given the delay and faults, or left stopped."""
    folder = work / name
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    box = await asyncio.to_thread(bench_sandbox, folder)
    sim = box.sim(MEASURED)
    sim.processing_delay = processing_delay
    sim.faults = json.dumps(faults) if faults else None
    # Retries soon and an agency that is back is found at once: the drain measures throughput, not the
    # demo's backoff and probe schedule.
    quick = {
        "LIENTHONG_RETRY_BASE": "0.05",
        "LIENTHONG_PROBE_AFTER": "0.1",
        "LIENTHONG_PROBE_MAX": "0.2",
        "LIENTHONG_AGENCY_POLL": "2.0",  # the idle agencies polled as by default, not the demo's 0.5 s
        **(env or {}),
    }
    s = Stack(box.conf, folder, box.sims, extra_env=quick)
    try:
        await asyncio.gather(*(s.start_simulator(x) for x in box.sims if start_sim or x is not sim))
        await s.start_gateway()
        yield s, sim
    finally:
        await s.stop()


# -- requests ---------------------------------------------------------------------------------------


def lookup_factories(sim: SimSpec, gateway_host: str, sim_host: str) -> tuple[Callable[[int], bytes], ...]:
    """(to the gateway, to the agency's own API): the same identity checks of 64 citizens."""
    people = population(7)[:64]
    api = [
        http_request(
            "POST",
            "/v1/lookups/identity-verification",
            gateway_host,
            {"X-Api-Key": DEMO_KEYS["centre-hanoi"], "Content-Type": "application/json"},
            orjson.dumps(
                {"personal_id": c.personal_id, "full_name": c.full_name, "date_of_birth": c.date_of_birth.isoformat()}
            ),
        )
        for c in people
    ]
    wire = [
        orjson.dumps({"soDinhDanh": c.personal_id, "hoTen": c.full_name, "ngaySinh": f"{c.date_of_birth:%Y%m%d}"})
        for c in people
    ]
    signer = HmacSigner(KEY_ID, sim.secret)
    path = "/api/v1/dan-cu/xac-thuc"

    def to_gateway(i: int) -> bytes:
        return api[i % len(api)]

    def to_agency(i: int) -> bytes:
        # The simulator refuses a reused nonce, so each request is signed afresh, as the gateway does.
        body = wire[i % len(wire)]
        headers = {"Content-Type": "application/json", "Accept": "application/json", **signer("POST", path, body)}
        return http_request("POST", path, sim_host, headers, body)

    return to_gateway, to_agency


SIZE_MARK, SHA_MARK, CONTENT_MARK = 987654321, "f" * 64, "CONTENT"


def submission_factory(host: str, tag: str, pool: int = 500) -> Callable[[int], bytes]:
    """Realistic residence registrations from three centres, each with its own Idempotency-Key and its own
    declaration: the citizen's CT01 form (a one-page PDF of about 800 bytes, inline) with a line naming the
    submission, so that every submission stores a new document, as at a real counter."""
    forms: list[tuple[bytes, bytes]] = []  # (the JSON body with marks where the document goes, the PDF)
    for b in measured_dossiers(42, pool):
        a = b["attachments"][0]
        marked = {**a, "size": SIZE_MARK, "sha256": SHA_MARK, "content_base64": CONTENT_MARK}
        forms.append((orjson.dumps({**b, "attachments": [marked]}), base64.b64decode(a["content_base64"])))
    heads = [
        (
            f"POST /v1/dossiers HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Api-Key: {DEMO_KEYS[c]}\r\n"
        ).encode()
        for c in CENTRES
    ]

    def make(i: int) -> bytes:
        marked, pdf = forms[i % len(forms)]
        raw = pdf + f"% bench {tag} {i}\n".encode()
        body = (
            marked.replace(str(SIZE_MARK).encode(), str(len(raw)).encode(), 1)
            .replace(SHA_MARK.encode(), hashlib.sha256(raw).hexdigest().encode(), 1)
            .replace(CONTENT_MARK.encode(), base64.b64encode(raw), 1)
        )
        return heads[i % 3] + f"Idempotency-Key: bench-{tag}-{i}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    return make


# -- scenarios --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, plan: Plan, work: Path, log: Callable[[str], None], profile_dir: Path | None = None) -> None:
        self.plan = plan
        self.work = work
        self.log = log
        self.profile_dir = profile_dir
        self.rows: list[Row] = []
        self.facts: dict[str, Any] = {}

    def profiled(self, pid: int, scenario: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """py-spy on the gateway while a scenario runs, when asked for (--profile)."""
        if self.profile_dir is None:
            return contextlib.nullcontext()
        from bench.profile import Profiler

        return Profiler(pid, self.profile_dir / f"profile-{scenario}.txt")

    async def drive(
        self,
        row: Row,
        port: int,
        make: Callable[[int], bytes],
        probe: Probe,
        server: str,
        backend: str | None,
        *,
        seconds: float,
        conns: int | None = None,
        on_response: Callable[[int, bytes], None] | None = None,
    ) -> LoadResult:
        res = await run_load(
            "127.0.0.1",
            port,
            make,
            connections=conns or row.conns,
            duration=seconds,
            warmup=self.plan.warmup,
            on_response=on_response,
            on_window=probe,
        )
        row.add(res, probe, server, backend)
        return res

    async def lookups(self) -> None:
        plan = self.plan
        async with stack(self.work, "lookup") as (s, sim):
            assert s.gateway is not None and sim.child is not None
            proxy_port, trivial_port = free_port(), free_port()
            proxy = await start_module(
                "proxy",
                ["bench.proxy", "--port", str(proxy_port), "--target", sim.url],
                url=f"http://127.0.0.1:{proxy_port}",
                health="/__bench/health",
                log_dir=s.workdir,
            )
            trivial = await start_module(
                "trivial",
                ["bench.proxy", "--port", str(trivial_port), "--trivial"],
                url=f"http://127.0.0.1:{trivial_port}",
                health="/",
                log_dir=s.workdir,
            )
            try:
                pids = {
                    "gateway": s.gateway.proc.pid,
                    "sim": sim.child.proc.pid,
                    "proxy": proxy.proc.pid,
                    "trivial": trivial.proc.pid,
                }
                probe = Probe(pids)
                to_gateway, to_agency = lookup_factories(sim, f"127.0.0.1:{s.gateway_port}", f"127.0.0.1:{sim.port}")
                targets = [
                    ("agency (direct)", sim.port, to_agency, "sim", None),
                    ("bare proxy", proxy_port, to_agency, "proxy", "sim"),
                    ("gateway", s.gateway_port, to_gateway, "gateway", "sim"),
                ]
                # The load generator's ceiling: a server that costs nearly nothing.
                ceiling = Row("load generator", "trivial server", 32)
                await self.drive(ceiling, trivial_port, to_agency, probe, "trivial", None, seconds=plan.seconds)
                ceiling.note = "the load generator's own limit"
                self.rows.append(ceiling)
                async with self.profiled(s.gateway.proc.pid, "lookup"):
                    for conns in plan.sweep:
                        rows = {name: Row("look-up", name, conns) for name, *_ in targets}
                        for r in range(plan.rounds):
                            # alternate, and rotate the order each round, so drift hits every target alike
                            order = targets[r % 3 :] + targets[: r % 3]
                            for name, port, make, server, backend in order:
                                await self.drive(rows[name], port, make, probe, server, backend, seconds=plan.seconds)
                        self.rows += rows.values()
                        g, p = rows["gateway"], rows["bare proxy"]
                        self.log(f"  look-up x{conns}: gateway {g.rate:.0f}/s, proxy {p.rate:.0f}/s")
                    for name, port, make, server, backend in targets[1:]:
                        row = Row("look-up, memory", name, plan.many)
                        await self.drive(row, port, make, probe, server, backend, seconds=plan.many_seconds)
                        self.rows.append(row)
                        self.log(f"  look-up x{plan.many}: {name} {row.rate:.0f}/s, peak RSS {row.peak_mib:.0f} MiB")
                records, commits = await asyncio.to_thread(audit_batches, s.workdir / "lienthong.db")
                self.facts["lookup_audit"] = {"records": records, "commits": commits}
                each = records / max(commits, 1)
                self.log(f"  look-up audit: {records} records in {commits} commits ({each:.1f} each)")
            finally:
                await proxy.stop()
                await trivial.stop()

    async def lookups_on_uvloop(self, conns: int = 32) -> None:
        """The same look-ups with the gateway and the bare proxy both on uvloop (`[server] loop`)."""
        plan = self.plan
        async with stack(self.work, "lookup-uvloop", env={"LIENTHONG_LOOP": "uvloop"}) as (s, sim):
            assert s.gateway is not None and sim.child is not None
            proxy_port = free_port()
            proxy = await start_module(
                "proxy",
                ["bench.proxy", "--port", str(proxy_port), "--target", sim.url, "--loop", "uvloop"],
                url=f"http://127.0.0.1:{proxy_port}",
                health="/__bench/health",
                log_dir=s.workdir,
            )
            try:
                probe = Probe({"gateway": s.gateway.proc.pid, "sim": sim.child.proc.pid, "proxy": proxy.proc.pid})
                to_gateway, to_agency = lookup_factories(sim, f"127.0.0.1:{s.gateway_port}", f"127.0.0.1:{sim.port}")
                targets = [
                    ("bare proxy", proxy_port, to_agency, "proxy", "sim"),
                    ("gateway", s.gateway_port, to_gateway, "gateway", "sim"),
                ]
                rows = {name: Row("look-up, uvloop", name, conns) for name, *_ in targets}
                for r in range(plan.rounds):
                    for name, port, make, server, backend in targets[r % 2 :] + targets[: r % 2]:
                        await self.drive(rows[name], port, make, probe, server, backend, seconds=plan.seconds)
                self.rows += rows.values()
                g, p = rows["gateway"], rows["bare proxy"]
                self.log(f"  look-up x{conns} on uvloop: gateway {g.rate:.0f}/s, proxy {p.rate:.0f}/s")
            finally:
                await proxy.stop()

    async def submissions(self) -> None:
        plan = self.plan
        # The agency answers nothing (every call times out after the endpoint's 5 s), so the dispatcher
        # holds its 16 deliveries in flight and stays idle: the figure is the intake path alone.
        async with stack(self.work, "submit", faults={"timeout_rate": 1.0, "timeout_s": 600}) as (s, _):
            assert s.gateway is not None
            probe = Probe({"gateway": s.gateway.proc.pid})
            accepted: list[str] = []

            def keep(status: int, body: bytes) -> None:
                if status == 202:
                    accepted.append(orjson.loads(body)["id"])

            host = f"127.0.0.1:{s.gateway_port}"
            async with self.profiled(s.gateway.proc.pid, "submit"):
                for conns in plan.sweep:
                    row = Row("submission", "gateway", conns, note="agency stalled: intake only")
                    make = submission_factory(host, f"s{conns}")
                    await self.drive(
                        row, s.gateway_port, make, probe, "gateway", None, seconds=plan.submit_seconds, on_response=keep
                    )
                    self.rows.append(row)
                    self.log(f"  submission x{conns}: {row.rate:.0f}/s")
                row = Row("submission, memory", "gateway", plan.many, note="agency stalled: intake only")
                make = submission_factory(host, "many")
                await self.drive(
                    row, s.gateway_port, make, probe, "gateway", None, seconds=plan.many_seconds, on_response=keep
                )
                self.rows.append(row)
                self.log(f"  submission x{plan.many}: {row.rate:.0f}/s, peak RSS {row.peak_mib:.0f} MiB")
                for conns in plan.upload_sweep:
                    row = Row("upload 1 MiB+submit", "gateway", conns, note="POST /v1/documents, then the dossier")
                    res = await upload_then_submit(
                        s.gateway_url, conns, plan.upload_seconds, plan.warmup, probe, accepted
                    )
                    row.add(res, probe, "gateway", None)
                    self.rows.append(row)
                    self.log(f"  submission with a 1 MiB upload first x{conns}: {row.rate:.0f}/s")
            # Every 202 durable: kill the gateway outright, then find each acknowledged dossier on disk.
            await s.gateway.kill()
            found = await asyncio.to_thread(count_present, s.workdir / "lienthong.db", accepted)
            self.facts["durability"] = {"acknowledged": len(accepted), "found_after_sigkill": found}
            self.log(f"  durability: {found}/{len(accepted)} acknowledged dossiers on disk after SIGKILL")

    async def submissions_on_uvloop(self, conns: int = 128) -> None:
        """The same submissions with the gateway on uvloop (`[server] loop`), at one setting."""
        faults = {"timeout_rate": 1.0, "timeout_s": 600}
        async with stack(self.work, "submit-uvloop", faults=faults, env={"LIENTHONG_LOOP": "uvloop"}) as (s, _):
            assert s.gateway is not None
            probe = Probe({"gateway": s.gateway.proc.pid})
            row = Row("submission, uvloop", "gateway", conns, note="agency stalled: intake only")
            make = submission_factory(f"127.0.0.1:{s.gateway_port}", f"u{conns}")
            await self.drive(row, s.gateway_port, make, probe, "gateway", None, seconds=self.plan.submit_seconds)
            self.rows.append(row)
            self.log(f"  submission x{conns} on uvloop: {row.rate:.0f}/s")

    async def drain(self, loop: str = "asyncio") -> None:
        """The agency down while a backlog is accepted, then back: how fast the gateway delivers the backlog
        and applies the agency's callbacks (`loop`: the gateway's event loop, `[server] loop`)."""
        plan = self.plan
        uv = loop == "uvloop"
        scenario, env = ("drain, uvloop", {"LIENTHONG_LOOP": "uvloop"}) if uv else ("drain", None)
        async with stack(self.work, scenario.replace(", ", "-"), start_sim=False, env=env) as (s, sim):
            assert s.gateway is not None
            gw = s.gateway.proc.pid
            probe = Probe({"gateway": gw})
            host = f"127.0.0.1:{s.gateway_port}"
            intake = "backlog intake, uvloop" if uv else "backlog intake"
            row = Row(intake, "gateway", 32, note="agency down: deliveries fail and retry")
            async with self.profiled(gw, "backlog" + ("-uvloop" if uv else "")):
                res = await run_load(
                    "127.0.0.1",
                    s.gateway_port,
                    submission_factory(host, "backlog"),
                    connections=32,
                    count=plan.backlog,
                    on_window=probe,
                )
            row.add(res, probe, "gateway", None)
            self.rows.append(row)
            accepted = res.statuses[202]
            self.log(f"  backlog: {accepted} accepted at {row.rate:.0f}/s with the agency down")

            async with aiohttp.ClientSession() as session, self.profiled(gw, scenario.replace(", ", "-")):
                # The agency comes back: time until every job is done, then until every callback landed.
                cpu0, loop0 = cpu_seconds(gw), loop_seconds(gw)
                before = await counters(session, s.gateway_url)
                await s.start_simulator(sim)
                assert sim.child is not None
                agency = sim.child.proc.pid
                agency0, machine0 = cpu_seconds(agency), machine_busy()
                t0 = asked = time.perf_counter()
                done_at = finished_at = None
                while time.perf_counter() - t0 < 600:
                    far = not await near_end(session, sim.url, accepted, callbacks=done_at is not None)
                    if far and time.perf_counter() - asked < 1.0:
                        await asyncio.sleep(0.05)
                        continue
                    asked = time.perf_counter()
                    m = await metrics(session, s.gateway_url)
                    now = time.perf_counter()
                    if done_at is None and m["done"] >= accepted:
                        done_at, cpu_done, loop_done = now, cpu_seconds(gw), loop_seconds(gw)
                        rss_done, agency_done, machine_done = memory(gw), cpu_seconds(agency), machine_busy()
                    if m["finished"] >= accepted:
                        finished_at, cpu_fin, loop_fin = now, cpu_seconds(gw), loop_seconds(gw)
                        agency_fin = cpu_seconds(agency)
                        break
                    await asyncio.sleep(0.05)
                if done_at is None or finished_at is None:
                    raise RuntimeError(f"the backlog did not drain in 600 s; see {s.workdir}")
                async with session.get(sim.url + "/_sim/stats") as r:
                    stats = await r.json()
                after = await counters(session, s.gateway_url)
            ends = (
                ("jobs done", done_at, cpu_done, loop_done, agency_done),
                ("callbacks applied", finished_at, cpu_fin, loop_fin, agency_fin),
            )
            for label, t, cpu, loop, agency_cpu in ends:
                row = Row(scenario, "gateway", SLOTS, note=label)
                row.requests, row.seconds, row.server_cpu = accepted, t - t0, cpu - cpu0
                row.server_loop, row.backend_cpu = loop - loop0, agency_cpu - agency0
                row.rss_mib, row.peak_mib = rss_done if label == "jobs done" else memory(gw)
                row.statuses[200] = accepted
                self.rows.append(row)
            commits, writes, call_s, calls = (after[k] - before[k] for k in before)
            # The police endpoint's slots: busy while a call is out, so how busy they were
            # tells whether the agency's concurrency or the gateway bounded the drain.
            busy = call_s / (SLOTS * (done_at - t0))
            # How much of the two cores the whole machine used: what is left idle says whether the
            # cores or one process bounded the drain.
            cores = (machine_done[0] - machine0[0]) / (done_at - t0)
            cores_all = (machine_done[1] - machine0[1]) / (done_at - t0)
            self.facts[scenario] = {
                "agency_stats": stats,
                "commits": commits,
                "writes": writes,
                "police_slots_busy": round(busy, 3),
                "cores_busy": round(cores, 2),
                "cores": round(cores_all),
                "police_call_ms": round(call_s / max(calls, 1) * 1000, 2),
            }
            per_commit = writes / max(commits, 1)
            self.log(
                f"  {scenario}: {writes:.0f} writes in {commits:.0f} commits ({per_commit:.1f} each), "
                f"{commits / accepted:.2f} commits per dossier"
            )
            self.log(
                f"  {scenario}: {accepted / (done_at - t0):.0f} dossiers/s delivered, "
                f"{accepted / (finished_at - t0):.0f}/s finished (callbacks applied)"
            )
            self.log(
                f"  {scenario}: a police call took {call_s / max(calls, 1) * 1000:.1f} ms on average; "
                f"the {SLOTS} slots were busy {busy:.0%} of the time"
            )
            self.log(
                f"  {scenario}: the machine used {cores:.2f} of its {cores_all:.0f} cores; per dossier, "
                f"{(cpu_done - cpu0) / accepted * 1e6:.0f} µs of the gateway's CPU and "
                f"{(agency_done - agency0) / accepted * 1e6:.0f} µs of the police simulator's"
            )


def scan(i: int) -> bytes:
    """A 1 MiB scanned document, different each time (what makes a scan weigh what it does: noise)."""
    return b"%PDF-1.7\n% scan " + str(i).encode() + b"\n" + _NOISE[: MIB - 32]


_NOISE = os.urandom(MIB)


async def upload_then_submit(
    url: str, conns: int, seconds: float, warmup: float, probe: Probe, accepted: list[str]
) -> LoadResult:
    """`conns` clients, each uploading a 1 MiB scan (POST /v1/documents, with its Repr-Digest) and then
    submitting the dossier that names it, again and again; a pair is one request of the row. Driven by
    aiohttp rather than the raw load generator: the second request needs the first one's answer."""
    bodies = measured_dossiers(43, 500)
    n = 0
    recording = False
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0

    async def client(session: aiohttp.ClientSession, centre: str) -> None:
        nonlocal n, errors
        while True:
            i = n
            n += 1
            doc = scan(i)
            digest = base64.b64encode(hashlib.sha256(doc).digest()).decode()
            key = DEMO_KEYS[centre]
            started = time.perf_counter()
            try:
                headers = {"X-Api-Key": key, "Content-Type": "application/pdf", "Repr-Digest": f"sha-256=:{digest}:"}
                async with session.post(f"{url}/v1/documents", data=io.BytesIO(doc), headers=headers) as r:
                    up = await r.json()
                    status = r.status
                if status == 201:
                    body = bodies[i % len(bodies)]
                    a = body["attachments"][0]
                    named = {"component_code": a["component_code"], "name": a["name"], "upload_id": up["id"]}
                    headers = {"X-Api-Key": key, "Idempotency-Key": f"bench-upload-{conns}-{i}"}
                    async with session.post(
                        f"{url}/v1/dossiers", json={**body, "attachments": [named]}, headers=headers
                    ) as r:
                        answer = await r.json()
                        status = r.status
                    if status == 202:
                        accepted.append(answer["id"])
            except aiohttp.ClientError:
                errors += 1
                continue
            if recording:
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as session:
        tasks = [asyncio.create_task(client(session, CENTRES[k % 3])) for k in range(conns)]
        try:
            await asyncio.sleep(warmup)
            recording = True
            probe("start")
            t0, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.sleep(seconds)
            recording = False
            t1, cpu1 = time.perf_counter(), time.process_time()
            probe("end")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return LoadResult(len(latencies), t1 - t0, latencies, statuses, errors, cpu1 - cpu0)


async def near_end(session: aiohttp.ClientSession, sim_url: str, accepted: int, *, callbacks: bool = False) -> bool:
    """Whether the agency's own counters say a drain is about to end: every job answered (and, with
    `callbacks`, every callback acknowledged). The gateway's overview, which tells it for sure, scans the
    dossiers and jobs tables: asked five times a second throughout, it took about a tenth of the gateway's
    busy time, so it is asked often only near the end (and once a second before)."""
    async with session.get(sim_url + "/_sim/stats") as r:
        stats = await r.json()
    answered = stats.get("accepted", 0) + stats.get("duplicates", 0)
    return answered >= accepted and (not callbacks or stats.get("callbacks_ok", 0) >= accepted)


async def metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Done jobs and finished dossiers, from the operators' overview (/metrics never scans those tables)."""
    async with session.get(url + "/v1/admin/overview", headers={"X-Api-Key": DEMO_KEYS["operator"]}) as r:
        overview = await r.json()
    finished = sum(s["count"] for s in overview["dossiers_by_status"] if s["status"] == 9)
    return {"done": float(overview["jobs_by_state"].get("done", 0)), "finished": float(finished)}


def audit_batches(db: Path) -> tuple[int, int]:
    """Audit records, and the commits that wrote them (the records of one commit share their time)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT COUNT(*), COUNT(DISTINCT at) FROM audit").fetchone()
        return int(row[0]), int(row[1])
    finally:
        conn.close()


async def counters(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """From /metrics: the store writer's commits and the writes they held, and the seconds and number of
    the calls to the police agency (the measured one)."""
    async with session.get(url + "/metrics", headers={"X-Api-Key": DEMO_KEYS["operator"]}) as r:
        text = await r.text()
    found = dict.fromkeys(("commits", "writes", "police_call_seconds", "police_calls"), 0.0)
    names = {"lienthong_store_commits_total": "commits", "lienthong_store_writes_total": "writes"}
    calls = {
        "lienthong_agency_call_duration_seconds_sum": "police_call_seconds",
        "lienthong_agency_call_duration_seconds_count": "police_calls",
    }
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        metric, _, labels = name.partition("{")
        if metric in names:
            found[names[metric]] = float(value)
        elif metric in calls and 'agency="police"' in labels:
            found[calls[metric]] += float(value)
    return found


def count_present(db: Path, ids: list[str]) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("CREATE TEMP TABLE acked (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO acked VALUES (?)", ((i,) for i in ids))
        return int(conn.execute("SELECT COUNT(*) FROM acked JOIN dossiers USING (id)").fetchone()[0])
    finally:
        conn.close()


# -- report -------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }


COLUMNS = [
    ("scenario", "scenario", "<", 18),
    ("target", "target", "<", 15),
    ("conns", "conns", ">", 5),
    ("rate", "req/s", ">", 8),
    ("p50_ms", "p50 ms", ">", 7),
    ("p99_ms", "p99 ms", ">", 7),
    ("server_cpu_us", "CPU µs/req", ">", 10),
    ("loop_cpu_us", "loop µs", ">", 7),
    ("rss_mib", "RSS MiB", ">", 7),
    ("peak_rss_mib", "peak MiB", ">", 8),
    ("backend_cpu_us", "agency µs", ">", 9),
    ("gen_cpu_us", "gen µs", ">", 6),
    ("bad", "bad", ">", 4),
    ("note", "note", "<", 0),
]


def table(rows: list[dict[str, Any]]) -> str:
    def cell(v: Any, align: str, width: int) -> str:
        text = (f"{v:.1f}" if v else "") if isinstance(v, float) else str(v)  # 0.0: not measured in that row
        return f"{text:{align}{width}}"

    head = " | ".join(cell(title, a, w) for _, title, a, w in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(" | ".join(cell(r[k], a, w) for k, _, a, w in COLUMNS).rstrip())
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]], facts: dict[str, Any], plan: Plan) -> list[str]:
    def find(scenario: str, target: str, conns: int | None = None, note: str | None = None) -> dict[str, Any]:
        return next(
            r
            for r in rows
            if r["scenario"] == scenario
            and r["target"] == target
            and conns in (None, r["conns"])
            and note in (None, r["note"])
        )

    def cpu_ratio(g: dict[str, Any], p: dict[str, Any]) -> float:
        return g["server_cpu_us"] / p["server_cpu_us"] if p["server_cpu_us"] else 0.0

    out = []
    for conns in plan.sweep:
        g, p = find("look-up", "gateway", conns), find("look-up", "bare proxy", conns)
        ratio = g["rate"] / p["rate"] if p["rate"] else 0.0
        target = " (target <= 1.25)" if conns == 32 else ""
        out.append(
            f"look-up x{conns}: gateway/proxy CPU per request {cpu_ratio(g, p):.2f}{target}, throughput {ratio:.2f}"
        )
    uv = [r for r in rows if r["scenario"] == "look-up, uvloop"]
    if uv:
        g, p = find("look-up, uvloop", "gateway"), find("look-up, uvloop", "bare proxy")
        a = find("look-up", "gateway", g["conns"])
        out.append(
            f"look-up x{g['conns']} on uvloop: gateway/proxy CPU per request {cpu_ratio(g, p):.2f} (target <= 1.25), "
            f"gateway on uvloop/asyncio CPU {cpu_ratio(g, a):.2f}"
        )
    d, p, g = (find("look-up", t, 1) for t in ("agency (direct)", "bare proxy", "gateway"))
    out.append(
        f"one connection, p50 added to the agency's {d['p50_ms']:.2f} ms: "
        f"bare proxy +{p['p50_ms'] - d['p50_ms']:.2f} ms, gateway +{g['p50_ms'] - d['p50_ms']:.2f} ms"
    )
    best = max((r for r in rows if r["scenario"] == "submission"), key=lambda r: r["rate"])
    dur = facts.get("durability", {})
    durable = f"{dur.get('found_after_sigkill')}/{dur.get('acknowledged')}"
    out.append(
        f"submission, each with its own inline declaration: best {best['rate']:.0f}/s at {best['conns']} "
        f"connections (target >= 3000 at 128); durable after SIGKILL: {durable}"
    )
    # Against the bare hop of the same run: what one plain proxied HTTP exchange costs aiohttp here.
    hop = find("look-up", "bare proxy", 32)["server_cpu_us"]
    sub = next((r for r in rows if r["scenario"] == "submission" and r["conns"] == 128), best)
    out.append(
        f"submission x{sub['conns']}: {sub['server_cpu_us']:.0f} µs of gateway CPU each "
        f"({sub['loop_cpu_us']:.0f} on the event loop), {sub['server_cpu_us'] / hop:.2f} times a bare proxied "
        f"request ({hop:.0f} µs)"
    )
    uv_sub = [r for r in rows if r["scenario"] == "submission, uvloop"]
    if uv_sub:
        u = uv_sub[0]
        a = next((r for r in rows if r["scenario"] == "submission" and r["conns"] == u["conns"]), sub)
        out.append(
            f"submission x{u['conns']} with the gateway on uvloop: {u['rate']:.0f}/s, "
            f"{u['server_cpu_us']:.0f} µs of gateway CPU each "
            f"({u['server_cpu_us'] / a['server_cpu_us']:.2f} of asyncio's)"
        )
    uploads = [r for r in rows if r["scenario"] == "upload 1 MiB+submit"]
    if uploads:
        top = max(uploads, key=lambda r: r["rate"])
        out.append(
            f"submission with a 1 MiB scan uploaded first: best {top['rate']:.0f} pairs/s at {top['conns']} "
            f"connections ({top['rate']:.0f} MiB/s stored), p50 {top['p50_ms']:.0f} ms, "
            f"peak RSS {top['peak_rss_mib']:.0f} MiB; {top['server_cpu_us']:.0f} µs of gateway CPU per pair, "
            f"{top['server_cpu_us'] / (2 * hop):.2f} times two bare proxied requests"
        )
    drain = find("drain", "gateway", note="jobs done")
    out.append(
        f"drain of {drain['requests']}: {drain['rate']:.0f} dossiers/s (target >= 2000); "
        f"{drain['server_cpu_us']:.0f} µs of gateway CPU per dossier ({drain['loop_cpu_us']:.0f} on the event loop), "
        f"{drain['server_cpu_us'] / (2 * hop):.2f} times two bare proxied requests (a delivery and its callback); "
        f"the agency's slots busy {facts.get('drain', {}).get('police_slots_busy', 0):.0%} of the time; "
        f"the machine used {facts.get('drain', {}).get('cores_busy', 0):.2f} of its cores "
        f"(the police simulator {drain['backend_cpu_us']:.0f} µs per dossier)"
    )
    uv_drain = [r for r in rows if r["scenario"] == "drain, uvloop" and r["note"] == "jobs done"]
    if uv_drain:
        u = uv_drain[0]
        out.append(
            f"drain with the gateway on uvloop: {u['rate']:.0f} dossiers/s, {u['server_cpu_us']:.0f} µs of gateway "
            f"CPU per dossier ({u['server_cpu_us'] / drain['server_cpu_us']:.2f} of asyncio's)"
        )
    stores = [r for r in rows if r["scenario"] in ("store: submission", "store: drain")]
    if stores:
        # The stores' settings of this run, each against the same bare hop (a drained dossier: two exchanges).
        each = ", ".join(
            f"{r['scenario'].split(': ')[1]} on {r['target']} {r['rate']:.0f}/s "
            f"({r['server_cpu_us'] / (hop if r['scenario'] == 'store: submission' else 2 * hop):.2f})"
            for r in stores
        )
        out.append(f"stores, gateway CPU per item / bare proxied requests (a drained dossier: two): {each}")
    peaks = {r["scenario"]: r["peak_rss_mib"] for r in rows if r["conns"] == plan.many and r["target"] == "gateway"}
    each = ", ".join(f"{k.split(',')[0]}s {v:.0f} MiB" for k, v in peaks.items())
    out.append(f"gateway peak RSS with {plan.many} connections: {each} (target < 150)")
    return out


async def main_async(
    plan: Plan, out: Path, only: set[str], profile: bool = False, store: str | None = None, keep: bool = False
) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    if soft < want:  # the children inherit it: 1,000 connections need more than the usual 1,024
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def log(text: str) -> None:
        print(text, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-") as scratch:
        tmp = scratch if not keep else await asyncio.to_thread(tempfile.mkdtemp, prefix="lienthong-bench-")
        if profile:
            await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        bench = Bench(plan, Path(tmp), log, out if profile else None)
        log(f"Lienthong benchmark ({'quick' if plan.backlog < FULL.backlog else 'full'}), working folder {tmp}")
        try:
            if "lookup" in only:
                await bench.lookups()
                await bench.lookups_on_uvloop()
            if "submit" in only:
                await bench.submissions()
                await bench.submissions_on_uvloop()
            if "drain" in only:
                await bench.drain()
                await bench.drain("uvloop")
            if "stores" in only and store:
                from bench.stores import compare

                await compare(bench, store)
        except Exception:
            log(f"benchmark failed; process logs were in {tmp}")
            raise
    rows = [r.summary() for r in bench.rows]
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if plan.backlog < FULL.backlog else "full",
        "plan": asdict(plan),
        "machine": machine(),
        "rows": rows,
        "facts": bench.facts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = table(rows)
    if {"lookup", "submit", "drain"} <= only:
        result["verdicts"] = verdicts(rows, bench.facts, plan)
        text += "\n\n" + "\n".join(result["verdicts"])
    m = result["machine"]
    head = f"{m['cpu']}, {m['cores']} cores, {m['memory_mib']} MiB, Linux {m['kernel']}, Python {m['python']}"
    text = head + "\n\n" + text
    print()
    print(text)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for path in (out / f"bench-{stamp}.json", out / "latest.json"):
        await asyncio.to_thread(path.write_bytes, orjson.dumps(result, option=orjson.OPT_INDENT_2))
    await asyncio.to_thread((out / "latest.txt").write_text, text + "\n")
    print(f"\nresults: {out / f'bench-{stamp}.json'} ({result['seconds']} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few seconds per scenario: a smoke test, not figures")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and text results")
    p.add_argument(
        "--only",
        help="comma-separated scenarios: lookup, submit, drain, stores (default the first three; --store: stores)",
    )
    p.add_argument(
        "--store",
        metavar="postgresql://...",
        help="compare the stores: submissions and drain on SQLite, on PostgreSQL with 1 and 2 processes "
        "(a database of its own is made on this server for each setting, and dropped)",
    )
    p.add_argument("--profile", action="store_true", help="record the gateway with py-spy (pip install py-spy)")
    p.add_argument("--keep", action="store_true", help="keep the working folder (every process's log and store)")
    p.add_argument("--sweep", help="connections of the sweeps, e.g. 8,32 (default 1,8,32,128)")
    p.add_argument("--rounds", type=int, help="alternating rounds per look-up setting")
    p.add_argument("--seconds", type=float, help="measured seconds per look-up round")
    args = p.parse_args(argv)
    only = set((args.only or ("stores" if args.store else "lookup,submit,drain")).split(","))
    if not only <= {"lookup", "submit", "drain", "stores"}:
        p.error("--only takes lookup, submit, drain and stores")
    if "stores" in only and not args.store:
        p.error("--only stores needs --store postgresql://...")
    plan = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.sweep:
        changes["sweep"] = tuple(int(n) for n in args.sweep.split(","))
    if args.rounds:
        changes["rounds"] = args.rounds
    if args.seconds:
        changes["seconds"] = args.seconds
    if changes:
        plan = dataclasses.replace(plan, **changes)
    return asyncio.run(main_async(plan, args.out, only, args.profile, args.store, args.keep))


if __name__ == "__main__":
    raise SystemExit(main())
