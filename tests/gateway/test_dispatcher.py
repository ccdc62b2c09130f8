"""The dispatcher against a scripted store and connector: who is asked for jobs, and when slots free up; then
against the police simulator: Retry-After, the retry budget in time, permanent refusals; and pollers
during an outage of the tax service."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from gateway.api.keys import DISPATCHER, STORE
from gateway.breaker import Breakers
from gateway.config.model import BreakerSettings, DispatcherSettings
from gateway.connector import ConnectorContext, Delivery, SubmitReceipt
from gateway.dispatcher import Dispatcher, poll_agency, sweep_deadlines
from gateway.gate import Gate
from gateway.maintenance import Holds
from gateway.sdk.simulation import CALLS, FAULTS, Faults, SimulatorOptions
from gateway.store import SqliteStore
from gateway.store.base import Completion, JobRecord, NewDossier
from plugins.tax.connector import TaxConnector, TaxSettings
from plugins.tax.simulator import create_simulator as create_tax_simulator
from tests.gateway.conftest import CONF, GatewayHarness
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
        self.given_back: list[int] = []
        self.hold_completions = asyncio.Event()
        self.hold_completions.set()

    async def claim_jobs(
        self, owner: str, free: dict[str, int], lease_seconds: float, endpoints: Any = None
    ) -> list[JobRecord]:
        self.claims.append(dict(free))
        out: list[JobRecord] = []
        for agency, n in free.items():
            only = (endpoints or {}).get(agency)
            ready = self.ready.get(agency, [])
            taken = [j for j in ready if only is None or only.get(j.endpoint, 0) > 0][:n]
            out += taken
            self.ready[agency] = [j for j in ready if j not in taken]
        return out

    async def get_dossier(self, ref: str) -> Any:
        return object()

    async def complete_job(
        self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str, attempt: Any = None
    ) -> Completion:
        await self.hold_completions.wait()
        self.completed.append(job_id)
        return Completion(True)

    async def unclaim_jobs(self, owner: str, job_ids: list[int]) -> int:
        self.given_back += job_ids
        return len(job_ids)

    async def forget_attempt_bodies(self, before: float) -> int:
        return 0

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
    ahead = 1 + d.settings.claim_ahead  # each agency's slots, and as many again per claim-ahead
    assert store.claims[0] == {"police": 1 * ahead, "land": 4 * ahead}
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


class HeldConnector:
    """Answers each call when the test says so, one at a time."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []

    async def submit(self, dossier: Any, delivery: Delivery) -> SubmitReceipt:
        answer = asyncio.get_running_loop().create_future()
        self.waiting.append(answer)
        await answer
        return SubmitReceipt()


@contextlib.asynccontextmanager
async def land_held(
    slots: int, settings: DispatcherSettings, jobs: list[JobRecord]
) -> AsyncIterator[tuple[Dispatcher, ScriptedStore, HeldConnector]]:
    """A dispatcher for one agency whose calls wait for the test to answer them, running over `jobs`; at
    the end it is stopped, every call still waiting answered, and its deliveries drained."""
    store, connector = ScriptedStore(), HeldConnector()
    d = Dispatcher(store, {("land", "main"): connector}, {"land": slots}, settings)  # type: ignore[arg-type]
    store.ready["land"] = jobs
    task = asyncio.create_task(d.run())
    try:
        yield d, store, connector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for answer in connector.waiting:
            if not answer.done():
                answer.set_result(None)
        await d.drain()


async def test_slots_freed_one_by_one_are_claimed_together() -> None:
    settings = DispatcherSettings(poll_interval=30, claim_wait=0.1, claim_ahead=0)  # slots only: no job waits claimed
    async with land_held(4, settings, [job(n, "land") for n in range(10, 18)]) as (_, store, connector):
        await until(lambda: len(connector.waiting) == 4)
        first = len(store.claims)
        for answer in list(connector.waiting):  # the agency answers the four deliveries, one after another
            answer.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        await until(lambda: len(connector.waiting) == 8, timeout=5)
        assert store.claims[first:] == [{"land": 4}]  # one claim for the four freed slots, not four


