"""`lienthong demo`: simulators and the gateway on loopback, a batch of dossiers from several centres,
the agency taken down midway and brought back, progress shown, a table of final statuses at the end."""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from gateway.launcher import SimSpec, Stack
from gateway.plugin_manager import load_registry

# Plaintext keys of conf/demo/clients.toml (which holds only their hashes). Demo only.
DEMO_KEYS = {
    "centre-hanoi": "demo-centre-hanoi-key-7Qk2",
    "centre-hcm": "demo-centre-hcm-key-Vw9p",
    "centre-danang": "demo-centre-danang-key-Lm4c",
    "portal": "demo-portal-key-Zx81",
    "police-callbacks": "demo-police-callback-key-Hh3r",
    "operator": "demo-operator-key-Pq5t",
}
CENTRES = ["centre-hanoi", "centre-hcm", "centre-danang"]


def demo_sims() -> list[SimSpec]:
    return [
        SimSpec(
            kind="police",
            agency="police",
            url_env="POLICE_URL",
            secret_env="POLICE_SECRET",
            secret="demo-police-shared-secret-2025",
            callback_key=DEMO_KEYS["police-callbacks"],
        ),
    ]


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stdout.isatty()
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            print(f"\r{text:<110}", end="", flush=True)
        elif force or now - self.last >= 1.0:
            print(text, flush=True)
            self.last = now

    def done(self) -> None:
        if self.tty:
            print()


async def _submit(
    session: aiohttp.ClientSession, url: str, centre: str, body: dict[str, Any], key: str
) -> dict[str, Any]:
    headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": key}
    async with session.post(f"{url}/v1/dossiers", json=body, headers=headers) as resp:
        data: dict[str, Any] = await resp.json()
        if resp.status not in (200, 202):
            raise RuntimeError(f"submission refused: {resp.status} {data}")
        return data


async def _status_counts(session: aiohttp.ClientSession, url: str, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    async def one(did: str, centre: str) -> tuple[str, dict[str, Any]]:
        async with session.get(f"{url}/v1/dossiers/{did}", headers={"X-Api-Key": DEMO_KEYS[centre]}) as resp:
            return did, await resp.json()

    pairs = await asyncio.gather(*(one(d, c) for d, c in ids.items()))
    return dict(pairs)


async def run_demo(conf: Path, *, dossiers: int = 60, workdir: Path | None = None) -> int:
    registry = load_registry()
    tmp = tempfile.TemporaryDirectory(prefix="lienthong-demo-") if workdir is None else None
    work = workdir or Path(tmp.name)  # type: ignore[union-attr]
    stack = Stack(conf, work, demo_sims())
    print(f"Lienthong demo: working folder {work}")
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        print(
            f"  gateway on {stack.gateway_url}; simulators: " + ", ".join(f"{s.agency} on {s.url}" for s in stack.sims)
        )
        return await _scenario(stack, registry, dossiers)
    finally:
        await stack.stop()
        if tmp is not None:
            tmp.cleanup()


async def _scenario(stack: Stack, registry: Any, count: int) -> int:
    url = stack.gateway_url
    police = stack.sim("police")
    async with aiohttp.ClientSession() as session:
        # 1. A synchronous look-up: verify a citizen's identity at the population database.
        sample = registry.agency_kinds["police"].demo_dossiers(1, 2)
        person = sample[0]["applicant"]
        query = {
            "personal_id": person["personal_id"],
            "full_name": person["full_name"],
            "date_of_birth": person["date_of_birth"],
        }
        async with session.post(
            f"{url}/v1/lookups/identity-verification", json=query, headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
        ) as resp:
            print(f"  identity verification of {person['full_name']}: {resp.status} {await resp.json()}")

        # 2. A batch from three centres; the police system goes down a third of the way in.
        batch = registry.agency_kinds["police"].demo_dossiers(42, count)
        rng = random.Random(3)
        ids: dict[str, str] = {}
        progress = Progress(count)
        down_at, up_after = count // 3, 4.0
        down_since = 0.0
        for i, body in enumerate(batch):
            if i == down_at:
                async with session.post(f"{police.url}/_sim/faults", json={"down": True}):
                    pass
                down_since = time.monotonic()
                progress.show(f"  [{i}/{count}] police system DOWN: the gateway keeps accepting", force=True)
                print() if progress.tty else None
            centre = rng.choice(CENTRES)
            accepted = await _submit(session, url, centre, body, f"demo-{i}")
            ids[accepted["id"]] = centre
            progress.show(f"  submitting: {i + 1}/{count} accepted (last {accepted['code']})")
            await asyncio.sleep(0.02)
        progress.show(f"  submitted {count}/{count}", force=True)
        progress.done()

        # 3. Bring the agency back and watch the backlog drain.
        wait_more = up_after - (time.monotonic() - down_since)
        if wait_more > 0:
            await asyncio.sleep(wait_more)
        async with session.post(f"{police.url}/_sim/faults", json={"down": False}):
            pass
        print("  police system UP again: deliveries resume")
        deadline = time.monotonic() + 120
        final: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            final = await _status_counts(session, url, ids)
            by = Counter(d["status"] for d in final.values())
            done = by.get(9, 0)
            progress.show(
                f"  progress: {done}/{count} finished · " + " ".join(f"status {s}: {n}" for s, n in sorted(by.items())),
                force=False,
            )
            if done == count:
                break
            await asyncio.sleep(0.5)
        progress.show(f"  progress: {sum(1 for d in final.values() if d['status'] == 9)}/{count} finished", force=True)
        progress.done()

        async with session.get(f"{police.url}/_sim/stats") as resp:
            stats = await resp.json()
    return _report(final, ids, stats, count)


def _report(final: dict[str, dict[str, Any]], ids: dict[str, str], stats: dict[str, Any], count: int) -> int:
    from contracts import DossierStatus

    rows: dict[str, Counter[str]] = {}
    provinces: dict[str, set[str]] = {}
    for did, d in final.items():
        centre = ids[did]
        rows.setdefault(centre, Counter())[f"{d['status']} {DossierStatus(d['status']).label}"] += 1
        provinces.setdefault(centre, set()).add(d["submission"]["jurisdiction"]["province"])
    print()
    print(f"  {'centre':<16} {'dossiers':>8} {'provinces':>9}  final statuses")
    for centre, c in sorted(rows.items()):
        print(
            f"  {centre:<16} {sum(c.values()):>8} {len(provinces[centre]):>9}  "
            + ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))
        )
    finished = sum(1 for d in final.values() if d["status"] == DossierStatus.FINISHED)
    attempts = Counter(d["delivery"]["attempts"] for d in final.values() if d.get("delivery"))
    print()
    print(f"  accepted by the gateway: {count}; finished: {finished}")
    print(
        f"  delivered to the police system: {stats.get('accepted', 0)} unique, "
        f"{stats.get('duplicates', 0)} repeated attempts de-duplicated, "
        f"{stats.get('refused_down', 0)} attempts refused while down"
    )
    print("  delivery attempts per dossier: " + ", ".join(f"{a}x: {n}" for a, n in sorted(attempts.items())))
    ok = finished == count and stats.get("accepted", 0) == count
    print("  RESULT: " + ("all delivered, none twice" if ok else "INCOMPLETE: see the logs in the working folder"))
    return 0 if ok else 1
