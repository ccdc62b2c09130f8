"""The durability run: dossiers through two SIGKILLs of the gateway, then a full disk while agency results arrive.

    .venv/bin/python -m bench.durability                  # 5,000 submissions, then the full disk (a few minutes)
    .venv/bin/python -m bench.durability --dossiers 500   # smaller

Everything runs as operators run it: `lienthong serve` on bench/conf (the police system alone) and the police
simulator, each a process on loopback (gateway/sandbox/launcher.py). The centres are this script: each
submission carries an Idempotency-Key and is sent again, the same, until it is answered (after a refused
connection, a 503 or a 429, honouring Retry-After), as a centre's system does.

1. Kills: the dossiers are submitted 32 at a time; when a third of them have been answered, the gateway
   is SIGKILLed and started again on the same file, and once more at two thirds. The agency answers each
   delivery 0.1 s after taking it, so the kills catch deliveries in flight. Once every dossier is finished,
   the file is read: a dossier answered 202 (or 200, the answer to a repeated key) that is not in it is
   lost; a key with two dossiers, or a dossier the agency created twice, is duplicated.
2. A full disk: the store on a small tmpfs (mounting one needs root or CAP_SYS_ADMIN; without it this
   part is skipped, and says so), nearly full from the start. Dossiers keep coming; the agency answers
   each 3 s after taking it. When the store runs out of space (the first 503), the disk stays full for 15 s
   more while results arrive: those the agency cannot hand over (503) it keeps and sends again, byte for
   byte. Then space is freed; every dossier must end finished with its result, without a restart. The
   gateway is then SIGKILLed and the file read: a result missing from it is lost.

The figures are printed and written to bench/results/durability-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.disk import DiskUnavailable, SmallDisk
from gateway.sandbox.launcher import SimSpec, Stack
from plugins.police.demo import demo_dossiers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "bench" / "conf"
RESULTS = ROOT / "bench" / "results"
CENTRES = ["centre-hanoi", "centre-hcm", "centre-danang"]
WORKERS = 32
FINISHED = 9  # DossierStatus.FINISHED


@dataclass
class Answer:
    index: int
    dossier_id: str
    status: int  # 202, or 200 when the key had been answered before (the first answer was lost in a kill)
    attempts: int


@dataclass
class Centres:
    """The centres' side of a run: what they sent, what they were told."""

    url: str
    bodies: list[dict[str, Any]]
    tag: str
    answers: dict[int, Answer] = field(default_factory=dict)
    refused: Counter[int] = field(default_factory=Counter)  # status -> answers that made them wait and resend
    connection_errors: int = 0
    other: list[tuple[int, int, str]] = field(default_factory=list)  # answers that end a submission otherwise

    async def submit(self, session: aiohttp.ClientSession, i: int) -> None:
        centre = CENTRES[i % len(CENTRES)]
        headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": f"{self.tag}-{i}"}
        attempts = 0
        while True:
            attempts += 1
            try:
                async with session.post(f"{self.url}/v1/dossiers", json=self.bodies[i], headers=headers) as r:
                    body = await r.json(content_type=None)
                    if r.status in (200, 202):
                        self.answers[i] = Answer(i, body["id"], r.status, attempts)
                        return
                    if r.status in (429, 503):
                        self.refused[r.status] += 1
                        await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 5.0))
                        continue
                    self.other.append((i, r.status, str(body)[:200]))
                    return
            except (aiohttp.ClientError, TimeoutError):
                self.connection_errors += 1  # the gateway is down: a centre tries again shortly
                await asyncio.sleep(0.2)

    async def run(self, session: aiohttp.ClientSession, indexes: range, answered: asyncio.Queue[int]) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in indexes:
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                await self.submit(session, i)
                answered.put_nowait(i)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))


async def finished(session: aiohttp.ClientSession, url: str) -> int:
    """Finished dossiers, from the operators' overview (/metrics counts no dossiers: it never scans them)."""
    async with session.get(f"{url}/v1/admin/overview", headers={"X-Api-Key": DEMO_KEYS["operator"]}) as r:
        overview = await r.json()
    return sum(s["count"] for s in overview["dossiers_by_status"] if s["status"] == FINISHED)


async def wait_finished(session: aiohttp.ClientSession, url: str, n: int, timeout: float) -> float:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            if await finished(session, url) >= n:
                return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not every dossier finished within {timeout:.0f} s")


async def sim_get(session: aiohttp.ClientSession, sim: SimSpec, path: str) -> Any:
    async with session.get(sim.url + path) as r:
        return await r.json()