async def test_a_delivery_that_ends_starts_a_job_claimed_ahead_without_waiting_for_a_claim() -> None:
    settings = DispatcherSettings(poll_interval=30, claim_wait=0.1, claim_ahead=1)
    async with land_held(2, settings, [job(n, "land") for n in range(20, 24)]) as (d, store, connector):
        await until(lambda: len(connector.waiting) == 2)
        assert store.claims == [{"land": 4}] and store.ready["land"] == []  # two slots, two jobs ahead
        assert d.claimed_ahead() == {"land": 2}
        claims = len(store.claims)
        connector.waiting[0].set_result(None)
        # The next call starts at once: the next claim comes only after claim_wait (0.1 s).
        await until(lambda: len(connector.waiting) == 3)
        assert len(store.claims) == claims
        assert d.in_flight == {"land": 2} and d.claimed_ahead() == {"land": 1}


async def test_a_job_claimed_ahead_that_waited_a_tenth_of_its_lease_is_given_back_not_delivered() -> None:
    settings = DispatcherSettings(poll_interval=30, claim_ahead=1, lease_seconds=1.0)
    async with land_held(1, settings, [job(30, "land"), job(31, "land")]) as (_, store, connector):
        await until(lambda: len(connector.waiting) == 1)
        await asyncio.sleep(0.15)  # job 31 waits behind a slow call longer than 0.1 of its 1 s lease
        connector.waiting[0].set_result(None)
        await until(lambda: store.given_back == [31])
        await asyncio.sleep(0.05)
        assert len(connector.waiting) == 1  # not called with what is left of its lease


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
    # completion and, after it, the record of the failure, three times over: store errors are never the job's fault.
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

    async def claim_jobs(
        self, owner: str, free: dict[str, int], lease_seconds: float, endpoints: Any = None
    ) -> list[JobRecord]:
        self.claiming.set()
        await self.release.wait()
        jobs: list[JobRecord] = await self.store.claim_jobs(owner, free, lease_seconds, endpoints=endpoints)
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


async def test_a_job_claimed_again_after_its_lease_ran_out_is_delivered_once() -> None:
    settings = DispatcherSettings(poll_interval=30, claim_wait=0, claim_ahead=2)
    async with land_held(1, settings, [job(40, "land"), job(41, "land")]) as (d, store, connector):
        await until(lambda: len(connector.waiting) == 1 and d.claimed_ahead() == {"land": 1})
        # Job 41's lease ran out while it waited (the call of job 40 took that long): reclaimed, then
        # claimed again by the same dispatcher.
        store.ready["land"] = [job(41, "land")]
        d.wake("land")
        await until(lambda: store.ready["land"] == [])
        assert d.claimed_ahead() == {"land": 1}  # one entry for job 41, not two
        connector.waiting[0].set_result(None)
        await until(lambda: len(connector.waiting) == 2)
        connector.waiting[1].set_result(None)
        await until(lambda: sorted(store.completed) == [40, 41])
        await asyncio.sleep(0.05)
        assert len(connector.waiting) == 2 and store.given_back == []


async def test_jobs_claimed_ahead_go_back_to_the_queue_at_shutdown(store: Any, new_police_dossier: Any) -> None:
    for _ in range(3):
        await store.create_dossier(dataclasses.replace(new_police_dossier, id=uuid.uuid4()))
    connector = HeldConnector()
    settings = DispatcherSettings(poll_interval=POLL, claim_ahead=1)
    d = Dispatcher(store, {("police", "national"): connector}, {"police": 1}, settings)  # type: ignore[dict-item]
    task = asyncio.create_task(d.run())
    await until(lambda: len(connector.waiting) == 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await d.drain(timeout=0.1)  # the call in flight is cancelled: its job stays leased
    jobs = sorted((j.state, j.attempts) for j in await store.jobs())
    # One leased (the call cut short), the one claimed ahead back in the queue with no attempt spent, and
    # the third never claimed.
    assert jobs == [("leased", 1), ("pending", 0), ("pending", 0)]


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


# -- against the police simulator: Retry-After, the retry budget in time ---------------------------------


async def sim_calls(h: GatewayHarness, since: float = 0.0) -> list[dict[str, Any]]:
    async with h.client.session.get(str(h.police.make_url("/_sim/calls")), params={"since": str(since)}) as r:
        got: list[dict[str, Any]] = await r.json()
        return got


async def submit(h: GatewayHarness, body: dict[str, Any]) -> str:
    resp = await h.client.post("/v1/dossiers", json=body, headers=h.headers())
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["id"])


async def delivery(h: GatewayHarness, did: str) -> dict[str, Any]:
    body = await (await h.client.get(f"/v1/dossiers/{did}", headers=h.headers())).json()
    assert isinstance(body["delivery"], dict)
    return body["delivery"]


