"""The KPI run: how long the centre performance reports take on a store of a million dossiers.

    .venv/bin/python -m bench.kpis                     # 1,000,000 dossiers (a few minutes to build)
    .venv/bin/python -m bench.kpis --dossiers 100000   # smaller

A store file is built with the gateway's own schema (every migration): the dossiers of a year at 200
centres of 34 provinces, 5 agencies and 40 procedures; 90 % finished after 0 to 20 working days, a tenth
of them asked for documents, most handed over (a fifth at another centre), the rest still open. The
counters (`kpi_daily`, `kpi_open`) are written as the store writes them, aggregated here in bulk so the
build stays quick; then:

1. the write path: the cost per status event of keeping the counters (`kpis.on_event` on finished events
   of existing dossiers, in transactions of 256, as the writer groups them), against the same events
   without it;
2. the reports, through the store's reader as the API calls it: per centre, agency, procedure and
   province over 30 days and over the whole year, the on-time series per centre by day for the year, and
   the league (two periods). Each is run 5 times; the median and the worst are printed.

The figures are printed and written to bench/results/kpis-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from contracts.calendar import NATIONAL, VN_TZ, preload
from gateway import kpi
from gateway.store import SqliteStore
from gateway.store.kpis import COUNTERS, DIMENSIONS, Dims, KpiRows, local_day, on_event, working_days
from gateway.store.migrations import migrate

YEAR_START = date(2025, 12, 1)
DAYS = 365
CENTRES = [f"000.00.{i // 34 + 1:02d}.H{i % 34 + 1:02d}" for i in range(200)]
PROVINCES = [f"{p:02d}" for p in range(1, 35)]
AGENCIES = ["police", "justice", "tax", "social_insurance", "land"]
PROCEDURES = [(f"1.00{4000 + i}", AGENCIES[i % 5]) for i in range(40)]


def build(path: Path, n: int, seed: int = 19) -> dict[str, Any]:
    rnd = random.Random(seed)
    preload(range(2025, 2028))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    migrate(conn)
    daily: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    hists: dict[tuple[str, str, str], Counter[int]] = defaultdict(Counter)
    opened: list[tuple[str, ...]] = []
    dossiers: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    for i in range(n):
        centre = rnd.choice(CENTRES)
        procedure, agency = rnd.choice(PROCEDURES)
        province = PROVINCES[CENTRES.index(centre) % 34]
        d = Dims(centre, agency, procedure, province)
        received = datetime.combine(YEAR_START + timedelta(days=rnd.randrange(DAYS)), datetime.min.time(), VN_TZ)
        received += timedelta(hours=rnd.uniform(7.5, 17))
        due = NATIONAL.add_working_days(received, rnd.choice((3, 5, 7, 10, 15)))
        fees = rnd.random() < 0.4
        sub = {"jurisdiction": {"province": province}, "fees": [{"paid_online": rnd.random() < 0.6}] if fees else []}
        did = str(uuid.UUID(int=rnd.getrandbits(128)))
        day = local_day(received)
        for dim, item in d.items():
            c = daily[(dim, item, day)]
            c["received"] += 1
            c["with_fees"] += int(fees)
            c["paid_online"] += int(bool(fees and sub["fees"][0]["paid_online"]))
        status = 4
        finished_at = None
        if rnd.random() < 0.1:
            asked = received + timedelta(days=1)
            for dim, item in d.items():
                daily[(dim, item, local_day(asked))]["supplements"] += 1
        if rnd.random() < 0.9:
            finished = NATIONAL.add_working_days(received, rnd.randrange(0, 21))
            if finished < now:
                status, finished_at = 9, finished.astimezone(UTC).isoformat()
                wd = working_days(NATIONAL, received, finished)
                on_time = finished <= due
                for dim, item in d.items():
                    key = (dim, item, local_day(finished))
                    c = daily[key]
                    c["finished"] += 1
                    c["on_time"] += int(on_time)
                    c["late"] += int(not on_time)
                    c["days_sum"] += wd
                    hists[key][wd] += 1
                if rnd.random() < 0.8:
                    status = 10
                    back = finished + timedelta(days=1)
                    for dim, item in d.items():
                        c = daily[(dim, item, local_day(back))]
                        c["returned"] += 1
                        c["returned_elsewhere"] += int(rnd.random() < 0.2)
        if status == 4:
            opened.append((did, centre, agency, procedure, province, due.astimezone(UTC).isoformat()))
        dossiers.append(
            (
                did, f"{centre}-{received:%y%m%d}-{i:06d}", procedure, "Thủ tục", centre, "centre", agency, "national",
                status, received.astimezone(UTC).isoformat(), due.astimezone(UTC).isoformat(),
                received.astimezone(UTC).isoformat(), finished_at, orjson.dumps(sub).decode(),
            )
        )  # fmt: skip
        if len(dossiers) == 20_000:
            _insert_dossiers(conn, dossiers)
            dossiers.clear()
    _insert_dossiers(conn, dossiers)
    cols, marks = ", ".join(COUNTERS), ", ".join("?" * len(COUNTERS))
    conn.executemany(
        f"INSERT INTO kpi_daily (dim, item, day, {cols}) VALUES (?, ?, ?, {marks})",
        [(*key, *(c[k] for k in COUNTERS)) for key, c in daily.items()],
    )
    conn.executemany(
        "INSERT INTO kpi_days (dim, item, day, working_days, n) VALUES (?, ?, ?, ?, ?)",
        [(*key, wd, n) for key, h in hists.items() for wd, n in h.items()],
    )
    conn.executemany("INSERT INTO kpi_open VALUES (?, ?, ?, ?, ?, ?)", opened)
    conn.execute("COMMIT")
    rows = conn.execute("SELECT COUNT(*) FROM kpi_daily").fetchone()[0]
    day_rows = conn.execute("SELECT COUNT(*) FROM kpi_days").fetchone()[0]
    conn.close()
    took = round(time.perf_counter() - t0, 1)
    return {"dossiers": n, "kpi_daily_rows": rows, "kpi_days_rows": day_rows, "open": len(opened), "build_s": took}


def _insert_dossiers(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO dossiers (id, code, procedure_code, procedure_name, receiving_unit, client_id, agency, endpoint, "
        "status, received_at, due_at, updated_at, finished_at, submission) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


def write_path(path: Path, events: int = 20_000) -> dict[str, float]:
    """µs per finished event with the counters kept, and without (the event insert and dossier update only).
    Each dossier finishes 4 days after it was received: working days are counted over that span."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT id, received_at FROM dossiers WHERE status = 4 LIMIT ?", (events * 2,)).fetchall()
    done = [(r[0], (datetime.fromisoformat(r[1]) + timedelta(days=4)).isoformat()) for r in rows]
    half = len(done) // 2
    out = {}
    for label, chunk, counted in (("without_kpis", done[:half], False), ("with_kpis", done[half:], True)):
        t0 = time.perf_counter()
        for start in range(0, len(chunk), 256):
            conn.execute("BEGIN")
            for did, at in chunk[start : start + 256]:
                conn.execute(
                    "INSERT INTO events (dossier_id, status, at, actor, note, data) "
                    "VALUES (?, 9, ?, 'agency', '', '{}')",
                    (did, at),
                )
                if counted:
                    on_event(conn, did, 9, at, "agency:police")
                conn.execute(
                    "UPDATE dossiers SET status = 9, finished_at = ?, updated_at = ? WHERE id = ?", (at, at, did)
                )
            conn.execute("ROLLBACK")  # the store stays as built for the reports
        out[label] = round((time.perf_counter() - t0) / max(1, len(chunk)) * 1e6, 1)
    conn.close()
    return out


