"""Delivers outbox jobs to agencies: leases, a concurrency limit per agency, backoff with jitter, dead letters.

Delivery is at-least-once; every attempt carries the job's stable idempotency key, so the agency
de-duplicates and the citizen sees the effect once.

Claims go through the gate (gateway/gate.py): an endpoint whose breaker is open, or that is in a
maintenance window or paused, has none of its jobs claimed; when its probe is due, one. A transient
failure is retried until the agency's `give_up_after` is spent, counted from the job's first failure
without the time it was held (outbox.py adds that at each claim); a permanent one dead-letters at once.

Leases expire: a job whose outcome could not be recorded (the store failed after the agency answered,
or its process died) is reclaimed by the loop once `lease_until` has passed, and delivered again. A
delivery is bounded by the lease, so a live lease always has somebody working on it. A store error is
never the agency's fault: it is retried, never dead-lettered. A claim cancelled at shutdown is undone.

Before a first delivery, `prepare` puts every document the dossier names in the store (URL fetches with
`[documents.fetch] when = "delivery"`), within the same deadline as the agency's call. A document that
cannot be had is not the agency's fault: its breaker is not told, the job is retried within its budget
while the reason may pass, and otherwise the centre is asked for the documents (status 5).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog
import tenacity

from contracts import Dossier
from gateway.breaker import Breaker, Breakers
from gateway.config.model import BreakerSettings, DispatcherSettings
from gateway.connector import AgencyUpdate, Connector, Delivery, PollOutcome, SubmitReceipt
from gateway.documents.delivery import DocumentsUnavailable
from gateway.documents.tiered import CLAIMED
from gateway.errors import (
    AgencyError,
    AgencyTimeout,
    IllegalTransition,
    InvalidResult,
    StorageUnavailable,
    WrongAgency,
    is_retryable,
)
from gateway.gate import ClaimPlan, Gate
from gateway.maintenance import Holds
from gateway.metrics import Metrics
from gateway.store.attempts import AttemptInfo
from gateway.store.base import AuditEntry, JobRecord, Store, UpdateSource
from gateway.tasks import cancel_and_wait
from gateway.transactions import Stopwatch, answer_body, request_body

log = structlog.get_logger("lienthong.dispatcher")


class BackoffSettings(Protocol):
    @property
    def base_delay(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def jitter(self) -> float: ...


class Backoff:
    """tenacity's exponential wait with jitter, computed for a durable attempt count."""

    def __init__(self, settings: BackoffSettings) -> None:
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=settings.base_delay, max=settings.max_delay, jitter=settings.jitter
        )

    def delay(self, attempt: int) -> float:
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(self._wait(state))


# Attempts at a job whose connector raised something other than an AgencyError.
PLUGIN_ERROR_ATTEMPTS = 3


def plugin_error_reason(exc: BaseException, job_id: int) -> str:
    """What the centre (and `deliveries list`) sees of an unexpected exception: its class, never its text."""
    return f"internal error in the agency plugin ({type(exc).__name__}); logged as plugin_error for job {job_id}"


