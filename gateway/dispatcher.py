"""Delivers outbox jobs to agencies: leases, a concurrency limit per agency, backoff with jitter, dead letters.

Delivery is at-least-once; every attempt carries the job's stable idempotency key, so the agency
de-duplicates and the citizen sees the effect once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog
import tenacity

from gateway.config.model import DispatcherSettings
from gateway.connector import AgencyUpdate, Connector, Delivery, PollOutcome
from gateway.errors import AgencyError, IllegalTransition, is_retryable
from gateway.store.base import JobRecord, Store
from gateway.tasks import cancel_and_wait

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


class Dispatcher:
    def __init__(
        self,
        store: Store,
        connectors: dict[tuple[str, str], Connector],
        concurrency: dict[str, int],
        settings: DispatcherSettings,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.concurrency = concurrency
        self.settings = settings
        self.backoff = Backoff(settings)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.in_flight: dict[str, int] = dict.fromkeys(concurrency, 0)
        self._wake = asyncio.Event()
        self._woken: set[str] = set(concurrency)  # agencies that may have ready jobs: all, at first
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0

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
            # Cleared before the claim: a wake that arrives while it runs is not lost.
            self._wake.clear()
            woken, self._woken = self._woken, set()
            if loop.time() >= next_scan:  # retries come due with time: every agency, once per poll interval
                woken = set(self.concurrency)
                next_scan = loop.time() + self.settings.poll_interval
            # Only agencies with news and free slots are asked: a submission for one agency, or a
            # delivery ending, costs no query for the others.
            free = {a: self.concurrency[a] - n for a, n in self.in_flight.items() if a in woken}
            jobs: list[JobRecord] = []
            if any(v > 0 for v in free.values()):
                try:
                    jobs = await self.store.claim_jobs(self.owner, free, self.settings.lease_seconds)
                except Exception:
                    log.exception("claim_failed")
                    self._woken |= woken
            for job in jobs:
                self.in_flight[job.agency] += 1
                self._woken.add(job.agency)  # it may have more ready: ask again right away
                task = asyncio.create_task(self._deliver(job), name=f"deliver-{job.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not jobs:
                # asyncio.timeout_at, not wait_for: 3.11's wait_for can swallow the cancellation that stops us.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(next_scan):
                        await self._wake.wait()

    async def _deliver(self, job: JobRecord) -> None:
        # Each delivery runs in its own task, so these bindings reach its outbound log line only.
        structlog.contextvars.bind_contextvars(correlation_id=f"job-{job.id}", dossier_id=str(job.dossier_id))
        started = time.perf_counter()
        released = False

        def release_slot() -> None:
            # The slot limits calls to the agency: once it has answered, the next delivery may start
            # while this one is recorded (its job stays leased until then, so nobody else takes it).
            nonlocal released
            if not released:
                released = True
                self.in_flight[job.agency] -= 1
                self.wake(job.agency)

        try:
            dossier = job.dossier or await self.store.get_dossier(str(job.dossier_id))
            if dossier is None:
                raise LookupError(f"job {job.id} names a missing dossier")
            connector = self.connectors[(job.agency, job.endpoint)]
            delivery = Delivery(job.idempotency_key, job.attempts, job.step, job.inputs)
            if job.step.startswith("supplement"):
                receipt = await connector.supplement(dossier, delivery)
            elif job.step == "withdraw":
                receipt = await connector.withdraw(dossier, delivery)
            else:
                receipt = await connector.submit(dossier, delivery)
            release_slot()
            await self.store.complete_job(job.id, self.owner, receipt, actor=f"agency:{job.agency}")
            self.delivered += 1
            log.info(
                "delivered",
                job=job.id,
                dossier=dossier.code,
                agency=job.agency,
                attempt=job.attempts,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            release_slot()
            await self._failed(job, exc)
        finally:
            release_slot()

    async def _failed(self, job: JobRecord, exc: Exception) -> None:
        self.failed += 1
        if isinstance(exc, AgencyError):
            retry = is_retryable(exc) and job.attempts < self.settings.max_attempts
            reason = f"{type(exc).__name__}: {exc}"
        else:
            # A plugin bug (or a passing fault it did not map) is retried a few times as transient, then
            # dead-lettered for replay once fixed; it never fails the gateway. Its text may hold anything
            # (a personal id, a stack detail): the log keeps it with the traceback, the job a generic line.
            retry = job.attempts < min(PLUGIN_ERROR_ATTEMPTS, self.settings.max_attempts)
            reason = plugin_error_reason(exc, job.id)
            log.exception("plugin_error", job=job.id, agency=job.agency, attempt=job.attempts, retry=retry)
        retry_at = time.time() + self.backoff.delay(job.attempts) if retry else None
        log.warning(
            "delivery_failed",
            job=job.id,
            agency=job.agency,
            attempt=job.attempts,
            error=reason,
            retry_in=round(retry_at - time.time(), 2) if retry_at else None,
            dead=retry_at is None,
        )
        try:
            await self.store.fail_job(job.id, self.owner, reason, retry_at)
        except Exception:
            log.exception("fail_job_failed", job=job.id)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for deliveries in flight (graceful shutdown); those still running after `timeout` are
        cancelled: their jobs stay leased, and are delivered again after a restart or once the lease expires."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            if late:
                log.warning("deliveries_cancelled_at_shutdown", jobs=len(late))
                await cancel_and_wait(late, what="deliveries")


async def poll_agency(store: Store, agency: str, connector: Connector, interval: float) -> None:
    """For agencies that do not call back: ask them for news on a timer."""
    while True:
        try:
            outcome = await apply_polled(store, agency, await connector.poll())
            await connector.acknowledge(outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("poll_failed", agency=agency)
        await asyncio.sleep(interval)


async def apply_polled(store: Store, agency: str, updates: Sequence[AgencyUpdate]) -> PollOutcome:
    """Apply each update on its own, so one bad update never hides the others.

    An update that can never apply (a dossier this gateway does not know, a transition the state
    machine refuses) is logged and settled as refused. Any other failure leaves it unsettled, and so
    are later updates of the same dossier (their order matters): the connector hands them over again.
    """
    applied: set[str] = set()
    refused: dict[str, str] = {}
    held: set[str] = set()  # dossiers with an unsettled update
    for update in updates:
        dossier = str(update.dossier_id or update.dossier_code)
        if dossier in held:
            continue
        try:
            await store.apply_update(update, actor=f"agency:{agency}")
        except LookupError:
            log.warning("update_for_unknown_dossier", agency=agency, event_id=update.event_id, dossier=dossier)
            refused[update.event_id] = "unknown-dossier"
        except IllegalTransition as exc:
            log.error("update_refused", agency=agency, event_id=update.event_id, dossier=dossier, error=str(exc))
            refused[update.event_id] = "illegal-transition"
        except Exception:
            log.exception("update_failed", agency=agency, event_id=update.event_id, dossier=dossier)
            held.add(dossier)
        else:
            applied.add(update.event_id)
    return PollOutcome(frozenset(applied), refused)


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
        except Exception:
            log.exception("deadline_sweep_failed")
        await asyncio.sleep(interval)