async def test_an_agency_saying_retry_after_5_is_not_called_again_before(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    await harness.set_faults(down=True, retry_after=5)
    first = await submit(harness, submission(0))
    while not (refused := await sim_calls(harness)):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    answered = refused[0]["ended"]
    # The agency is back at once, and more dossiers come: all of them wait for the time it asked for.
    await harness.set_faults(down=False)
    ids = [first] + [await submit(harness, submission(i)) for i in range(1, 4)]
    state = await (
        await harness.client.get("/v1/admin/agencies?check=false", headers=harness.headers("operator"))
    ).json()
    [police] = state["items"]
    assert police["state"] == "open"
    assert answered + 5 <= datetime.fromisoformat(police["next_probe_at"]).timestamp() < answered + 6
    for did in ids:
        assert (await wait_status(harness, did, 9))["status"] == 9
    after = await sim_calls(harness, since=answered)
    assert len(after) == 4 and all(c["status"] == 202 for c in after)
    assert min(c["at"] for c in after) >= answered + 5


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_GIVE_UP_AFTER": "1.5", "LIENTHONG_BREAKER_FAILURES": "0"}])
async def test_the_retry_budget_is_time_and_time_held_is_not_spent(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    await harness.set_faults(down=True)  # and no breaker to hold the deliveries (failures = 0)
    # Tried with backoff for about the budget (1.5 s), then dead-lettered, however many attempts that took.
    first = await submit(harness, submission(0))
    d = await delivery_when(harness, first, lambda d: d["state"] == "dead")
    assert d["state"] == "dead" and d["attempts"] >= 2 and "503" in d["last_error"]

    # A second one fails, then the agency is paused for 4 s: more than the budget, and not spent.
    second = await submit(harness, submission(1))
    await delivery_when(harness, second, lambda d: d["attempts"] >= 1)
    until = datetime.fromtimestamp(time.time() + 4, UTC)
    resp = await harness.client.post(
        "/v1/admin/agencies/police/pause",
        json={"until": until.isoformat(), "reason": "thử"},
        headers=harness.headers("operator"),
    )
    assert resp.status == 200
    paused_at = time.time()
    await asyncio.sleep(max(0.0, until.timestamp() - time.time()))
    d = await delivery_when(harness, second, lambda d: d["state"] == "dead")
    assert d["state"] == "dead"
    calls = await sim_calls(harness, since=paused_at)
    # Nothing during the pause; after it, retried for what was left of the budget (more than one attempt:
    # had the pause been spent, the first attempt after it would have been the last).
    assert len(calls) >= 2 and min(c["at"] for c in calls) >= until.timestamp()


async def delivery_when(
    h: GatewayHarness, did: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        d = await delivery(h, did)
        if ready(d) or asyncio.get_running_loop().time() > deadline:
            return d
        await asyncio.sleep(0.02)


async def test_a_permanent_refusal_is_dead_at_once_and_the_breaker_stays_closed(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    ids = []
    for i in range(6):  # more than the breaker's failures: refusals say the agency is up
        body = submission(i)
        body["form"]["household_head_id"] = "001090000001"  # not in the population register: refused
        ids.append(await submit(harness, body))
    for did in ids:
        d = await delivery_when(harness, did, lambda d: d["state"] == "dead")
        assert (d["state"], d["attempts"]) == ("dead", 1) and "201" in d["last_error"]
    state = await (
        await harness.client.get("/v1/admin/agencies?check=false", headers=harness.headers("operator"))
    ).json()
    assert state["items"][0]["state"] == "closed"


# -- a poller during an outage of the tax service -------------------------------------------------------


async def test_a_poller_tells_an_outage_in_two_lines_and_leaves_the_agency_alone(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    sim = await aiohttp_server(create_tax_simulator(SimulatorOptions(processing_delay=0.0)), host="127.0.0.1")
    store = SqliteStore(tmp_path / "store.db")
    await store.open()
    breaker = BreakerSettings(failures=3, probe_after=0.2, probe_max=0.5)
    gate = Gate([("tax", "national")], Breakers(breaker), Holds())
    try:
        async with aiohttp.ClientSession() as http:
            settings = TaxSettings(url=str(sim.make_url("/ws")), timeout=2.0)
            ctx = ConnectorContext("tax", "national", settings, http, "http://127.0.0.1:9/")
            connector = TaxConnector(ctx)
            await connector.start()
            with capture_logs() as logs:
                task = asyncio.create_task(poll_agency(store, "tax", connector, 0.05, gate, max_delay=1.0))
                await asyncio.sleep(0.5)  # a healthy agency, polled every 0.05 s
                sim.app[FAULTS].faults = Faults(down=True)
                down_at = time.time()
                await asyncio.sleep(4.0)
                sim.app[FAULTS].faults = Faults()
                up_at = time.time()
                deadline = asyncio.get_running_loop().time() + 10
                while gate.breakers.get("tax", "national").state != "closed":
                    assert asyncio.get_running_loop().time() < deadline, "the poller never found the agency back"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # polled as before
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await store.close()
    told = [(e["event"], e["log_level"]) for e in logs if e["event"] != "outbound" and e["log_level"] != "debug"]
    assert told == [("endpoint_down", "warning"), ("endpoint_up", "info")]
    assert not any("exc_info" in e or "exception" in e for e in logs)  # no traceback, at any level
    calls = list(sim.app[CALLS])
    during = [c for c in calls if down_at <= c.at < up_at]
    probes = most_probes(up_at - down_at, breaker.probe_after, breaker.probe_max)
    assert all(c.status == 503 for c in during)
    assert 0 < len(during) <= breaker.failures + probes  # not one poll every 0.05 s
    assert len([c for c in calls if c.at >= up_at and c.status == 200]) >= 5


def most_probes(seconds: float, first: float, longest: float) -> int:
    n, t, wait = 0, 0.0, first
    while t + wait <= seconds:
        t, n, wait = t + wait, n + 1, min(wait * 2, longest)
    return n


# -- dead letters replayed when an agency is back ----------------------------------------------------------


@pytest.fixture
def replay_on_recovery() -> bool:
    return False


@pytest.fixture
def gateway_conf(tmp_path: Path, replay_on_recovery: bool) -> Path:
    if not replay_on_recovery:
        return CONF
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    agencies = copy / "agencies.toml"
    agencies.write_text(
        agencies.read_text().replace("concurrency = 16\n", "concurrency = 16\nreplay_dead_on_recovery = true\n")
    )
    return copy


@pytest.mark.parametrize("replay_on_recovery", [True])
@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_GIVE_UP_AFTER": "0.01", "LIENTHONG_BREAKER_FAILURES": "4"}])
async def test_dead_letters_of_an_outage_are_replayed_when_the_agency_is_back(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    # Refused for good before the outage: not the outage's doing, not replayed.
    refused = submission(0)
    refused["form"]["household_head_id"] = "001090000001"
    refused_id = await submit(harness, refused)
    assert (await delivery_when(harness, refused_id, lambda d: d["state"] == "dead"))["attempts"] == 1
    await harness.set_faults(down=True)
    # Two failures and a budget shorter than the first backoff: dead during the outage. Two more dossiers
    # fail once each: the fourth failure in a row opens the breaker, and they are held.
    lost = await submit(harness, submission(1))
    assert (await delivery_when(harness, lost, lambda d: d["state"] == "dead"))["state"] == "dead"
    held = await asyncio.gather(*(submit(harness, submission(i)) for i in (2, 3)))  # tried before any retry
    operator = harness.headers("operator")
    for did in held:  # each tried once: the breaker is open
        await delivery_when(harness, did, lambda d: d["attempts"] >= 1 and d["last_error"] is not None)
    state = await (await harness.client.get("/v1/admin/agencies?check=false", headers=operator)).json()
    assert state["items"][0]["state"] == "open"
    await harness.set_faults(down=False)
    for did in [lost, *held]:
        assert (await wait_status(harness, did, 9))["status"] == 9
    assert (await delivery(harness, refused_id))["state"] == "dead"
    audit = await (await harness.client.get("/v1/admin/audit", headers=operator)).json()
    [replay] = [r for r in audit["items"] if r["action"] == "replay"]
    assert (replay["client"], replay["basis"]) == ("gateway", "endpoint-recovered")
    assert (replay["detail"]["agency"], replay["detail"]["endpoint"], replay["detail"]["replayed"]) == (
        "police",
        "national",
        1,
    )


async def test_an_unexpected_exception_is_retried_a_few_times_then_shown_as_a_generic_line(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector that raises something other than an AgencyError: retried as transient (bounded), its
    traceback logged, and the centre sees neither its text nor anything it carried."""
    from structlog.testing import capture_logs

    from gateway import dispatcher
    from gateway.api.keys import CONNECTORS

    monkeypatch.setattr(dispatcher, "PLUGIN_ERROR_ATTEMPTS", 2)
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