def call_outcome(exc: BaseException) -> str:
    """The outcome label of a failed agency call: it refused, it may pass, it timed out, or a plugin bug."""
    if isinstance(exc, AgencyTimeout):
        return "timeout"
    if isinstance(exc, AgencyError):
        return "transient" if exc.retryable else "refused"
    return "error"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        connectors: dict[tuple[str, str], Connector],
        concurrency: dict[str, int],
        settings: DispatcherSettings,
        *,
        prepare: Callable[[Dossier], Awaitable[None]] | None = None,
        gate: Gate | None = None,
        give_up_after: Mapping[str, float] | None = None,
        replay_on_recovery: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.connectors = connectors
        self.concurrency = concurrency
        self.settings = settings
        # Before a first delivery: every document the dossier names in the store (DeliveryDocuments.prepare).
        self.prepare = prepare
        self.backoff = Backoff(settings)
        self.gate = gate or Gate(connectors, Breakers(settings.breaker), Holds())
        self.give_up_after = dict(give_up_after or {})  # per agency; settings.give_up_after otherwise
        self.replay_on_recovery = replay_on_recovery  # agencies whose dead letters are replayed when it is back
        self.gate.breakers.on_close.append(self._recovered)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.in_flight: dict[str, int] = dict.fromkeys(concurrency, 0)
        self._wake = asyncio.Event()
        self._woken: set[str] = set(concurrency)  # agencies that may have ready jobs: all, at first
        self._tasks: set[asyncio.Task[None]] = set()
        self._probes: set[int] = set()  # claimed jobs that are their endpoint's probe
        # Jobs claimed ahead (`claim_ahead`), each with when it was claimed: a claim is a commit, which under
        # load waits for the writer's batch, so the slot of a delivery that ends takes its next job from here.
        # Measured on the drain: without them, slots stood idle about two thirds of the time.
        self._ready: dict[str, collections.deque[tuple[float, JobRecord]]] = {}
        self._stopping = False
        self.delivered = 0
        self.failed = 0
        self.reclaimed = 0
        # A delivery ends before its lease does, so a live lease always has somebody working on it.
        self.delivery_timeout = settings.lease_seconds * 0.8
        self.capture_bodies = settings.capture_bodies
        self._next_forget = 0.0  # when captured bodies past their retention are dropped next

    def claimed_ahead(self) -> dict[str, int]:
        """Jobs claimed and waiting for a free slot, by agency."""
        return {a: len(self._ready.get(a, ())) for a in self.concurrency}

    def wake(self, agency: str | None = None) -> None:
        """New work, for one agency or (None) any: claim at once rather than at the next poll."""
        if agency is None:
            self._woken.update(self.concurrency)
        else:
            self._woken.add(agency)
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_scan = loop.time()
        while True:
            if self.settings.claim_wait and any(self.in_flight.values()):
                # Deliveries end one by one: claiming the slot of each at once costs a commit per job.
                await asyncio.sleep(self.settings.claim_wait)
            # Cleared before the claim: a wake that arrives while it runs is not lost.
            self._wake.clear()
            woken, self._woken = self._woken, set()
            if loop.time() >= next_scan:  # retries come due with time: every agency, once per poll interval
                woken = set(self.concurrency)
                next_scan = loop.time() + self.settings.poll_interval
                await self._reclaim()
                await self._forget_bodies()
            # Only agencies with news and free slots are asked: a submission for one agency, or a
            # delivery ending, costs no query for the others.
            ahead = 1 + self.settings.claim_ahead
            free = {
                a: self.concurrency[a] * ahead - n - len(self._ready.get(a, ()))
                for a, n in self.in_flight.items()
                if a in woken
            }
            jobs: list[JobRecord] = []
            if any(v > 0 for v in free.values()):
                plan = self.gate.plan(free)  # endpoints held or open are left out; a due probe gets one job
                try:
                    if plan.free:
                        jobs = await self._claim(plan)
                except StorageUnavailable:
                    self._woken |= woken  # the store logs the episode; the next turn tries again
                except Exception:
                    log.exception("claim_failed")
                    self._woken |= woken
                self._settle_probes(plan, jobs)
            if jobs and self._ready:
                self._forget_ahead({j.id for j in jobs})
            for job in jobs:
                self._woken.add(job.agency)  # it may have more ready: ask again right away
                if self.in_flight[job.agency] < self.concurrency[job.agency] or job.id in self._probes:
                    self._start(job)
                else:
                    self._ready.setdefault(job.agency, collections.deque()).append((loop.time(), job))
            if not jobs:
                # Until the next scan, or sooner when a probe comes due or a window or pause ends.
                until = next_scan
                change = self.gate.next_change(time.time())
                if change is not None:
                    until = min(until, loop.time() + max(0.0, change - time.time()) + 0.01)
                # asyncio.timeout_at, not wait_for: 3.11's wait_for can swallow the cancellation that stops us.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(until):
                        await self._wake.wait()
                if until < next_scan and loop.time() >= until:
                    self._woken.update(self.concurrency)

    def _start(self, job: JobRecord) -> None:
        self.in_flight[job.agency] += 1
        task = asyncio.create_task(self._deliver(job), name=f"deliver-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget_ahead(self, claimed: set[int]) -> None:
        """A job claimed again while it waited here had its lease run out (its agency's slots were all
        taken for longer than a lease) and was reclaimed: the old claim is void, only the new one counts."""
        for agency, ready in self._ready.items():
            if any(job.id in claimed for _, job in ready):
                self._ready[agency] = collections.deque((t, job) for t, job in ready if job.id not in claimed)

    def _start_ready(self, agency: str) -> None:
        """Free slots of `agency` take the jobs claimed ahead for it. A job that waited here for a tenth of
        its lease is given back instead: what is left of the lease may not hold a whole delivery."""
        ready = self._ready.get(agency)
        if not ready or self._stopping:
            return
        now, late = asyncio.get_running_loop().time(), []
        while ready and self.in_flight[agency] < self.concurrency.get(agency, 0):
            claimed_at, job = ready.popleft()
            if now - claimed_at > self.settings.lease_seconds * 0.1:
                late.append(job.id)
            else:
                self._start(job)
        if late:
            task = asyncio.create_task(self._give_back(late), name="give-back")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _give_back(self, job_ids: list[int]) -> None:
        """Jobs claimed but not delivered go back to the queue, their attempt not counted; if the store
        cannot take them now, their leases run out and they are claimed again."""
        try:
            n = await self.store.unclaim_jobs(self.owner, job_ids)
        except StorageUnavailable:
            return
        except Exception:
            log.exception("give_back_failed", jobs=len(job_ids))
            return
        log.info("claimed_ahead_given_back", jobs=n)

    def _settle_probes(self, plan: ClaimPlan, jobs: list[JobRecord]) -> None:
        """The claimed job of a probed endpoint is its probe; a probe that found no job is given back."""
        found = {(j.agency, j.endpoint): j.id for j in jobs}
        for agency, endpoint in plan.probes:
            job_id = found.get((agency, endpoint))
            if job_id is None:
                self.gate.breakers.drop_probe(agency, endpoint)
            else:
                self._probes.add(job_id)

    async def _reclaim(self) -> None:
        try:
            reclaimed = await self.store.reclaim_expired_leases()
        except StorageUnavailable:
            return
        except Exception:
            log.exception("reclaim_failed")
            return
        if reclaimed:
            self.reclaimed += reclaimed
            log.warning("leases_reclaimed", jobs=reclaimed)

    async def _forget_bodies(self) -> None:
        """Captured request and answer bodies past `body_retention` are dropped, once a minute at most."""
        now = time.time()
        if now < self._next_forget:
            return
        self._next_forget = now + 60.0
        try:
            await self.store.forget_attempt_bodies(now - self.settings.body_retention)
        except StorageUnavailable:
            return  # the store is down: it logs that
        except Exception:
            log.exception("forget_bodies_failed")

    def _attempt(self, watch: Stopwatch, outcome: SubmitReceipt | BaseException) -> AttemptInfo:
        return watch.info(answer_body(outcome) if self.capture_bodies else None)

    async def _claim(self, plan: ClaimPlan) -> list[JobRecord]:
        """Claim ready jobs. Cancelled meanwhile (shutdown), the claim may still commit: it is undone, so
        its jobs are not left leased to a dispatcher that will never deliver them."""
        claim = asyncio.ensure_future(
            self.store.claim_jobs(self.owner, plan.free, self.settings.lease_seconds, endpoints=plan.endpoints or None)
        )
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                jobs = await claim
                if jobs:
                    undone = await self.store.unclaim_jobs(self.owner, [j.id for j in jobs])
                    log.info("claim_undone", jobs=undone)
            raise

    async def _deliver(self, job: JobRecord) -> None:
        # Each delivery runs in its own task, so these bindings reach its outbound log line only.
        structlog.contextvars.bind_contextvars(correlation_id=f"job-{job.id}", dossier_id=str(job.dossier_id))
        CLAIMED.set(job.documents)
        started = time.perf_counter()
        released = False

        def release_slot() -> None:
            # The slot limits calls to the agency: once it has answered, the next delivery may start
            # while this one is recorded (its job stays leased until then, so nobody else takes it).
            nonlocal released
            if not released:
                released = True
                self.in_flight[job.agency] -= 1
                self._start_ready(job.agency)
                self.wake(job.agency)

        probe = job.id in self._probes
        self._probes.discard(job.id)
        decision = self.gate.decide(job.agency, job.endpoint)
        if decision == "hold" or (decision != "call" and not probe):
            # Held, or its breaker opened, since the claim (another delivery failed meanwhile): the job goes
            # back unsent, its attempt not counted.
            release_slot()
            if probe:
                self.gate.breakers.drop_probe(job.agency, job.endpoint)
            try:
                await self.store.unclaim_job(job.id, self.owner)
            except Exception as exc:
                if not isinstance(exc, StorageUnavailable):
                    log.exception("unclaim_failed", job=job.id)  # its lease runs out, and it is claimed again
            return
        watch = Stopwatch()
        try:
            dossier = job.dossier or await self.store.get_dossier(str(job.dossier_id))
            if dossier is None:
                raise LookupError(f"job {job.id} names a missing dossier")
            connector = self.connectors[(job.agency, job.endpoint)]
            delivery = Delivery(job.idempotency_key, job.attempts, job.step, job.inputs)
            if self.capture_bodies:
                watch.request = request_body(dossier, delivery)
            receipt = await self._call(connector, job, dossier, delivery)
        except DocumentsUnavailable as exc:
            # The gateway's own failure to get the documents says nothing of the agency, which was not called.
            release_slot()
            if probe:
                self.gate.breakers.drop_probe(job.agency, job.endpoint)
            await self._documents_unavailable(job, exc, self._attempt(watch, exc))
            return
        except asyncio.CancelledError:
            if probe:
                self.gate.breakers.drop_probe(job.agency, job.endpoint)
            raise
        except Exception as exc:
            release_slot()
            self._tell_breaker(job, exc, probe)
            await self._failed(job, exc, self._attempt(watch, exc))
            return
        finally:
            release_slot()
        self.gate.breakers.succeeded(job.agency, job.endpoint, probe=probe)
        try:
            completion = await self.store.complete_job(
                job.id, self.owner, receipt, actor=f"agency:{job.agency}", attempt=self._attempt(watch, receipt)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._not_recorded(job, exc, self._attempt(watch, receipt))
            return
        self.delivered += 1
        for event_id, why in completion.skipped.items():
            log.warning("receipt_update_skipped", job=job.id, agency=job.agency, event_id=event_id, reason=why)
        log.info(
            "delivered",
            job=job.id,
            dossier=dossier.code,
            agency=job.agency,
            attempt=job.attempts,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _call(self, connector: Connector, job: JobRecord, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        """The agency's call, after its documents are in the store (a first delivery's URL fetches): both
        within one deadline inside the lease."""
        deadline = asyncio.timeout(self.delivery_timeout)
        preparing = False
        called = 0.0
        try:
            async with deadline:
                if job.step == "submit" and self.prepare is not None:
                    preparing = True
                    await self.prepare(dossier)
                    preparing = False
                called = time.perf_counter()
                try:
                    receipt = await self._agency(connector, job, dossier, delivery)
                except Exception as exc:
                    self._observe_call(job, call_outcome(exc), called)
                    raise
                self._observe_call(job, "ok", called)
                if self.metrics is not None and job.step == "submit":
                    delay = time.time() - dossier.received_at.timestamp()
                    self.metrics.delivery_delay.labels(job.agency).observe(max(delay, 0.0))
                return receipt
        except TimeoutError:
            if not deadline.expired():
                raise
            if preparing:  # what was fetched is kept: the next attempt goes on from there
                raise DocumentsUnavailable(
                    [f"the documents were not all fetched within {self.delivery_timeout:.0f} s (the job's lease)"],
                    permanent=False,
                ) from None
            self._observe_call(job, "timeout", called)
            raise AgencyTimeout(
                f"no answer within {self.delivery_timeout:.0f} s (the job's lease)", agency=job.agency
            ) from None

    @staticmethod
    async def _agency(connector: Connector, job: JobRecord, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        if job.step.startswith("supplement"):
            return await connector.supplement(dossier, delivery)
        if job.step == "withdraw":
            return await connector.withdraw(dossier, delivery)
        return await connector.submit(dossier, delivery)

    def _observe_call(self, job: JobRecord, outcome: str, called: float) -> None:
        if self.metrics is not None:
            self.metrics.agency_call(job.agency, job.endpoint, job.step, outcome, time.perf_counter() - called)

    def _tell_breaker(self, job: JobRecord, exc: Exception, probe: bool) -> None:
        breakers = self.gate.breakers
        if is_retryable(exc):
            assert isinstance(exc, AgencyError)
            breakers.failed(job.agency, job.endpoint, str(exc), retry_after=exc.retry_after, probe=probe)
        elif isinstance(exc, AgencyError):
            breakers.succeeded(job.agency, job.endpoint, probe=probe)  # it refused this one: it is up
        elif probe:
            breakers.drop_probe(job.agency, job.endpoint)  # a plugin bug or a store error says nothing of the agency

    def _retry_at(self, job: JobRecord, exc: Exception, now: float) -> tuple[float | None, float]:
        """When to try again (None: dead-letter now), and how much of the retry budget is left."""
        # The retry budget: time since the first failure, less the time the job was held unsent.
        spent = now - (job.failing_since if job.failing_since is not None else now) - job.held
        budget = self.give_up_after.get(job.agency, self.settings.give_up_after)
        if isinstance(exc, StorageUnavailable):
            # A store error says nothing about the job: it is tried again, however often.
            return now + self.backoff.delay(job.attempts), budget - spent
        if isinstance(exc, DocumentsUnavailable):  # the documents, not the agency: their own backoff, same budget
            passing = not exc.permanent and spent < budget
            return (now + self.backoff.delay(job.attempts) if passing else None), budget - spent
        if not (is_retryable(exc) and spent < budget):
            return None, budget - spent
        wait = self.backoff.delay(job.attempts)
        if isinstance(exc, AgencyError) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.settings.breaker.retry_after_max))
        return now + wait, budget - spent

    async def _documents_unavailable(self, job: JobRecord, exc: DocumentsUnavailable, attempt: AttemptInfo) -> None:
        """Retried within the retry budget while the reason may pass; then, or at once when it cannot, the
        centre is asked for the documents (a supplement request from the gateway)."""
        retry_at, _ = self._retry_at(job, exc, time.time())
        if retry_at is not None:
            await self._failed(job, exc, attempt)
            return
        self.failed += 1
        log.warning("documents_unavailable", job=job.id, agency=job.agency, attempt=job.attempts, items=exc.items)
        try:
            await self.store.ask_for_documents(job.id, self.owner, exc.items, exc.note, attempt)
        except StorageUnavailable:
            pass  # the job stays leased: reclaimed once its lease expires, and asked for again
        except Exception:
            log.exception("ask_for_documents_failed", job=job.id)

    async def _failed(self, job: JobRecord, exc: Exception, attempt: AttemptInfo | None = None) -> None:
        self.failed += 1
        now = time.time()
        retry_at, left = self._retry_at(job, exc, now)
        if isinstance(exc, AgencyError | StorageUnavailable | DocumentsUnavailable):
            reason = f"{type(exc).__name__}: {exc}"
        else:
            # A plugin bug (or a passing fault it did not map) is retried a few times as transient, then
            # dead-lettered for replay once fixed; it never fails the gateway. Its text may hold anything
            # (a personal id, a stack detail): the log keeps it with the traceback, the job a generic line.
            retry = job.attempts < PLUGIN_ERROR_ATTEMPTS and left > 0
            retry_at = now + self.backoff.delay(job.attempts) if retry else None
            reason = plugin_error_reason(exc, job.id)
            log.exception("plugin_error", job=job.id, agency=job.agency, attempt=job.attempts, retry=retry)
        log.warning(
            "delivery_failed",
            job=job.id,
            agency=job.agency,
            endpoint=job.endpoint,
            attempt=job.attempts,
            error=reason,
            retry_in=round(retry_at - now, 2) if retry_at else None,
            budget_left=round(left, 1) if is_retryable(exc) else None,
            dead=retry_at is None,
        )
        await self._record_failure(job, reason, retry_at, attempt)

    async def _not_recorded(self, job: JobRecord, exc: Exception, attempt: AttemptInfo | None = None) -> None:
        """The agency took the job but its outcome could not be written. Delivered again later (the agency
        de-duplicates on the key): after a backoff if the failure can be written, else once the lease expires."""
        self.failed += 1
        reason = f"the agency's answer could not be recorded: {type(exc).__name__}: {exc}"
        storage = isinstance(exc, StorageUnavailable)
        if not storage:
            log.exception("complete_failed", job=job.id, agency=job.agency)
        # Never a dead letter for a store error; an unexpected one (a bug) gets what is left of the budget.
        now = time.time()
        spent = now - (job.failing_since if job.failing_since is not None else now) - job.held
        budget = self.give_up_after.get(job.agency, self.settings.give_up_after)
        retry = storage or spent < budget
        retry_at = now + self.backoff.delay(job.attempts) if retry else None
        log.warning("delivery_not_recorded", job=job.id, agency=job.agency, attempt=job.attempts, error=reason)
        await self._record_failure(job, reason, retry_at, attempt)

    async def _record_failure(
        self, job: JobRecord, reason: str, retry_at: float | None, attempt: AttemptInfo | None = None
    ) -> None:
        try:
            await self.store.fail_job(job.id, self.owner, reason, retry_at, attempt)
        except StorageUnavailable:
            pass  # the job stays leased: reclaimed once its lease expires
        except Exception:
            log.exception("fail_job_failed", job=job.id)

    def _recovered(self, breaker: Breaker, began: float) -> None:
        """An endpoint is back: its backlog goes at the agency's concurrency, and (if the agency asks for
        it) its deliveries dead-lettered since the outage began are replayed."""
        self.wake(breaker.agency)
        if breaker.agency in self.replay_on_recovery:
            task = asyncio.create_task(self._replay(breaker.agency, breaker.endpoint, began), name="replay-on-recovery")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _replay(self, agency: str, endpoint: str, since: float) -> None:
        entry = AuditEntry(
            client_id="gateway",
            action="replay",
            outcome="allowed",
            basis="endpoint-recovered",
            detail={"agency": agency, "endpoint": endpoint, "since": datetime.fromtimestamp(since, UTC).isoformat()},
        )
        try:
            n = await self.store.replay_dead(agency=agency, endpoint=endpoint, since=since, audit=entry)
        except Exception:
            log.exception("replay_on_recovery_failed", agency=agency, endpoint=endpoint)
            return
        if n:
            log.info("dead_letters_replayed", agency=agency, endpoint=endpoint, jobs=n)
            self.wake(agency)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for deliveries in flight (graceful shutdown); those still running after `timeout` are
        cancelled: their jobs stay leased, and are delivered again after a restart or once the lease expires.
        Jobs claimed ahead and not started go back to the queue."""
        self._stopping = True
        ahead = [job.id for ready in self._ready.values() for _, job in ready]
        self._ready.clear()
        if ahead:
            await self._give_back(ahead)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            if late:
                log.warning("deliveries_cancelled_at_shutdown", jobs=len(late))
                await cancel_and_wait(late, what="deliveries")


async def poll_agency(
    store: Store,
    agency: str,
    connector: Connector,
    interval: float,
    gate: Gate | None = None,
    max_delay: float = 300.0,
    metrics: Metrics | None = None,
) -> None:
    """For agencies that do not call back: ask them for news on a timer.

    The poller shares its endpoint's breaker with the deliveries: it asks nothing while the endpoint is
    held (a window, a pause) or its breaker is open, and one of its polls may be the probe. An outage is
    told by the breaker, one line when the endpoint goes down and one when it is back; any other failure
    (a refusal, a plugin bug) is logged at the first of a run and when the run ends, and each failure
    lengthens the wait before the next poll (doubling, up to `max_delay`).
    """
    endpoint = connector.ctx.endpoint
    gate = gate or Gate([(agency, endpoint)], Breakers(BreakerSettings()), Holds())
    failures = 0  # in a row
    logged = False  # the run of failures was logged: its end is too
    while True:
        decision = gate.acquire(agency, endpoint)
        if decision in ("hold", "wait"):
            await asyncio.sleep(interval)
            continue
        probe = decision == "probe"
        try:
            outcome = await apply_polled(store, agency, endpoint, await connector.poll(), metrics)
            await connector.acknowledge(outcome)
        except asyncio.CancelledError:
            if probe:
                gate.breakers.drop_probe(agency, endpoint)
            raise
        except StorageUnavailable:
            # Not the agency's fault: the store logs the episode, and what was not settled comes back.
            if probe:
                gate.breakers.drop_probe(agency, endpoint)
            await asyncio.sleep(interval)
            continue
        except Exception as exc:
            failures += 1
            if is_retryable(exc):
                assert isinstance(exc, AgencyError)
                gate.breakers.failed(agency, endpoint, str(exc), retry_after=exc.retry_after, probe=probe)
                log.debug("poll_failed", agency=agency, endpoint=endpoint, error=str(exc))
                if gate.breakers.get(agency, endpoint).state == "open":
                    await asyncio.sleep(interval)  # the breaker says when to try again
                    continue
            else:
                if isinstance(exc, AgencyError):
                    gate.breakers.succeeded(agency, endpoint, probe=probe)  # it answered: it is up
                elif probe:
                    gate.breakers.drop_probe(agency, endpoint)
                if not logged:
                    if isinstance(exc, AgencyError):
                        log.error("poll_refused", agency=agency, endpoint=endpoint, error=str(exc))
                    else:
                        log.exception("poll_failed", agency=agency, endpoint=endpoint)
                    logged = True
            await asyncio.sleep(min(interval * 2 ** min(failures, 20), max(max_delay, interval)))
            continue
        gate.breakers.succeeded(agency, endpoint, probe=probe)
        if logged:
            log.info("poll_recovered", agency=agency, endpoint=endpoint, failures=failures)
        failures, logged = 0, False
        await asyncio.sleep(interval)


# Why an update that can never apply was refused, as PollOutcome.refused tells the connector.
_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (WrongAgency, "wrong-agency"),
    (InvalidResult, "invalid-result"),
    (IllegalTransition, "illegal-transition"),
    (LookupError, "unknown-dossier"),
)


async def apply_polled(
    store: Store, agency: str, endpoint: str, updates: Sequence[AgencyUpdate], metrics: Metrics | None = None
) -> PollOutcome:
    """Apply each update on its own, so one bad update never hides the others.

    The updates come from one endpoint of the agency (an office's folder, for land): each may touch only
    dossiers routed to it. An update that can never apply (a dossier this gateway does not know, one
    routed to another agency or office, a result document that does not hold what it declares, a
    transition the state machine refuses) is logged and settled as refused with its reason, and a
    refusal to touch another's dossier is audited. Any other failure leaves it unsettled, and so are
    later updates of the same dossier (their order matters): the connector hands them over again.
    """
    source = UpdateSource.of_agency(agency, endpoint)
    applied: set[str] = set()
    refused: dict[str, str] = {}
    held: set[str] = set()  # dossiers with an unsettled update
    denied: list[AuditEntry] = []
    for update in updates:
        dossier = str(update.dossier_id or update.dossier_code)
        if dossier in held:
            continue
        try:
            applied_now = await store.apply_update(update, source=source)
            if metrics is not None:
                await metrics.finished(store, [applied_now])
        except (WrongAgency, InvalidResult, IllegalTransition, LookupError) as exc:
            reason = next(r for kind, r in _REFUSALS if isinstance(exc, kind))
            log.error(
                "update_refused",
                agency=agency,
                endpoint=endpoint,
                event_id=update.event_id,
                dossier=dossier,
                reason=reason,
                error=str(exc),
            )
            refused[update.event_id] = reason
            if isinstance(exc, WrongAgency | InvalidResult):
                denied.append(_refusal(source, update, reason, exc))
        except StorageUnavailable:
            held.add(dossier)  # the store logs the episode
        except Exception:
            log.exception("update_failed", agency=agency, event_id=update.event_id, dossier=dossier)
            held.add(dossier)
        else:
            applied.add(update.event_id)
    if denied:
        # Written before the connector hears of the refusal (and quarantines the file): if this fails, the
        # updates are not settled and come back on the next poll, to be refused and audited then.
        try:
            await store.audit(denied)
        except Exception as exc:
            if not isinstance(exc, StorageUnavailable):
                log.exception("audit_failed", agency=agency, endpoint=endpoint)
            refused = {e: r for e, r in refused.items() if r not in ("wrong-agency", "invalid-result")}
    return PollOutcome(frozenset(applied), refused)


def _refusal(source: UpdateSource, update: AgencyUpdate, reason: str, exc: Exception) -> AuditEntry:
    return AuditEntry(
        client_id=source.actor,
        action="agency-update",
        outcome="denied",
        basis=reason,
        dossier_id=exc.dossier_id if isinstance(exc, WrongAgency) else str(update.dossier_id or "") or None,
        detail={
            "endpoint": source.endpoint,
            "event_id": update.event_id,
            "status": int(update.status),
            "dossier_ref": str(update.dossier_id or update.dossier_code),
        },
    )


async def sweep_deadlines(store: Store, interval: float, wake: Callable[[], None] | None = None) -> None:
    """Refuse the dossiers whose applicant did not bring the documents asked for in time; `wake` starts
    the deliveries that tell their agencies."""
    while True:
        try:
            expired = await store.expire_supplements(datetime.now(UTC))
            for did in expired:
                log.info("supplement_deadline_passed", dossier_id=str(did), status=3)
            if expired and wake is not None:
                wake()
        except asyncio.CancelledError:
            raise
        except StorageUnavailable:
            pass  # logged once, by the store; the next sweep catches up
        except Exception:
            log.exception("deadline_sweep_failed")
        await asyncio.sleep(interval)
