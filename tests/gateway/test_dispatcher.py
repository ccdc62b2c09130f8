"""The dispatcher against a scripted store and connector: who is asked for jobs, and when slots free up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.config.model import DispatcherSettings
from gateway.connector import Delivery, SubmitReceipt
from gateway.dispatcher import Dispatcher, sweep_deadlines
from gateway.store.base import JobRecord
from tests.gateway.conftest import GatewayHarness

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

    async def complete_job(self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str) -> bool:
        await self.hold_completions.wait()
        self.completed.append(job_id)
        return True


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


async def test_an_unexpected_exception_is_retried_a_few_times_then_shown_as_a_generic_line(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector that raises something other than an AgencyError: retried as transient (bounded), its
    traceback logged, and the centre sees neither its text nor anything it carried."""
    from structlog.testing import capture_logs

    from gateway import dispatcher
    from gateway.api.keys import CONNECTORS

    monkeypatch.setattr(dispatcher, "PLUGIN_ERROR_ATTEMPTS", 2)  # fewer than the harness's max_attempts (3)
    connector = harness.app[CONNECTORS][("police", "national")]
    calls: list[int] = []

    async def broken(dossier: Any, delivery: Delivery) -> SubmitReceipt:
        calls.append(delivery.attempt)
        raise KeyError(f"soDinhDanh {dossier.submission.applicant.personal_id}")

    connector.submit = broken  # type: ignore[method-assign]
    body = submission(0)
    with capture_logs() as logs:
        resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
        assert resp.status == 202
        did = (await resp.json())["id"]
        async with asyncio.timeout(15):
            while True:
                view = await (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers())).json()
                if view["delivery"]["state"] == "dead":
                    break
                await asyncio.sleep(0.05)
    assert calls == [1, 2]
    error = view["delivery"]["last_error"]
    assert error.startswith("internal error in the agency plugin (KeyError)")
    assert body["applicant"]["personal_id"] not in error and "soDinhDanh" not in error
    logged = [e for e in logs if e["event"] == "plugin_error"]
    assert len(logged) == 2 and all(e["exc_info"] for e in logged)
    assert [e["retry"] for e in logged] == [True, False]
