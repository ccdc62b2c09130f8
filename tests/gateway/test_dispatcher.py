"""The dispatcher against a scripted store and connector: who is asked for jobs, and when slots free up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.api.keys import DISPATCHER, STORE
from gateway.config.model import DispatcherSettings
from gateway.connector import Delivery, SubmitReceipt
from gateway.dispatcher import Dispatcher, sweep_deadlines
from gateway.store.base import Completion, JobRecord, NewDossier
from tests.gateway.conftest import GatewayHarness
from tests.gateway.faults import StoreFaults
from tests.gateway.test_smoke import wait_status

POLL = 0.2


def job(n: int, agency: str) -> JobRecord:
    return JobRecord(n, uuid.uuid4(), "submit", agency, "main", f"k{n}", "leased", 1, 0.0, None, {}, None)


class ScriptedStore:
    """Hands out the jobs it was given, records every claim, and holds completions until released."""

    def __init__(self) -> None:
        self.ready: dict[str, list[JobRecord]] = {}
        self.claims: list[dict[str, int]] = []
        self.completed: list[int] = []
        self.hold_completions = asyncio.Event()
        self.hold_completions.set()

    async def claim_jobs(self, owner: str, free: dict[str, int], lease_seconds: float) -> list[JobRecord]:
        self.claims.append(dict(free))
        out: list[JobRecord] = []
        for agency, n in free.items():
            ready = self.ready.get(agency, [])
            out += ready[:n]
            del ready[:n]
        return out

    async def get_dossier(self, ref: str) -> Any:
        return object()

    async def complete_job(self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str) -> Completion:
        await self.hold_completions.wait()
        self.completed.append(job_id)
        return Completion(True)

    async def reclaim_expired_leases(self) -> int:
        return 0


class AnsweringConnector:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def submit(self, dossier: Any, delivery: Delivery) -> SubmitReceipt:
        self.calls.append(delivery.idempotency_key)
        return SubmitReceipt()


@pytest.fixture
async def running() -> AsyncIterator[tuple[Dispatcher, ScriptedStore, AnsweringConnector]]:
    store, connector = ScriptedStore(), AnsweringConnector()
    connectors: Any = {("police", "main"): connector, ("land", "main"): connector}
    d = Dispatcher(store, connectors, {"police": 1, "land": 4}, DispatcherSettings(poll_interval=POLL))  # type: ignore[arg-type]
    task = asyncio.create_task(d.run())
    await asyncio.sleep(0.05)  # the first claim asks every agency
    try:
        yield d, store, connector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await d.drain()


async def until(predicate: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_a_wake_for_one_agency_asks_only_that_agency(
    running: tuple[Dispatcher, ScriptedStore, AnsweringConnector],
) -> None:
    d, store, connector = running
    assert store.claims[0] == {"police": 1, "land": 4}
    before = len(store.claims)
    store.ready["land"] = [job(1, "land")]
    d.wake("land")
    await until(lambda: connector.calls == ["k1"])
    assert all(set(c) == {"land"} for c in store.claims[before:])


async def test_jobs_that_come_due_are_claimed_without_a_wake(
    running: tuple[Dispatcher, ScriptedStore, AnsweringConnector],
) -> None:
    _, store, connector = running
    store.ready["police"] = [job(2, "police")]  # e.g. a retry whose backoff ended: nobody wakes us
    await until(lambda: connector.calls == ["k2"], timeout=POLL * 5)


async def test_the_slot_frees_once_the_agency_answered(
    running: tuple[Dispatcher, ScriptedStore, AnsweringConnector],
) -> None:
    d, store, connector = running
    store.hold_completions.clear()  # recording the first delivery takes a while
    store.ready["police"] = [job(3, "police"), job(4, "police")]
    d.wake("police")
    # One slot for police: the second call starts while the first delivery is still being recorded.
    await until(lambda: connector.calls == ["k3", "k4"])
    assert store.completed == []
    store.hold_completions.set()
    await until(lambda: sorted(store.completed) == [3, 4])
    assert d.in_flight == {"police": 0, "land": 0}


class DeadlineStore:
    """Counts the sweeps; the second one finds a dossier past its deadline, the third one fails."""

    def __init__(self) -> None:
        self.sweeps: list[datetime] = []
        self.expired = uuid.uuid4()
        self.five = asyncio.Event()

    async def expire_supplements(self, now: datetime) -> list[uuid.UUID]:
        self.sweeps.append(now)
        if len(self.sweeps) == 5:
            self.five.set()
        if len(self.sweeps) == 3:
            raise RuntimeError("database is locked")
        return [self.expired] if len(self.sweeps) == 2 else []


async def test_the_deadline_sweep_runs_on_its_interval_and_survives_a_failure() -> None:
    store = DeadlineStore()
    task = asyncio.create_task(sweep_deadlines(store, 0.01))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(store.five.wait(), 5)  # past the failing third sweep
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all(t.tzinfo is UTC for t in store.sweeps)  # deadlines are compared in aware time
    assert store.sweeps == sorted(store.sweeps)


# -- leases, store errors and cancelled claims, with the real store and the police simulator -----------


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("LIENTHONG_LEASE_SECONDS", "1")
    return 1.0


async def test_a_job_whose_outcome_could_not_be_written_is_reclaimed_and_delivered(
    short_leases: float,
    store_faults: StoreFaults,
    harness: GatewayHarness,
    submission: Callable[[int], dict[str, Any]],
) -> None:
    # The agency takes the dossier, then the disk is full for the commits that would record it: the
    # completion and, after it, the record of the failure. Three times over, past max_attempts (3).
    store_faults.fail_commits("SET state = 'done'", "SET state = ?, next_at", times=6)
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert resp.status == 202
    did = (await resp.json())["id"]
    store = harness.app[STORE]
    dispatcher = harness.app[DISPATCHER]

    async def done() -> JobRecord:
        async with asyncio.timeout(30):
            while True:
                [job] = await store.jobs()
                if job.state == "done":
                    return job
                await asyncio.sleep(0.05)

    job = await done()
    assert store_faults.failed_commits == 6
    # Each lost record left the job leased until its lease ran out, then the loop took it back: the
    # gateway never stopped, nothing was dead-lettered, the agency was asked again with the same key.
    assert (job.attempts, dispatcher.reclaimed) == (4, 3)
    assert await store.jobs("dead") == []
    stats = await harness.sim_stats()
    assert (stats["accepted"], stats["duplicates"]) == (1, 3)
    final = await wait_status(harness, did, 9)
    assert final["status"] == 9 and final["delivery"]["state"] == "delivered"


class SlowClaims:
    """The real store, whose claims wait until released: a shutdown can cancel one in flight."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.claiming = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def claim_jobs(self, owner: str, free: dict[str, int], lease_seconds: float) -> list[JobRecord]:
        self.claiming.set()
        await self.release.wait()
        jobs: list[JobRecord] = await self.store.claim_jobs(owner, free, lease_seconds)
        return jobs


async def test_a_claim_cancelled_at_shutdown_is_undone(store: Any, new_police_dossier: Any) -> None:
    await store.create_dossier(new_police_dossier)
    slow = SlowClaims(store)
    d = Dispatcher(slow, {}, {"police": 4}, DispatcherSettings(poll_interval=POLL))
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(slow.claiming.wait(), 5)
    task.cancel()  # the gateway stops while the claim is on its way to the store
    slow.release.set()  # ...and the store commits it all the same
    await asyncio.gather(task, return_exceptions=True)
    [job] = await store.jobs()
    assert (job.state, job.attempts) == ("pending", 0)  # ready for whoever runs next, no attempt spent


@pytest.fixture
def new_police_dossier(submission: Callable[[int], dict[str, Any]]) -> NewDossier:
    now = datetime.now(UTC)
    return NewDossier(
        id=uuid.uuid4(),
        receiving_unit="000.00.01.H26",
        day=now.date(),
        procedure_code="1.004194",
        procedure_name="Đăng ký thường trú",
        client_id="centre-hanoi",
        agency="police",
        endpoint="national",
        received_at=now,
        due_at=now,
        submission=submission(0),
        idempotency_key=None,
        body_hash="h",
    )
