"""The store comparison of `python -m bench.run --store postgresql://...`: submissions and the drain of a
backlog on the embedded SQLite store (one process), then on PostgreSQL with one process and with two
(`serve --workers 2`, one port), in one run on the same machine.

Each setting gets a fresh store (a new database with a random name on the given server, dropped after)
and the demo configuration with every simulator. Submission: 32 connections for `submit_seconds`, the
measured agency stalled so that the figure is the intake path. Drain: `backlog` dossiers accepted while
the agency is down, then the time until every job is done and every callback applied. CPU per request is
read from /proc for each gateway process: with two processes, each one's share and their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

from bench.load import run_load
from gateway.sandbox.launcher import Child, SimSpec, Stack, start_child

CONNS = 32


@contextlib.contextmanager
def database(server: str) -> Any:
    """A new database on the server of `server` (any database url of it), dropped afterwards."""
    base = server.rsplit("/", 1)[0] if server.count("/") >= 3 else server
    name = f"lienthong_bench_{secrets.token_hex(5)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def workers_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@contextlib.asynccontextmanager
async def setting(
    work: Path, name: str, store: str | None, processes: int, *, faults: dict[str, Any] | None, start_sim: bool
) -> AsyncIterator[tuple[Stack, SimSpec, list[int]]]:
    """The demo gateway (`processes` of it on one port) on `store` (None: SQLite), its simulators beside."""
    from bench.run import MEASURED, bench_sandbox

    folder = work / name
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    box = await asyncio.to_thread(bench_sandbox, folder)
    sim = box.sim(MEASURED)
    sim.processing_delay = 0.05
    sim.faults = json.dumps(faults) if faults else None
    env = {
        "LIENTHONG_RETRY_BASE": "0.05",
        "LIENTHONG_PROBE_AFTER": "0.1",
        "LIENTHONG_PROBE_MAX": "0.2",
        "LIENTHONG_AGENCY_POLL": "2.0",  # the idle agencies polled as by default, not the demo's 0.5 s
        "LIENTHONG_STORE_URL": store or "",
    }
    s = Stack(box.conf, folder, box.sims, extra_env=env)
    gateway: Child | None = None
    try:
        await asyncio.gather(*(s.start_simulator(x) for x in box.sims if start_sim or x is not sim))
        args = ["serve", "--conf", str(box.conf), "--demo-secrets"]
        if processes > 1:
            args += ["--workers", str(processes), "--port", str(s.gateway_port)]
        gateway = await start_child("gateway", args, url=s.gateway_url, health="/healthz", log_dir=folder, env=s.env())
        s.gateway = gateway
        pids = [gateway.proc.pid]
        if processes > 1:
            for _ in range(300):
                pids = await asyncio.to_thread(workers_of, gateway.proc.pid)
                if len(pids) == processes:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)  # every worker listening and its roles settled
        yield s, sim, pids
    finally:
        await s.stop()


async def compare(bench: Any, server: str) -> None:
    """Rows "store: submission" and "store: drain" for SQLite x1, PostgreSQL x1 and x2."""
    from bench.run import Probe, Row, cpu_seconds, metrics, submission_factory

    plan = bench.plan
    results: dict[str, dict[str, Any]] = {}
    for label, backend, processes in (
        ("sqlite x1", None, 1),
        ("postgresql x1", server, 1),
        ("postgresql x2", server, 2),
    ):
        with contextlib.ExitStack() as stack:
            store = await asyncio.to_thread(stack.enter_context, database(backend)) if backend else None
            # Submissions: the agency stalled (every call times out), the dispatcher idle.
            faults = {"timeout_rate": 1.0, "timeout_s": 600}
            async with setting(bench.work, f"{label}-submit", store, processes, faults=faults, start_sim=True) as (
                s,
                _,
                pids,
            ):
                probe = Probe({f"gateway{i}": pid for i, pid in enumerate(pids)})
                row = Row("store: submission", label, CONNS, note="agency stalled: intake only")
                make = submission_factory(f"127.0.0.1:{s.gateway_port}", f"st-{label}")
                res = await run_load(
                    "127.0.0.1", s.gateway_port, make, connections=CONNS, duration=plan.submit_seconds,
                    warmup=plan.warmup, on_window=probe,
                )  # fmt: skip
                row.add(res, probe, "gateway0", None)
                row.server_cpu = sum(probe.cpu.values())
                row.server_loop = sum(probe.loop.values())
                shares = [
                    probe.cpu[f"gateway{i}"] / res.requests * 1e6 if res.requests else 0 for i in range(processes)
                ]
                row.note = "agency stalled; CPU µs/req per process: " + ", ".join(f"{c:.0f}" for c in shares)
                bench.rows.append(row)
                results[label] = {"submit_rate": row.rate, "submit_cpu_us": row.per_request_us(row.server_cpu)}
                bench.log(f"  store {label}: submission x{CONNS} {row.rate:.0f}/s ({row.note})")
            # The drain: a backlog taken while the agency is down (a fresh store), delivered once it is back.
            store = await asyncio.to_thread(stack.enter_context, database(backend)) if backend else None
            async with setting(bench.work, f"{label}-drain", store, processes, faults=None, start_sim=False) as (
                s,
                sim,
                pids,
            ):
                res = await run_load(
                    "127.0.0.1", s.gateway_port, submission_factory(f"127.0.0.1:{s.gateway_port}", f"bk-{label}"),
                    connections=CONNS, count=plan.backlog,
                )  # fmt: skip
                accepted = res.statuses[202]
                # With --profile: py-spy on the first process.
                async with bench.profiled(pids[0], f"store-drain-{label.replace(' ', '-')}"):
                    done = await drained(s, sim, pids, accepted, cpu_seconds, metrics)
                row = Row("store: drain", label, 16, note="jobs done; CPU µs/dossier per process: " + done["shares"])
                row.requests, row.seconds, row.server_cpu = accepted, done["seconds"], done["cpu"]
                row.statuses[200] = accepted
                bench.rows.append(row)
                results[label] |= {"drain_rate": row.rate, "drain_cpu_us": row.per_request_us(row.server_cpu)}
                bench.log(f"  store {label}: drain of {accepted} {row.rate:.0f}/s ({row.note})")
    base, one, two = results["sqlite x1"], results["postgresql x1"], results["postgresql x2"]
    bench.facts["stores"] = {
        "settings": results,
        "postgresql_x1_over_sqlite": {k: ratio(one, base, k) for k in ("submit_rate", "drain_rate")},
        "postgresql_x2_over_x1": {k: ratio(two, one, k) for k in ("submit_rate", "drain_rate")},
    }
    bench.log(f"  stores: {json.dumps(bench.facts['stores'], indent=None)}")


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return round(a[key] / b[key], 2) if b.get(key) else 0.0


async def drained(
    s: Stack, sim: SimSpec, pids: list[int], accepted: int, cpu_seconds: Callable[[int], float], metrics: Any
) -> dict[str, Any]:
    """Start the agency; the seconds until every job is done, and the gateway processes' CPU meanwhile."""
    from bench.run import near_end  # bench.run imports this module

    cpu0 = {pid: cpu_seconds(pid) for pid in pids}
    await s.start_simulator(sim)
    t0 = time.perf_counter()
    asked = t0
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - t0 < 600:
            if not await near_end(session, sim.url, accepted) and time.perf_counter() - asked < 1.0:
                await asyncio.sleep(0.05)
                continue
            asked = time.perf_counter()
            m = await metrics(session, s.gateway_url)
            if m["done"] >= accepted:
                seconds = time.perf_counter() - t0
                cpu = {pid: cpu_seconds(pid) - cpu0[pid] for pid in pids}
                shares = ", ".join(f"{c / accepted * 1e6:.0f}" for c in cpu.values())
                return {"seconds": seconds, "cpu": sum(cpu.values()), "shares": shares}
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the backlog did not drain in 600 s; see {s.workdir}")
