"""Several `lienthong serve` processes on one PostgreSQL store, as real processes over loopback: a SIGKILL
in the middle of thousands of submissions, and an SQLite store moved up with `lienthong store copy`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import sqlite3
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from contracts import DossierStatus
from gateway.connector import AgencyUpdate
from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.launcher import Child, SimSpec, Stack, free_port, start_child
from gateway.store import PostgresStore
from gateway.store import updates as updates_sql
from gateway.store.base import NewDossier
from gateway.store.seals import private_key, public_text
from plugins.police.demo import demo_dossiers
from tests.gateway.test_store_sqlite import POLICE

CONF = Path(__file__).resolve().parent / "conf_processes"
DEMO_CONF = Path(__file__).resolve().parents[2] / "conf" / "demo"
CENTRES = ["centre-hanoi", "centre-hcm", "centre-danang"]
pytestmark = pytest.mark.slow


async def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def start_gateway(name: str, port: int, env: dict[str, str], workdir: Path) -> Child:
    return await start_child(
        name,
        ["serve", "--conf", str(CONF), "--demo-secrets"],
        url=f"http://127.0.0.1:{port}",
        health="/healthz",
        log_dir=workdir,
        env={**env, "LIENTHONG_PORT": str(port)},
    )


async def test_two_processes_5000_submissions_and_a_sigkill_lose_and_repeat_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    sim = police_sim()
    sim.processing_delay = 0.05
    # Short leases: the deliveries the killed process held are taken over by the other one soon.
    stack = Stack(CONF, tmp_path, [sim], extra_env={"LIENTHONG_STORE_URL": pg_url, "LIENTHONG_LEASE_SECONDS": "3"})
    total, conns = 5000, 32
    bodies = await asyncio.to_thread(demo_dossiers, 12, total)
    second_port = free_port()
    gateways: dict[str, Child] = {}
    try:
        await stack.start_simulators()
        gateways["a"] = await stack.start_gateway()
        gateways["b"] = await start_gateway("gateway-b", second_port, stack.env(), tmp_path)
        urls = [stack.gateway_url, f"http://127.0.0.1:{second_port}"]
        ids: dict[int, str] = {}
        refused = Counter[str]()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)
        kill_at, killed = total // 3, asyncio.Event()

        async def client(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                i = queue.get_nowait()
                centre = CENTRES[i % 3]
                headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": f"k-{i}"}
                # Spread over both processes; a request that got no answer is sent again, with its key,
                # to the other one (and back), as a centre does: each reaches the store once.
                for attempt in range(200):
                    url = urls[(i + attempt) % 2]
                    try:
                        async with session.post(f"{url}/v1/dossiers", json=bodies[i], headers=headers) as resp:
                            if resp.status in (200, 202):
                                got = (await resp.json())["id"]
                                assert ids.setdefault(i, got) == got, "one key, two dossiers"
                                break
                            refused[str(resp.status)] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        refused[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"submission {i} was never accepted")
                if len(ids) >= kill_at and not killed.is_set():
                    killed.set()

        async def kill_and_restart() -> None:
            await killed.wait()
            await gateways["b"].kill()  # SIGKILL: submissions and deliveries in flight in it
            await asyncio.sleep(1.0)
            gateways["b"] = await start_gateway("gateway-b", second_port, stack.env(), tmp_path)

        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=conns)) as session:
            restarter = asyncio.create_task(kill_and_restart())
            await asyncio.gather(*(client(session) for _ in range(conns)))
            await restarter
            assert len(ids) == total and len(set(ids.values())) == total  # none lost, none twice
            assert sum(refused.values()) > 0, "the kill should have cut some requests off"

            # Every dossier reaches the agency exactly once (deliveries the dead process held included).
            accepted: list[Any] = []
            for _ in range(900):
                async with session.get(sim.url + "/_sim/stats") as r:
                    if (await r.json()).get("accepted", 0) >= total:
                        break
                await asyncio.sleep(0.2)
            async with session.get(sim.url + "/_sim/accepted") as r:
                accepted = await r.json()
        seen = Counter(d["maHoSo"] for d in accepted)
        assert len(seen) == total and all(n == 1 for n in seen.values()), "lost or duplicated at the agency"

        rows = await asyncio.to_thread(query_pg, pg_url, "SELECT id, code FROM dossiers")
        assert {r[0] for r in rows} == set(ids.values())
        assert {r[1] for r in rows} == set(seen)
        numbers: dict[str, list[int]] = defaultdict(list)
        for _, code in rows:
            prefix, n = code.rsplit("-", 1)
            numbers[prefix].append(int(n))
        for prefix, got in numbers.items():  # per receiving unit and day: 1..n, no gap, no duplicate
            assert sorted(got) == list(range(1, len(got) + 1)), prefix
        code, out = await run_cli("audit", "verify", "--conf", str(CONF), env=stack.env())
        assert code == 0 and "chain intact" in out, out
    finally:
        for child in gateways.values():
            await child.stop()
        await stack.stop()


async def test_store_copy_of_the_demo_then_serve_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    work = tmp_path / "demo"
    code, out = await run_cli_python(
        "import asyncio, sys; from pathlib import Path; from gateway.sandbox.demo import run_demo; "
        f"sys.exit(asyncio.run(run_demo(Path({str(DEMO_CONF)!r}), dossiers=10, workdir=Path({str(work)!r}))))"
    )
    assert code == 0, out
    db = work / "lienthong.db"
    expected, audit_records = await asyncio.to_thread(demo_store, db)
    assert len(expected) >= 10

    code, out = await run_cli("store", "copy", "--from", f"sqlite:///{db}", "--to", pg_url)
    assert code == 0, out
    assert re.search(rf"audit chain verified \({audit_records} records\); dossiers: {len(expected)}", out), out
    code, out = await run_cli("store", "copy", "--from", f"sqlite:///{db}", "--to", pg_url)
    assert code == 1 and "already holds a store" in out

    # The demo's gateway, now on PostgreSQL and in two processes: every dossier as it was. Both append audit
    # records (each read is one), one of them seals checkpoints: the log, its seals and its checkpoints
    # verify there afterwards.
    port = free_port()
    env = {
        "LIENTHONG_STORE_URL": pg_url,
        "LIENTHONG_DB": str(db),
        "LIENTHONG_AUDIT_SIGNING_KEY_PATH": str(work / "audit-key.pem"),
        "LIENTHONG_AUDIT_CHECKPOINTS": str(work / "audit-checkpoints"),
        "LIENTHONG_AUDIT_INTERVAL": "1",
    }
    conf = work / "conf"
    gw = await start_child(
        "gateway-pg", ["serve", "--conf", str(conf), "--demo-secrets", "--workers", "2", "--port", str(port)],
        url=f"http://127.0.0.1:{port}", health="/healthz", log_dir=tmp_path, env=env, cwd=work,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            for did, (dcode, status, client) in expected.items():
                headers = {"X-Api-Key": DEMO_KEYS[client], "Connection": "close"}  # spread over both
                async with session.get(f"http://127.0.0.1:{port}/v1/dossiers/{did}", headers=headers) as r:
                    assert r.status == 200, did
                    got = await r.json()
                assert (got["code"], got["status"]) == (dcode, status)
        await asyncio.sleep(2.5)  # a checkpoint or two on the way
    finally:
        assert await gw.stop() == 0
    key = private_key(await asyncio.to_thread((work / "audit-key.pem").read_bytes))
    public = public_text(key.private.public_key())
    code, out = await run_cli(
        "audit", "verify", "--conf", str(conf), "--checkpoints", str(work / "audit-checkpoints"),
        "--public-key", public, env=env, cwd=work,
    )  # fmt: skip
    assert code == 0 and "intact" in out, out
    assert f"audit log: {audit_records + len(expected)} records" in out, out


def query_pg(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def demo_store(db: Path) -> tuple[dict[str, tuple[str, int, str]], int]:
    """The demo's dossiers (id -> code, status, client) and how many audit records it wrote."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        dossiers = {r[0]: (r[1], r[2], r[3]) for r in conn.execute("SELECT id, code, status, client_id FROM dossiers")}
        return dossiers, conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]


