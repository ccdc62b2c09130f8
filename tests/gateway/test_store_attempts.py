"""Delivery attempts in the store: one row per attempt, written with the job's outcome in one transaction;
every filter of the transaction browser narrows the result; re-runs count first, then send, audited."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.connector import SubmitReceipt
from gateway.store import SqliteStore
from gateway.store.attempts import AttemptInfo, AttemptQuery
from gateway.store.base import AuditEntry, NewDossier
from gateway.store.filters import JobFilter
from plugins.police.demo import demo_dossiers

OWNER = "test:1"
SUBS = demo_dossiers(11, 3)


@pytest.fixture
def new() -> Callable[..., NewDossier]:
    def make(i: int, agency: str) -> NewDossier:
        received = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        return NewDossier(
            id=uuid.uuid4(),
            receiving_unit="000.00.01.H26",
            day=received.date(),
            procedure_code=SUBS[i]["procedure_code"],
            procedure_name="Đăng ký thường trú",
            client_id="centre-hanoi",
            agency=agency,
            endpoint="national",
            received_at=received,
            due_at=received + timedelta(days=5),
            submission=SUBS[i],
            idempotency_key=None,
            body_hash=hashlib.sha256(f"{i}{agency}".encode()).hexdigest(),
        )

    return make


async def claim_one(store: SqliteStore, agency: str) -> int:
    [job] = await store.claim_jobs(OWNER, {agency: 1}, 60.0)
    return job.id


async def seeded(store: SqliteStore, new: Callable[..., NewDossier]) -> dict[str, Any]:
    """Police dossier P: failed (503), failed (timeout), delivered. Justice dossier J: dead (refused)."""
    p = (await store.create_dossier(new(0, "police"))).dossier
    j = (await store.create_dossier(new(1, "justice"))).dossier
    t0 = time.time() - 3600  # an hour ago
    job = await claim_one(store, "police")
    assert await store.fail_job(job, OWNER, "AgencyUnavailable: 503", time.time() - 1, AttemptInfo(t0, 12.5))
    job = await claim_one(store, "police")
    assert await store.fail_job(job, OWNER, "AgencyTimeout: no answer", time.time() - 1, AttemptInfo(t0 + 60, 5000))
    job = await claim_one(store, "police")
    receipt = SubmitReceipt(agency_ref="CA-2026-1")
    done = await store.complete_job(
        job, OWNER, receipt, actor="agency:police", attempt=AttemptInfo(t0 + 120, 40.0, '{"sent":1}', '{"ok":1}')
    )
    assert done.recorded
    jj = await claim_one(store, "justice")
    assert await store.fail_job(jj, OWNER, "AgencyRefused: form invalid", None, AttemptInfo(t0 + 1800, 8.0))
    return {"p": str(p.id), "j": str(j.id), "t0": t0, "police_job": job, "justice_job": jj}


async def test_each_attempt_is_kept_with_its_outcome(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    s = await seeded(store, new)
    tried = await store.dossier_attempts(s["p"])
    assert [(a.attempt, a.outcome) for a in tried] == [(1, "failed"), (2, "failed"), (3, "delivered")]
    assert [a.error for a in tried] == ["AgencyUnavailable: 503", "AgencyTimeout: no answer", None]
    assert (tried[2].agency_ref, tried[2].duration_ms, tried[2].response_body) == ("CA-2026-1", 40.0, '{"ok":1}')
    [dead] = await store.dossier_attempts(s["j"])
    assert (dead.outcome, dead.agency, dead.step) == ("dead", "justice", "submit")


async def test_a_lost_lease_records_no_attempt(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    d = (await store.create_dossier(new(0, "police"))).dossier
    job = await claim_one(store, "police")
    assert not await store.fail_job(job, "someone-else", "late", None)  # not the lease holder: nothing written
    assert await store.dossier_attempts(str(d.id)) == []


async def test_every_filter_narrows_the_attempts(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    s = await seeded(store, new)

    async def found(**kw: Any) -> list[tuple[str, int]]:
        return [(a.outcome, a.attempt) for a in await store.attempts(AttemptQuery(**kw))]

    assert len(await found()) == 4
    assert await found(agency="justice") == [("dead", 1)]
    assert await found(dossier_id=s["p"]) == [("delivered", 3), ("failed", 2), ("failed", 1)]
    assert await found(outcome="failed") == [("failed", 2), ("failed", 1)]
    assert await found(since=s["t0"] + 30, until=s["t0"] + 600) == [("delivered", 3), ("failed", 2)]
    assert await found(text="TIMEOUT") == [("failed", 2)]
    assert await found(text="50%") == []  # a wildcard in the text is searched for as itself
    assert await found(agency="police", outcome="failed", text="503") == [("failed", 1)]
    newest = await store.attempts(AttemptQuery(limit=2))
    assert [a.outcome for a in await store.attempts(AttemptQuery(before_id=newest[-1].id))] == ["failed", "failed"]


async def test_every_filter_narrows_the_jobs(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    s = await seeded(store, new)

    async def found(**kw: Any) -> list[str]:
        return [j.agency + ":" + j.state for j in await store.find_jobs(JobFilter(**kw))]

    assert sorted(await found()) == ["justice:dead", "police:done"]
    assert await found(agency="police") == ["police:done"]
    assert await found(dossier_id=s["j"]) == ["justice:dead"]
    assert await found(states=("dead",)) == ["justice:dead"]
    assert await found(text="form invalid") == ["justice:dead"]
    assert await found(since=time.time() + 60) == []


async def test_a_rerun_counts_first_then_sends_and_is_audited(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    s = await seeded(store, new)
    entry = AuditEntry("operator", "rerun", "allowed", "admin", detail={"agency": "justice"})
    where = JobFilter(agency="justice")
    assert await store.rerun_jobs(where, audit=None, dry_run=True) == 1
    assert [j.state for j in await store.find_jobs(where)] == ["dead"]  # the dry run changed nothing
    assert await store.rerun_jobs(where, audit=entry) == 1
    [job] = await store.find_jobs(where)
    assert (job.state, job.attempts, job.last_error) == ("pending", 0, None)
    [record] = [r for r in await store.audit_log() if r.action == "rerun"]
    assert record.detail == {"agency": "justice", "rerun": 1}
    # A delivered job is sent again only when asked for by state; the history stays.
    done = JobFilter(dossier_id=s["p"], states=("done",))
    assert await store.rerun_jobs(JobFilter(dossier_id=s["p"]), audit=None, dry_run=True) == 0
    assert await store.rerun_jobs(done, audit=dataclasses.replace(entry, detail={})) == 1
    assert len(await store.dossier_attempts(s["p"])) == 3


async def test_captured_bodies_are_forgotten_after_their_retention(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    s = await seeded(store, new)
    assert await store.forget_attempt_bodies(s["t0"]) == 0  # captured at t0 + 120: kept
    assert await store.forget_attempt_bodies(time.time()) == 1
    tried = await store.dossier_attempts(s["p"])
    assert tried[2].request_body is None and tried[2].response_body is None and tried[2].agency_ref == "CA-2026-1"


async def test_leases_taken_back_are_attempts_without_an_outcome(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    d = (await store.create_dossier(new(0, "police"))).dossier
    await claim_one(store, "police")
    assert await store.release_leases() == 1  # the process that owned the store stopped mid-delivery
    await store.claim_jobs(OWNER, {"police": 1}, 0.01)
    await asyncio.sleep(0.05)
    assert await store.reclaim_expired_leases() == 1  # its holder never recorded an outcome
    first, second = await store.dossier_attempts(str(d.id))
    assert (first.attempt, first.outcome) == (1, "lease-expired") and "stopped" in (first.error or "")
    assert (second.attempt, second.outcome) == (2, "lease-expired") and "expired" in (second.error or "")


async def test_a_lease_without_an_end_is_dated_to_the_second(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    """A lease with no recorded end is dated when it is taken back, exactly: on PostgreSQL a REAL (4 bytes)
    would round today's Unix time to about two minutes."""
    d = (await store.create_dossier(new(0, "police"))).dossier
    job = await claim_one(store, "police")
    await store._write(lambda conn: conn.execute("UPDATE jobs SET lease_until = NULL WHERE id = ?", (job,)))
    before = time.time()
    assert await store.release_leases() == 1
    [expired] = await store.dossier_attempts(str(d.id))
    assert expired.outcome == "lease-expired"
    assert before - 1 <= expired.started_at <= time.time() + 1
