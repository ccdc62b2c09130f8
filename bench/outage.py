"""An agency outage against `lienthong serve` with the demo configuration, in real time.

    .venv/bin/python -m bench.outage                          # 10 minutes down, 500 dossiers arriving
    .venv/bin/python -m bench.outage --minutes 0.5 --dossiers 40   # a smoke run

Every simulator of the demo and the gateway run as processes on loopback, as `lienthong demo` starts
them (gateway/sandbox/demo.py), with the configuration's own breaker, backoff and retry budget. The
police system is taken down; police dossiers arrive at an even pace for as long as it is down; then it
comes back. Measured: dead letters, calls that reached the dead simulator (it counts the requests it
refused), the police endpoint's state just before the recovery, and the time from the recovery until
every delivery is done and until every dossier is finished (the agency's callbacks applied). Results are
printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from gateway.sandbox.demo import CENTRES, DEMO_KEYS, demo_stack
from plugins.police.demo import demo_dossiers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "demo"
RESULTS = ROOT / "bench" / "results"
OPERATOR = {"X-Api-Key": DEMO_KEYS["operator"]}


async def get(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> Any:
    async with session.get(url, headers=headers) as r:
        r.raise_for_status()
        return await r.json()


async def police_state(session: aiohttp.ClientSession, gateway: str) -> dict[str, Any]:
    data = await get(session, f"{gateway}/v1/admin/agencies?check=false", OPERATOR)
    [item] = [i for i in data["items"] if i["agency"] == "police"]
    assert isinstance(item, dict)
    return item


async def jobs(session: aiohttp.ClientSession, gateway: str, state: str) -> list[dict[str, Any]]:
    data = await get(session, f"{gateway}/v1/admin/deliveries?state={state}&limit=10000", OPERATOR)
    return [j for j in data["items"] if j["agency"] == "police"]


async def run(minutes: float, count: int, work: Path) -> dict[str, Any]:
    outage = minutes * 60
    bodies = await asyncio.to_thread(demo_dossiers, 2026, count)
    stack = demo_stack(CONF, work)
    police = stack.sim("police").url
    rng = random.Random(11)
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        gateway = stack.gateway_url
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{police}/_sim/faults", json={"down": True}) as r:
                r.raise_for_status()
            down_at = time.time()
            print(f"police down at {time.strftime('%H:%M:%S')}; {count} dossiers over {outage:.0f} s", flush=True)
            accepted, refused_at_intake = [], 0
            for i, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, down_at + i * outage / count - time.time()))
                centre = rng.choice(CENTRES)
                headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": f"outage-{i}"}
                async with session.post(f"{gateway}/v1/dossiers", json=body, headers=headers) as r:
                    if r.status == 202:
                        accepted.append((await r.json())["id"])
                    else:
                        refused_at_intake += 1
                if i % 50 == 49:
                    dead = len(await jobs(session, gateway, "dead"))
                    print(
                        f"  {i + 1} submitted at +{time.time() - down_at:.0f} s; dead letters so far: {dead}",
                        flush=True,
                    )
            await asyncio.sleep(max(0.0, down_at + outage - time.time()))
            before = await police_state(session, gateway)
            dead_during = len(await jobs(session, gateway, "dead"))
            stats_down = await get(session, f"{police}/_sim/stats")
            async with session.post(f"{police}/_sim/faults", json={"down": False}) as r:
                r.raise_for_status()
            up_at = time.time()
            print(f"police up after {up_at - down_at:.0f} s; state before: {before['state']}", flush=True)
            done_at = finished_at = None
            while time.time() - up_at < 900:
                overview = await get(session, f"{gateway}/v1/admin/overview", OPERATOR)
                [row] = [a for a in overview["agencies"] if a["agency"] == "police"]
                finished = {s["status"]: s["count"] for s in overview["dossiers_by_status"]}.get(9, 0)
                if done_at is None and row["done"] >= len(accepted):
                    done_at = time.time()
                    print(f"  every delivery done {done_at - up_at:.1f} s after the recovery", flush=True)
                if finished >= len(accepted):
                    finished_at = time.time()
                    break
                await asyncio.sleep(0.25)
            calls = await get(session, f"{police}/_sim/calls")
            stats = await get(session, f"{police}/_sim/stats")
            dead_after = len(await jobs(session, gateway, "dead"))
    finally:
        await stack.stop()
    during = [c for c in calls if down_at <= c["at"] < up_at]
    opened = datetime.fromisoformat(before["open_since"]).timestamp() if before["open_since"] else None
    drain = [c for c in calls if c["at"] >= up_at]
    return {
        "outage_s": round(up_at - down_at, 1),
        "dossiers_submitted": count,
        "accepted": len(accepted),
        "refused_at_intake": refused_at_intake,
        "dead_letters_during_outage": dead_during,
        "dead_letters_at_end": dead_after,
        "calls_reaching_the_dead_agency": len(during),
        "refused_by_the_simulator": stats_down.get("refused_down", 0),
        "calls_before_the_breaker_opened": sum(1 for c in during if opened is not None and c["at"] < opened),
        "probes": sum(1 for c in during if opened is not None and c["at"] >= opened),
        "endpoint_before_recovery": {k: before[k] for k in ("state", "open_since", "next_probe_at", "pending", "held")},
        "recovery_to_all_delivered_s": round(done_at - up_at, 1) if done_at else None,
        "recovery_to_all_finished_s": round(finished_at - up_at, 1) if finished_at else None,
        "drain_calls": len(drain),
        "accepted_by_the_agency": stats.get("accepted", 0),
        "duplicates_at_the_agency": stats.get("duplicates", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the police system is down")
    parser.add_argument("--dossiers", type=int, default=500, help="police dossiers arriving meanwhile")
    parser.add_argument("--out", type=Path, default=RESULTS / "outage.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lienthong-outage-") as tmp:
        figures = asyncio.run(run(args.minutes, args.dossiers, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