async def run_cli_python(source: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_serve_with_workers_refuses_an_sqlite_store(tmp_path: Path) -> None:
    code, out = await run_cli(
        "serve", "--conf", str(CONF), "--demo-secrets", "--workers", "2", "--port", str(free_port()),
        env={"LIENTHONG_STORE_URL": "", "LIENTHONG_DB": str(tmp_path / "g.db")},
    )  # fmt: skip
    assert code == 2 and "--workers needs a PostgreSQL store" in out


def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


async def test_serve_with_workers_shares_the_port_restarts_a_dead_worker_and_drains_on_sigterm(
    tmp_path: Path, pg_url: str
) -> None:
    port = free_port()
    env = {"LIENTHONG_STORE_URL": pg_url, "LIENTHONG_DB": str(tmp_path / "unused.db")}
    sup = await start_child(
        "gateway-workers", ["serve", "--conf", str(CONF), "--demo-secrets", "--workers", "2", "--port", str(port)],
        url=f"http://127.0.0.1:{port}", health="/healthz", log_dir=tmp_path, env=env,
    )  # fmt: skip
    try:

        async def workers(n: int) -> set[int]:
            for _ in range(300):
                pids = await asyncio.to_thread(children, sup.proc.pid)
                if len(pids) == n:
                    return pids
                await asyncio.sleep(0.1)
            raise AssertionError(f"not {n} workers: {pids}")

        first = await workers(2)
        async with aiohttp.ClientSession() as session:
            body = await asyncio.to_thread(demo_dossiers, 3, 20)
            headers = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
            for b in body:  # new connections each: the kernel spreads them over both workers
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/dossiers", json=b, headers={**headers, "Connection": "close"}
                ) as r:
                    assert r.status == 202
            victim = min(first)
            os.kill(victim, 9)
            for _ in range(300):
                now = await asyncio.to_thread(children, sup.proc.pid)
                if len(now) == 2 and victim not in now:
                    break
                await asyncio.sleep(0.1)
            assert len(now) == 2 and victim not in now, "the dead worker was not started again"
            await asyncio.sleep(3)  # the new worker listening
            async with session.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}) as r:
                assert r.status == 200
        assert await sup.stop() == 0  # SIGTERM: passed on to both, each drains, then the supervisor ends
        assert not any(await asyncio.to_thread(lambda: [os.path.exists(f"/proc/{p}") for p in now]))
    finally:
        await sup.stop()


