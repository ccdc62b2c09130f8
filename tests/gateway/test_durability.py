"""Durability with real processes: SIGKILL of the gateway, and dead letters replayed from the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.disk import DiskUnavailable, SmallDisk
from gateway.sandbox.launcher import Stack
from plugins.police.demo import demo_dossiers

CONF = Path(__file__).resolve().parent / "conf"
pytestmark = pytest.mark.slow
CENTRES = ["centre-hanoi", "centre-hcm", "centre-danang"]


async def submit(session: aiohttp.ClientSession, url: str, i: int, body: dict[str, Any]) -> tuple[str, str] | None:
    centre = CENTRES[i % 3]
    headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": f"k-{i}"}
    # A request the gateway died under was never acknowledged: it counts as not accepted.
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with session.post(f"{url}/v1/dossiers", json=body, headers=headers) as resp:
            if resp.status == 202:
                return (await resp.json())["id"], centre
    return None


async def wait_all_finished(
    session: aiohttp.ClientSession, url: str, accepted: dict[str, str], timeout: float = 60.0
) -> dict[str, int]:
    deadline = asyncio.get_running_loop().time() + timeout
    statuses: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        for did, centre in accepted.items():
            if statuses.get(did) == 9:
                continue
            async with session.get(f"{url}/v1/dossiers/{did}", headers={"X-Api-Key": DEMO_KEYS[centre]}) as r:
                statuses[did] = (await r.json())["status"]
        if all(s == 9 for s in statuses.values()) and len(statuses) == len(accepted):
            break
        await asyncio.sleep(0.3)
    return statuses


async def agency_has_requests(session: aiohttp.ClientSession, stack: Stack) -> None:
    # The simulator is another process: asking it is the only way to know.
    while not (await sim_get(session, stack, "/_sim/stats")).get("requests"):  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def sim_get(session: aiohttp.ClientSession, stack: Stack, path: str) -> Any:
    async with session.get(stack.sim("police").url + path) as r:
        return await r.json()


async def test_sigkill_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    sims = [police_sim()]
    # The agency records each dossier at once but answers 0.5 s later: a kill in between leaves
    # dossiers the agency has and the gateway does not know it delivered.
    sims[0].faults = '{"answer_delay_ms": 500}'
    stack = Stack(CONF, tmp_path, sims)
    bodies = demo_dossiers(5, 60)
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        accepted: dict[str, str] = {}
        async with aiohttp.ClientSession() as session:
            sem = asyncio.Semaphore(8)
            enough = asyncio.Event()

            async def one(i: int) -> None:
                async with sem:
                    got = await submit(session, stack.gateway_url, i, bodies[i])
                    if got:
                        accepted[got[0]] = got[1]
                        if len(accepted) >= 30:
                            enough.set()

            tasks = [asyncio.create_task(one(i)) for i in range(len(bodies))]
            await asyncio.wait_for(enough.wait(), 30)
            # Deliveries have reached the agency, whose answers are 0.5 s away: kill now.
            await asyncio.wait_for(agency_has_requests(session, stack), 10)
            await gw.kill()  # SIGKILL while submissions and deliveries are in flight
            await asyncio.gather(*tasks)
            assert 30 <= len(accepted) < len(bodies) + 1
            await stack.start_gateway()  # same database file
            statuses = await wait_all_finished(session, stack.gateway_url, accepted)
            assert Counter(statuses.values()) == {9: len(accepted)}
            stats = await sim_get(session, stack, "/_sim/stats")
            seen = Counter(d["maHoSo"] for d in await sim_get(session, stack, "/_sim/accepted"))
        assert all(n == 1 for n in seen.values()), "a dossier was created twice at the agency"
        # Every acknowledged dossier arrived once; dossiers committed without a 202 may arrive too.
        assert stats["accepted"] == len(seen) >= len(accepted)
        assert stats.get("duplicates", 0) > 0, "the kill should have caught deliveries in flight"
    finally:
        await stack.stop()


async def test_dead_letters_then_replay(tmp_path: Path) -> None:
    sims = [police_sim()]
    sims[0].faults = '{"down": true}'
    # No breaker to hold the deliveries, and a retry budget shorter than the first backoff: 2 attempts each.
    env = {"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01", "LIENTHONG_RETRY_BASE": "0.05"}
    stack = Stack(CONF, tmp_path, sims, extra_env=env)
    bodies = demo_dossiers(9, 12)
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        op = {"X-Api-Key": DEMO_KEYS["operator"]}
        async with aiohttp.ClientSession() as session:
            accepted = dict(
                filter(None, [await submit(session, stack.gateway_url, i, b) for i, b in enumerate(bodies)])
            )
            assert len(accepted) == len(bodies)
            dead: list[Any] = []
            for _ in range(100):
                async with session.get(f"{stack.gateway_url}/v1/admin/deliveries?state=dead", headers=op) as r:
                    dead = (await r.json())["items"]
                if len(dead) == len(bodies):
                    break
                await asyncio.sleep(0.1)
            assert len(dead) == len(bodies)
            assert all(d["attempts"] == 2 and "503" in d["last_error"] for d in dead)
            async with session.post(stack.sim("police").url + "/_sim/faults", json={"down": False}):
                pass
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cli",
                "deliveries",
                "replay",
                "--wait",
                "60",
                "--conf",
                str(CONF),
                env={**os.environ, **stack.env()},
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            assert proc.returncode == 0
            assert f"replayed {len(bodies)} dead deliveries" in out.decode()
            assert f"delivered {len(bodies)}/{len(bodies)}, dead again 0" in out.decode()
            statuses = await wait_all_finished(session, stack.gateway_url, accepted)
            assert Counter(statuses.values()) == {9: len(bodies)}
            stats = await sim_get(session, stack, "/_sim/stats")
            assert stats["accepted"] == len(bodies)
    finally:
        await stack.stop()


async def test_a_full_disk_answers_503_loses_no_result_and_recovers_without_a_restart(tmp_path: Path) -> None:
    """The store on a real filesystem that fills up (a small tmpfs) while agency results are on their way."""
    disk = SmallDisk(tmp_path / "disk", size_mb=24)
    try:
        await disk.mount()
    except DiskUnavailable as exc:
        pytest.skip(f"a tmpfs cannot be mounted here ({exc}); tests/gateway/test_store_health.py injects the fault")
    sims = [police_sim()]
    sims[0].processing_delay = 2.0  # results come back while the disk is full
    env = {
        "LIENTHONG_DB": str(disk.path / "lienthong.db"),
        "LIENTHONG_LEASE_SECONDS": "3",
        "LIENTHONG_RETRY_BASE": "0.2",
    }
    stack = Stack(CONF, tmp_path, sims, extra_env=env)
    bodies = demo_dossiers(11, 330)
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        url = stack.gateway_url
        async with aiohttp.ClientSession() as session:
            accepted = dict(filter(None, [await submit(session, url, i, bodies[i]) for i in range(30)]))
            assert len(accepted) == 30
            await wait_sim(session, stack, lambda s: s.get("accepted", 0) >= 30)
            await disk.fill()  # the agency has every dossier; its 30 results are 2 s away
            # SQLite writes its log over space it already has: commits may still pass until that space is
            # used up (they are on disk: a 202 is right). From then on every write is refused.
            statuses: dict[int, int] = {}
            refused_in_a_row = 0
            for i in range(30, len(bodies)):
                status, retry_after, body = await post_dossier(session, url, i, bodies[i])
                statuses[i] = status
                if status == 202:
                    accepted[body["id"]] = CENTRES[i % 3]
                    refused_in_a_row = 0
                else:
                    assert (status, retry_after) == (503, "5"), body
                    assert body["type"] == "urn:lienthong:problem:storage-unavailable"
                    refused_in_a_row += 1
                    if refused_in_a_row == 5:
                        break
            assert refused_in_a_row == 5, f"the full disk took {len(statuses)} submissions without refusing"
            assert await ready(session, url) == 503
            # Results arrive and are refused (503): the agency keeps them and sends them again.
            await wait_sim(session, stack, lambda s: s.get("callback_retries", 0) >= 10)
            await asyncio.sleep(2)
            await disk.free()
            await wait_ready(session, url)  # no restart
            for i, status in statuses.items():
                if status != 202:
                    got = await submit(session, url, i, bodies[i])  # the same request again (same key)
                    assert got is not None
                    accepted[got[0]] = got[1]
            assert len(accepted) == 30 + len(statuses)
            final = await wait_all_finished(session, url, accepted, timeout=90)
            assert Counter(final.values()) == {9: len(accepted)}
            await wait_log(tmp_path / "gateway.log", '"storage_recovered"')  # once commits have passed for 10 s
            await gw.kill()  # every 202 given is on disk, with its result
            on_disk = await asyncio.to_thread(read_results, disk.path / "lienthong.db", list(accepted))
            assert on_disk == {did: (9, 1) for did in accepted}
            stats = await sim_get(session, stack, "/_sim/stats")
        assert stats["callbacks_ok"] == len(accepted) and stats.get("callbacks_refused", 0) == 0
        log = await asyncio.to_thread((tmp_path / "gateway.log").read_text)
        assert log.count('"storage_fault"') == 1, "one log line for the episode, not one per request"
        assert log.count('"storage_recovered"') == 1
        assert "unhandled_error" not in log
    finally:
        await stack.stop()
        await disk.unmount()


async def post_dossier(
    session: aiohttp.ClientSession, url: str, i: int, body: dict[str, Any]
) -> tuple[int, str | None, Any]:
    headers = {"X-Api-Key": DEMO_KEYS[CENTRES[i % 3]], "Idempotency-Key": f"k-{i}"}
    async with session.post(f"{url}/v1/dossiers", json=body, headers=headers) as resp:
        return resp.status, resp.headers.get("Retry-After"), await resp.json(content_type=None)


async def ready(session: aiohttp.ClientSession, url: str) -> int:
    # A commit that the disk still takes (the write-ahead log reuses its space) may pass once: ask a few times.
    for _ in range(20):
        async with session.get(f"{url}/readyz") as resp:
            if resp.status != 200:
                return resp.status
        await asyncio.sleep(0.1)
    return 200


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            async with session.get(f"{url}/readyz") as resp:
                if resp.status == 200:
                    return
            await asyncio.sleep(0.2)


async def wait_sim(session: aiohttp.ClientSession, stack: Stack, until: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not until(await sim_get(session, stack, "/_sim/stats")):  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def wait_log(path: Path, text: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while text not in await asyncio.to_thread(path.read_text):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


def read_results(db: Path, ids: list[str]) -> dict[str, tuple[int, int]]:
    conn = sqlite3.connect(db)
    try:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT id, status, results FROM dossiers WHERE id IN ({marks})", ids).fetchall()
        return {r[0]: (r[1], len(orjson.loads(r[2]))) for r in rows}
    finally:
        conn.close()


async def test_a_gateway_on_uvloop_delivers_and_finishes(tmp_path: Path) -> None:
    """`[server] loop = "uvloop"`: the same gateway, started as an operator starts it, on libuv's loop."""
    stack = Stack(CONF, tmp_path, [police_sim()], extra_env={"LIENTHONG_LOOP": "uvloop"})
    bodies = demo_dossiers(11, 6)
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        async with aiohttp.ClientSession() as session:
            got = [await submit(session, stack.gateway_url, i, body) for i, body in enumerate(bodies)]
            accepted = dict(g for g in got if g is not None)
            assert len(accepted) == len(bodies)
            statuses = await wait_all_finished(session, stack.gateway_url, accepted)
            assert Counter(statuses.values()) == {9: len(bodies)}
        lines = [orjson.loads(line) for line in (await asyncio.to_thread(gw.log_path.read_bytes)).splitlines()]
        assert [line["loop"] for line in lines if line.get("event") == "listening"] == ["uvloop"]
    finally:
        await stack.stop()