async def reports(path: Path, repeat: int = 5) -> dict[str, dict[str, float]]:
    store = SqliteStore(path)
    await store.open()
    end = YEAR_START + timedelta(days=DAYS - 1)
    month = end - timedelta(days=29)
    now = datetime.now(UTC)
    cases: dict[str, Any] = {}
    for dim in DIMENSIONS:
        cases[f"{dim}, 30 days"] = lambda dim=dim: store.kpi_rows(dim, month, end, now)
        cases[f"{dim}, 365 days"] = lambda dim=dim: store.kpi_rows(dim, YEAR_START, end, now)
    cases["series per centre by day, 365 days"] = lambda: store.kpi_series("centre", YEAR_START, end)

    async def league() -> list[kpi.Standing]:
        p_start, p_end = kpi.previous_period(month, end)
        cur, prev = await asyncio.gather(
            store.kpi_rows("centre", month, end, now), store.kpi_rows("centre", p_start, p_end, now)
        )
        return kpi.league(kpi.report(cur), kpi.report(prev), kpi.LeagueSettings())

    cases["league, 30 days and the 30 before"] = league
    out = {}
    try:
        for name, run in cases.items():
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = await run()
                if isinstance(result, KpiRows):
                    kpi.report(result)  # the API's work on the rows, counted too
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
            print(f"  {name:<40} median {out[name]['median_ms']:>8} ms   worst {out[name]['max_ms']:>8} ms")
    finally:
        await store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build the store here (and keep it) instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "kpis.db"
        print(f"building a store of {args.dossiers:,} dossiers in {path} ...")
        built = build(path, args.dossiers)
        print(f"  {built}")
        print("write path (µs per finished event, in batches of 256):")
        written = write_path(path)
        print(f"  {written}")
        print("reports:")
        timed = asyncio.run(reports(path))
    result = {"at": datetime.now(UTC).isoformat(), "built": built, "write_path_us": written, "reports": timed}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    target = out / f"kpis-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    target.write_text(json.dumps(result, indent=2))
    print(f"written to {target}")


if __name__ == "__main__":
    main()