TAX_CONF = Path(__file__).resolve().parents[1] / "plugins" / "tax" / "conf"


async def test_the_tax_poller_runs_in_one_process_and_moves_to_the_other_when_it_dies(
    tmp_path: Path, pg_url: str
) -> None:
    from plugins.tax.demo import demo_dossiers as tax_dossiers

    sim = SimSpec(kind="tax", agency="tax", url_env="TAX_URL", processing_delay=0.05)
    stack = Stack(TAX_CONF, tmp_path, [sim], extra_env={"LIENTHONG_STORE_URL": pg_url})
    ports = {"a": stack.gateway_port, "b": free_port()}
    gateways: dict[str, Child] = {}
    centre = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
    try:
        await stack.start_simulators()
        for name, port in ports.items():
            gateways[name] = await start_child(
                f"gateway-{name}", ["serve", "--conf", str(TAX_CONF), "--demo-secrets"], url=f"http://127.0.0.1:{port}",
                health="/healthz", log_dir=tmp_path, env={**stack.env(), "LIENTHONG_PORT": str(port)},
            )  # fmt: skip
        holders: list[str] = []
        for _ in range(50):
            holders = [n for n in ports if await asyncio.to_thread(took_role, tmp_path / f"gateway-{n}.log")]
            if holders:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # long enough for the other to have taken the role too, were it free
        holders = [n for n in ports if await asyncio.to_thread(took_role, tmp_path / f"gateway-{n}.log")]
        assert len(holders) == 1, holders  # one poller of the tax event log, not two
        holder, other = holders[0], next(n for n in ports if n != holders[0])
        url = f"http://127.0.0.1:{ports[other]}"
        bodies = await asyncio.to_thread(tax_dossiers, 5, 16)
        async with aiohttp.ClientSession() as session:
            codes: dict[str, str] = {}
            for body in bodies:
                async with session.post(f"{url}/v1/dossiers", json=body, headers=centre) as r:
                    assert r.status == 202, await r.text()
                    got = await r.json()
                    codes[got["id"]] = got["code"]

            async def wait_status(ids: list[str], status: int, timeout: float = 60.0) -> None:
                deadline = asyncio.get_running_loop().time() + timeout
                pending = set(ids)
                while pending and asyncio.get_running_loop().time() < deadline:
                    for did in list(pending):
                        async with session.get(f"{url}/v1/dossiers/{did}", headers=centre) as r:
                            if (await r.json())["status"] == status:
                                pending.discard(did)
                    await asyncio.sleep(0.1)
                assert not pending, f"{len(pending)} dossiers not in status {status}"

            ids = list(codes)
            await wait_status(ids, 6)  # notices issued: the applicant must pay
            first, second = ids[:8], ids[8:]
            for did in first:
                async with session.post(sim.url + "/_sim/pay", json={"dossier_code": codes[did]}) as r:
                    assert r.status == 200
            await wait_status(first, 9)  # the holder's poller settled them
            await gateways[holder].kill()  # SIGKILL: its role's lock goes with its connection
            killed_at = asyncio.get_running_loop().time()
            for did in second:
                async with session.post(sim.url + "/_sim/pay", json={"dossier_code": codes[did]}) as r:
                    assert r.status == 200
            await wait_status(second, 9, timeout=30)
            took_over = asyncio.get_running_loop().time() - killed_at
            assert await asyncio.to_thread(took_role, tmp_path / f"gateway-{other}.log")
            async with session.get(sim.url + "/_sim/polls") as r:
                polls: list[int] = await r.json()
            for did in ids:  # each payment applied once
                async with session.get(f"{url}/v1/dossiers/{did}/events", headers=centre) as r:
                    statuses = [e["status"] for e in (await r.json())["events"]]
                assert statuses.count(9) == 1, statuses
        # The event-log cursor never went back (the other process started where the dead one had settled)
        # and reached every event (all paid dossiers finished).
        assert polls == sorted(polls), polls
        assert took_over < 30
    finally:
        for child in gateways.values():
            await child.stop()
        await stack.stop()


