"""Retention: done jobs and idempotency keys pruned by age, in batches; a dossier's latest job kept (its
delivery state) without its inputs; dossiers, events and the audit log never touched."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.api.keys import STORE
from gateway.config.model import RetentionSettings
from gateway.retention import DAY, prune_once
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status

Make = Callable[[int], dict[str, Any]]


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("dossiers", "events", "audit", "jobs", "idempotency_keys")
        }
    finally:
        conn.close()


def later_job(db: Path, dossier: str) -> None:
    """A second delivery of the dossier, done (as a supplement's would be), with inputs."""
    conn = sqlite3.connect(db)
    try:
        now = time.time()
        conn.execute(
            "INSERT INTO jobs (dossier_id, step, agency, endpoint, idempotency_key, state, inputs, next_at, "
            "created_at, updated_at) VALUES (?, 'supplement-1', 'police', 'national', ?, 'done', '{\"a\": 1}', "
            "?, ?, ?)",
            (dossier, f"{dossier}-s1", now, now, now),
        )
        conn.commit()
    finally:
        conn.close()


def jobs_of(db: Path, dossier: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT step, inputs FROM jobs WHERE dossier_id = ? ORDER BY id", (dossier,)).fetchall()
    finally:
        conn.close()


async def test_pruning_keeps_what_the_dossiers_need(harness: GatewayHarness, submission: Make, tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    ids = []
    for i in range(3):
        resp = await harness.client.post(
            "/v1/dossiers", json=submission(i), headers=harness.headers(**{"Idempotency-Key": f"k{i}"})
        )
        assert resp.status == 202
        ids.append((await resp.json())["id"])
    for did in ids:  # each delivered and finished by the agency: nothing more comes to change the counts below
        assert (await wait_status(harness, did, 9))["status"] == 9
    await asyncio.to_thread(later_job, db, ids[0])
    before = await asyncio.to_thread(counts, db)
    store = harness.app[STORE]
    settings = RetentionSettings(batch=1)  # one row a transaction: the batches loop

    nothing = await prune_once(store, ["police"], settings)  # nothing is old enough yet
    assert (nothing.jobs, nothing.keys) == (0, 0)
    done = await prune_once(store, ["police"], settings, now=time.time() + 31 * DAY)
    assert (done.jobs, done.keys) == (1, 3)
    after = await asyncio.to_thread(counts, db)
    assert after == before | {"jobs": before["jobs"] - 1, "idempotency_keys": 0}
    assert await asyncio.to_thread(jobs_of, db, ids[0]) == [("supplement-1", "{}")]  # the latest, emptied
    for did in ids:
        view = await (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers())).json()
        assert view["delivery"]["state"] == "delivered", view
    # A request repeated after the key's age is a new request.
    resp = await harness.client.post(
        "/v1/dossiers", json=submission(1), headers=harness.headers(**{"Idempotency-Key": "k1"})
    )
    assert resp.status == 202 and (await resp.json())["id"] != ids[1]


def test_the_ages_by_default() -> None:
    s = RetentionSettings()
    assert (s.done_jobs_days, s.idempotency_keys_days, s.interval) == (30.0, 7.0, 3600.0)