def read_file(db: Path) -> dict[str, Any]:
    """What the gateway's file holds: dossiers with status and result count, keys, jobs by state."""
    conn = sqlite3.connect(db)
    try:
        dossiers = {
            r[0]: (r[1], len(orjson.loads(r[2])))
            for r in conn.execute("SELECT id, status, results FROM dossiers").fetchall()
        }
        keys = dict(conn.execute("SELECT key, dossier_id FROM idempotency_keys").fetchall())
        jobs = dict(conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        return {"dossiers": dossiers, "keys": keys, "jobs": jobs}
    finally:
        conn.close()


def verdict(centres: Centres, stored: dict[str, Any], agency_accepted: list[dict[str, Any]]) -> dict[str, Any]:
    dossiers: dict[str, tuple[int, int]] = stored["dossiers"]
    answered = {a.dossier_id for a in centres.answers.values()}
    per_code = Counter(d["maHoSo"] for d in agency_accepted)
    return {
        "submitted": len(centres.bodies),
        "answered_202": sum(a.status == 202 for a in centres.answers.values()),
        "answered_200_repeated_key": sum(a.status == 200 for a in centres.answers.values()),
        "resent_after_connection_errors": centres.connection_errors,
        "resent_after": {str(k): v for k, v in sorted(centres.refused.items())},
        "other_answers": centres.other,
        "dossiers_in_file": len(dossiers),
        "keys_in_file": len(stored["keys"]),
        "lost": len(answered - dossiers.keys()),
        "duplicated_in_gateway": len(dossiers) - len(set(stored["keys"].values())),
        "finished_with_result": sum(1 for d in answered if dossiers.get(d) == (9, 1)),
        "jobs": stored["jobs"],
        "agency_created": sum(per_code.values()),
        "duplicated_at_agency": sum(n - 1 for n in per_code.values()),
    }


# -- part 1: two SIGKILLs ----------------------------------------------------------------------------------


async def kills(work: Path, n: int) -> dict[str, Any]:
    sim = police_sim()
    sim.processing_delay = 0.2
    sim.faults = '{"answer_delay_ms": 100}'  # the agency has the dossier 0.1 s before the gateway hears so
    db = work / "kills.db"
    stack = Stack(CONF, work / "kills", [sim], extra_env={"LIENTHONG_DB": str(db)})
    await asyncio.to_thread((work / "kills").mkdir)
    centres = Centres(stack.gateway_url, demo_dossiers(2025, n), "kills")
    kill_times: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            answered: asyncio.Queue[int] = asyncio.Queue()
            sending = asyncio.create_task(centres.run(session, range(n), answered))
            count = 0
            for at in (n // 3, 2 * n // 3):
                while count < at:
                    await answered.get()
                    count += 1
                gw = stack.gateway
                assert gw is not None
                await gw.kill()
                down = time.monotonic()
                await stack.start_gateway()  # the same file
                kill_times.append({"after_answers": at, "restart_seconds": round(time.monotonic() - down, 2)})
            await sending
            submit_seconds = time.monotonic() - started
            drain = await wait_finished(session, stack.gateway_url, n, timeout=900)
            agency = await sim_get(session, sim, "/_sim/accepted")
            stats = await sim_get(session, sim, "/_sim/stats")
        gw = stack.gateway
        assert gw is not None
        await gw.stop()
        stored = await asyncio.to_thread(read_file, db)
    finally:
        await stack.stop()
    out = verdict(centres, stored, agency)
    out |= {
        "kills": kill_times,
        "seconds_to_answer_all": round(submit_seconds, 1),
        "seconds_until_all_finished_after": round(drain, 1),
        "agency_repeated_deliveries_absorbed": stats.get("duplicates", 0),
    }
    return out


# -- part 2: a full disk -----------------------------------------------------------------------------------


async def full_disk(work: Path, n: int, headroom_mb: float, hold: float) -> dict[str, Any]:
    disk = SmallDisk(work / "disk", size_mb=128)
    try:
        await disk.mount()
    except DiskUnavailable as exc:
        return {"skipped": f"a tmpfs cannot be mounted here: {exc}"}
    # The disk is nearly full from the start: the store fills what is left as dossiers come in. (A disk
    # filled all at once would not stop SQLite at once: its write-ahead log reuses the space it has.)
    filled = await disk.fill(leave=int(headroom_mb * 1024 * 1024))
    sim = police_sim()
    sim.processing_delay = 3.0  # results come back 3 s after the agency took the dossier
    db = disk.path / "full.db"
    logs = work / "full"
    await asyncio.to_thread(logs.mkdir)
    stack = Stack(CONF, logs, [sim], extra_env={"LIENTHONG_DB": str(db)})
    centres = Centres(stack.gateway_url, demo_dossiers(2026, n), "full")
    readiness: list[tuple[float, int]] = []
    episode: dict[str, Any] = {}
    try:
        await stack.start_simulators()
        gw = await stack.start_gateway()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            answered: asyncio.Queue[int] = asyncio.Queue()
            t0 = time.monotonic()
            sending = asyncio.create_task(centres.run(session, range(n), answered))
            # Watch until the store stops taking writes, keep the disk full `hold` seconds, then free space.
            fault_at: float | None = None
            while not sending.done() and (fault_at is None or time.monotonic() - fault_at < hold):
                async with session.get(f"{stack.gateway_url}/readyz") as r:
                    readiness.append((round(time.monotonic() - t0, 1), r.status))
                    if fault_at is None and (r.status != 200 or centres.refused[503]):
                        fault_at = time.monotonic()
                        episode["stats_at_fault"] = await sim_get(session, sim, "/_sim/stats")
                        episode["answered_at_fault"] = len(centres.answers)
                await asyncio.sleep(0.25)
            if fault_at is not None:
                episode["stats_before_space_freed"] = await sim_get(session, sim, "/_sim/stats")
            await disk.free()
            freed = time.monotonic()
            ready_after = None
            while ready_after is None:
                async with session.get(f"{stack.gateway_url}/readyz") as r:
                    if r.status == 200:
                        ready_after = time.monotonic() - freed
                await asyncio.sleep(0.1)
            await sending
            drain = await wait_finished(session, stack.gateway_url, n, timeout=600)
            agency = await sim_get(session, sim, "/_sim/accepted")
            stats = await sim_get(session, sim, "/_sim/stats")
            for _ in range(60):  # the episode's end is logged once writes have gone through for 10 s
                if '"storage_recovered"' in await asyncio.to_thread((logs / "gateway.log").read_text):
                    break
                await asyncio.sleep(0.5)
        await gw.kill()  # what is on disk now is what a power cut would leave
        stored = await asyncio.to_thread(read_file, db)
        log = await asyncio.to_thread((logs / "gateway.log").read_text)
    finally:
        await stack.stop()
        await disk.unmount()
    out = verdict(centres, stored, agency)
    answered_ids = {a.dossier_id for a in centres.answers.values()}
    if fault_at is None:
        out["episode"] = "the store never ran out of space: lower --headroom-mb"
        return out
    at_fault, before_free = episode["stats_at_fault"], episode["stats_before_space_freed"]
    out |= {
        "disk_mb": disk.size_mb,
        "headroom_mb": headroom_mb,
        "filler_bytes": filled,
        "answered_before_the_store_was_full": episode["answered_at_fault"],
        "held_full_seconds_after_first_fault": hold,
        "readyz_answers": dict(Counter(s for _, s in readiness)),
        "seconds_to_ready_after_space_freed": round(ready_after, 2),
        "results_owed_by_agency_when_the_store_filled": at_fault.get("accepted", 0) - at_fault.get("callbacks_ok", 0),
        "result_posts_refused_503_while_full": before_free.get("callback_retries", 0)
        - at_fault.get("callback_retries", 0),
        "result_posts_refused_503_and_resent_by_agency": stats.get("callback_retries", 0),
        "results_delivered": stats.get("callbacks_ok", 0),
        "results_refused_for_good": stats.get("callbacks_refused", 0),
        "results_lost": sum(1 for d in answered_ids if stored["dossiers"].get(d, (0, 0))[1] != 1),
        "seconds_until_all_finished_after_space_freed": round(drain, 1),
        "log_storage_fault_lines": log.count('"storage_fault"'),
        "log_storage_recovered_lines": log.count('"storage_recovered"'),
        "log_unhandled_errors": log.count('"unhandled_error"'),
    }
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--dossiers", type=int, default=5000, help="submissions of the kill run")
    parser.add_argument("--full-disk-dossiers", type=int, default=1500, help="submissions of the full-disk run")
    parser.add_argument("--headroom-mb", type=float, default=6.0, help="space left on the disk at the start")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds the disk stays full once the store is")
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-full-disk", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="lienthong-durability-") as tmp:
        work = Path(tmp)
        if not args.skip_kills:
            report["kills"] = await kills(work, args.dossiers)
            print(json.dumps({"kills": report["kills"]}, indent=2))
        if not args.skip_full_disk:
            report["full_disk"] = await full_disk(work, args.full_disk_dossiers, args.headroom_mb, args.hold)
            print(json.dumps({"full_disk": report["full_disk"]}, indent=2))
    await asyncio.to_thread(RESULTS.mkdir, parents=True, exist_ok=True)
    out = RESULTS / f"durability-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    await asyncio.to_thread(out.write_text, json.dumps(report, indent=2, default=list))
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