def took_role(log: Path) -> bool:
    return '"role_taken"' in log.read_text() and "poll:tax:national" in log.read_text()


async def test_a_feed_follower_over_http_sees_every_event_once_while_eight_writers_commit_late(
    tmp_path: Path, pg_url: str, new: Callable[..., NewDossier]
) -> None:
    """The portal follows GET /v1/feed?after= on a serve process while eight other sessions on the same
    database commit status events, each transaction held open a random while after its event is written."""
    port = free_port()
    env = {"LIENTHONG_STORE_URL": pg_url, "LIENTHONG_PORT": str(port), "POLICE_URL": "http://127.0.0.1:1"}
    gw = await start_child(
        "gateway-feed", ["serve", "--conf", str(CONF), "--demo-secrets"], url=f"http://127.0.0.1:{port}",
        health="/healthz", log_dir=tmp_path, env={**env, "LIENTHONG_DB": str(tmp_path / "unused.db")},
    )  # fmt: skip
    async with AsyncExitStack() as stack:
        stores: list[PostgresStore] = []
        for _ in range(9):
            s = PostgresStore(pg_url, batch_max=8, readers=1)
            await s.open()
            stack.push_async_callback(s.close)
            stores.append(s)
        first, writers = stores[0], stores[1:]
        dossiers = [(await first.create_dossier(new(i))).dossier.id for i in range(32)]
        seen: list[int] = []
        done = asyncio.Event()

        async def follow(session: aiohttp.ClientSession) -> None:
            after, headers = 0, {"X-Api-Key": DEMO_KEYS["portal"]}
            while True:
                async with session.get(f"{gw.url}/v1/feed?after={after}&limit=50", headers=headers) as r:
                    assert r.status == 200
                    page = await r.json()
                seen.extend(item["seq"] for item in page["items"])
                after = page["next_after"]
                if done.is_set() and not page["items"]:
                    return
                await asyncio.sleep(0.01)

        async def write(store: PostgresStore, did: uuid.UUID) -> None:
            for n, status in enumerate((DossierStatus.PROCESSING, DossierStatus.FINISHED)):
                u = AgencyUpdate(event_id=f"{did}-{n}", dossier_id=did, status=status)

                def op(conn: Any, u: AgencyUpdate = u) -> Any:
                    out = updates_sql.apply_all(conn, [u], POLICE, None)
                    time.sleep(random.uniform(0, 0.03))  # committed late: after events other writers commit
                    return out

                await store._write_events(op)

        try:
            async with aiohttp.ClientSession() as session:
                follower = asyncio.create_task(follow(session))
                await asyncio.gather(*(write(writers[i % 8], did) for i, did in enumerate(dossiers)))
                done.set()
                await asyncio.wait_for(follower, 60)
            everything = [item.event.seq for item in await first.feed(after=0, limit=10_000)]
        finally:
            await gw.stop()
    assert len(everything) == 32 * 3
    assert Counter(seen) == Counter(everything)  # each event once, none missed
