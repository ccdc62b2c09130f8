"""Time of a /metrics scrape with a large store: N finished dossiers (each with its done job), a few open
jobs; the demo gateway in this process, scraped over loopback, the open jobs read again at every scrape.

    .venv/bin/python -m bench.metrics_scrape [--dossiers 1000000] [--scrapes 300] [--db PATH]

Prints p50, p95 and max of the scrape time in milliseconds (the client's view: request to last byte).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway import metrics
from gateway.store.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
BATCH = 50_000


def fill(db: Path, n: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    migrate(conn)
    have = conn.execute("SELECT COUNT(*) FROM dossiers").fetchone()[0]
    now = time.time()
    iso = "2026-01-05T08:00:00+07:00"
    for start in range(have, n, BATCH):
        dossiers, jobs = [], []
        for i in range(start, min(n, start + BATCH)):
            did = str(uuid.UUID(int=i + 1))
            dossiers.append(
                (
                    did,
                    f"000.00.01.H26-260105-{i:07d}",
                    "1.004222",
                    "Đăng ký thường trú",
                    "000.00.01.H26",
                    "centre-hanoi",
                    "police",
                    "national",
                    9,
                    iso,
                    iso,
                    iso,
                    iso,
                    "{}",
                )
            )
            state = "dead" if i % 20_000 == 0 else "waiting" if i % 50_000 == 1 else "done"
            jobs.append((did, "submit", "police", "national", f"k-{i}", state, now, now, now))
        conn.executemany(
            "INSERT INTO dossiers (id, code, procedure_code, procedure_name, receiving_unit, client_id, agency, "
            "endpoint, status, received_at, due_at, updated_at, finished_at, submission) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            dossiers,
        )
        conn.executemany(
            "INSERT INTO jobs (dossier_id, step, agency, endpoint, idempotency_key, state, next_at, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            jobs,
        )
        conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def measure(db: Path, scrapes: int) -> list[float]:
    os.environ.update({"LIENTHONG_DB": str(db), "LIENTHONG_METRICS_PUBLIC": "true", "LIENTHONG_PORT": "0"})
    from gateway.app import app_from_conf

    metrics.OPEN_JOBS_TTL = 0.0  # every scrape reads the store: the worst case
    app = await asyncio.to_thread(app_from_conf, ROOT / "conf" / "demo")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    times: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(scrapes + 10):
                t0 = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                    body = await r.read()
                    assert r.status == 200, body
                if i >= 10:  # the first ones warm the readers' connections and caches
                    times.append((time.perf_counter() - t0) * 1000)
    finally:
        await runner.cleanup()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="lienthong-scrape-")) / "big.db"
    t0 = time.perf_counter()
    fill(db, args.dossiers)
    print(f"store: {args.dossiers} dossiers in {db} ({time.perf_counter() - t0:.0f} s to fill)")
    times = asyncio.run(measure(db, args.scrapes))
    q = statistics.quantiles(times, n=100)
    print(f"scrape ms over {len(times)}: p50 {q[49]:.2f}, p95 {q[94]:.2f}, max {max(times):.2f}")


if __name__ == "__main__":
    main()
