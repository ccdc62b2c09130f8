"""Prometheus metrics by convention (prometheus-client): HELP and TYPE on every family, `_seconds`
histograms, `_total` counters, process metrics, build info; one registry per application.

Histograms and counters are updated where things happen (the request middleware, the dispatcher).
What is a state rather than an event (open jobs, breakers, holds, the portal pusher) is read at scrape
time by `StateCollector` from memory, and the open jobs from the store through an index of open jobs
only, at most once every `OPEN_JOBS_TTL` seconds: a scrape never scans the outbox or the dossiers.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.store.base import Store, UpdateOutcome

FINISHED = 9  # DossierStatus.FINISHED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPEN_JOBS_TTL = 2.0  # seconds a reading of the open jobs serves scrapes (several Prometheus servers scrape)
# Inbound requests: most answer in milliseconds; uploads and slow clients take seconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Agencies' answers: tens of milliseconds to the lease (60 s by default).
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From acceptance to delivery: seconds, or days when an agency is down.
# From acceptance to the result: hours to weeks (processing days are working days).
FINISH_BUCKETS = (3600.0, 4 * 3600.0, 86400.0, 2 * 86400.0, 5 * 86400.0, 10 * 86400.0, 20 * 86400.0, 40 * 86400.0)
DELAY_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def operation_of(step: str) -> str:
    """A job's step as a bounded label: supplement steps carry their number (supplement-3)."""
    return "supplement" if step.startswith("supplement") else step


@dataclass
class Readings:
    """What the state collector shows; the application fills in the callables once its parts exist."""

    open_jobs: dict[tuple[str, str, str], int] = field(default_factory=dict)
    open_jobs_at: float = float("-inf")
    gate: Callable[[], Iterable[tuple[str, str, str, bool, int, bool, int]]] | None = None
    dispatcher: Callable[[], tuple[int, int, int]] | None = None  # delivered, failed, reclaimed
    in_flight: Callable[[], dict[str, int]] | None = None
    claimed_ahead: Callable[[], dict[str, int]] | None = None
    portal: Callable[[], tuple[int, int, float]] | None = None  # pushed, failures, lag seconds
    store: Callable[[], tuple[int, int]] | None = None  # commits, writes


@dataclass
class Snapshot:
    """The readings' values at one instant, taken on the event loop (the exposition is rendered in a
    thread: the process collector reads /proc, a blocking read)."""

    open_jobs: dict[tuple[str, str, str], int]
    gate: list[tuple[str, str, str, bool, int, bool, int]] | None
    dispatcher: tuple[int, int, int] | None
    in_flight: dict[str, int] | None
    portal: tuple[int, int, float] | None
    store: tuple[int, int] | None = None
    claimed_ahead: dict[str, int] | None = None

    @classmethod
    def of(cls, r: Readings) -> Snapshot:
        return cls(
            dict(r.open_jobs),
            list(r.gate()) if r.gate else None,
            r.dispatcher() if r.dispatcher else None,
            dict(r.in_flight()) if r.in_flight else None,
            r.portal() if r.portal else None,
            r.store() if r.store else None,
            dict(r.claimed_ahead()) if r.claimed_ahead else None,
        )


class StateCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot({}, None, None, None, None)

    def collect(self) -> Iterator[Metric]:
        r = self.snapshot
        jobs = GaugeMetricFamily(
            "lienthong_jobs",
            "Deliveries not finished, by agency, endpoint and state (waiting, pending, leased, dead).",
            labels=["agency", "endpoint", "state"],
        )
        for (agency, endpoint, state), n in sorted(r.open_jobs.items()):
            jobs.add_metric([agency, endpoint, state], n)
        yield jobs
        if r.gate is not None:
            open_ = GaugeMetricFamily(
                "lienthong_endpoint_breaker_open",
                "1 while the circuit breaker of an agency endpoint is open.",
                labels=["agency", "endpoint"],
            )
            openings = CounterMetricFamily(
                "lienthong_endpoint_breaker_openings",
                "Times the circuit breaker of an agency endpoint opened since start.",
                labels=["agency", "endpoint"],
            )
            held = GaugeMetricFamily(
                "lienthong_endpoint_held",
                "1 while an agency endpoint is held by a pause or a maintenance window.",
                labels=["agency", "endpoint"],
            )
            held_jobs = GaugeMetricFamily(
                "lienthong_endpoint_held_jobs",
                "Jobs ready but held back (open breaker, pause, window), by agency endpoint.",
                labels=["agency", "endpoint"],
            )
            for agency, endpoint, _state, is_open, n_openings, is_held, n_held in r.gate:
                open_.add_metric([agency, endpoint], 1.0 if is_open else 0.0)
                openings.add_metric([agency, endpoint], n_openings)
                held.add_metric([agency, endpoint], 1.0 if is_held else 0.0)
                held_jobs.add_metric([agency, endpoint], n_held)
            yield from (open_, openings, held, held_jobs)
        if r.dispatcher is not None:
            delivered, failed, reclaimed = r.dispatcher
            yield CounterMetricFamily("lienthong_deliveries", "Deliveries the agencies took since start.", delivered)
            yield CounterMetricFamily(
                "lienthong_delivery_failures", "Delivery attempts that failed since start (retried or dead).", failed
            )
            yield CounterMetricFamily(
                "lienthong_leases_reclaimed", "Jobs taken back from an expired lease since start.", reclaimed
            )
        if r.in_flight is not None:
            flight = GaugeMetricFamily(
                "lienthong_deliveries_in_flight", "Agency calls under way, by agency.", labels=["agency"]
            )
            for agency, n in sorted(r.in_flight.items()):
                flight.add_metric([agency], n)
            yield flight
        if r.claimed_ahead is not None:
            ahead = GaugeMetricFamily(
                "lienthong_deliveries_claimed_ahead",
                "Jobs claimed and waiting for a free slot of their agency (dispatcher.claim_ahead).",
                labels=["agency"],
            )
            for agency, n in sorted(r.claimed_ahead.items()):
                ahead.add_metric([agency], n)
            yield ahead
        if r.store is not None:
            commits, writes = r.store
            yield CounterMetricFamily(
                "lienthong_store_commits", "Commits of the store's writer since start (each one fsync).", commits
            )
            yield CounterMetricFamily(
                "lienthong_store_writes",
                "Writes those commits held since start; writes / commits is the group commit's batch size.",
                writes,
            )
        if r.portal is not None:
            pushed, failures, lag = r.portal
            yield CounterMetricFamily(
                "lienthong_portal_pushed", "Feed items the portal acknowledged since start.", pushed
            )
            yield CounterMetricFamily(
                "lienthong_portal_push_failures", "Failed pushes to the portal since start.", failures
            )
            yield GaugeMetricFamily(
                "lienthong_portal_push_lag_seconds",
                "Seconds since the portal pusher was last caught up with the feed (0 while it is).",
                lag,
            )


class Metrics:
    """One application's metrics; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        Info("lienthong_build", "The gateway's version.", registry=reg).info(
            {"version": __version__, "python": platform.python_version()}
        )
        self.requests = Counter(
            "lienthong_http_requests",
            "Requests answered, by route template, method, status and client.",
            ["route", "method", "status", "client"],
            registry=reg,
        )
        self.request_seconds = Histogram(
            "lienthong_http_request_duration_seconds",
            "Time to answer a request, by route template, method and status class.",
            ["route", "method", "status_class"],
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.call_seconds = Histogram(
            "lienthong_agency_call_duration_seconds",
            "Time of a call to an agency, by agency, endpoint, operation and outcome "
            "(ok, refused, transient, timeout, error).",
            ["agency", "endpoint", "operation", "outcome"],
            buckets=CALL_BUCKETS,
            registry=reg,
        )
        self.delivery_delay = Histogram(
            "lienthong_dossier_delivery_delay_seconds",
            "Time from a dossier's acceptance to the agency taking its first delivery, by agency.",
            ["agency"],
            buckets=DELAY_BUCKETS,
            registry=reg,
        )
        self.finish_seconds = Histogram(
            "lienthong_dossier_finish_seconds",
            "Time from a dossier's acceptance to its result (status 9, finished), by agency.",
            ["agency"],
            buckets=FINISH_BUCKETS,
            registry=reg,
        )
        self.readings = Readings()
        # Label sets are bounded: routes are templates, clients and agencies come from the configuration.
        self._request_children: dict[tuple[str, str, int, str | None], tuple[Any, Any]] = {}
        self._call_children: dict[tuple[str, str, str, str], Any] = {}
        self._state = StateCollector()
        reg.register(self._state)

    def observe(self, route: str, method: str, status: int, client: str | None, seconds: float) -> None:
        # The children of each label set, looked up once: `labels()` checks and locks on every call.
        key = (route, method, status, client)
        pair = self._request_children.get(key)
        if pair is None:
            pair = self._request_children[key] = (
                self.requests.labels(route, method, str(status), client or ""),
                self.request_seconds.labels(route, method, status_class(status)),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def agency_call(self, agency: str, endpoint: str, step: str, outcome: str, seconds: float) -> None:
        key = (agency, endpoint, step, outcome)
        child = self._call_children.get(key)
        if child is None:
            child = self._call_children[key] = self.call_seconds.labels(agency, endpoint, operation_of(step), outcome)
        child.observe(seconds)

    async def finished(self, store: Store, outcomes: Iterable[UpdateOutcome]) -> None:
        """Observe acceptance-to-result for the updates that just finished a dossier: from what the update's
        transaction read (one read each only for an outcome without it). Never raises: the update is
        applied, and a metric must not make it look otherwise."""
        for outcome in outcomes:
            if not (outcome.applied and outcome.status == FINISHED and outcome.dossier_id is not None):
                continue
            agency, received = outcome.agency, outcome.received_at
            if agency is None or received is None:
                try:
                    dossier = await store.get_dossier(str(outcome.dossier_id))
                except Exception:  # a store fault is logged by the store; the histogram misses one
                    continue
                if dossier is None:
                    continue
                agency, received = dossier.agency, dossier.received_at.isoformat()
            try:
                seconds = time.time() - datetime.fromisoformat(received).timestamp()
            except ValueError:
                continue
            self.finish_seconds.labels(agency).observe(max(seconds, 0.0))

    def open_jobs_stale(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self.readings.open_jobs_at >= OPEN_JOBS_TTL

    def set_open_jobs(self, counts: dict[tuple[str, str, str], int], now: float | None = None) -> None:
        self.readings.open_jobs = counts
        self.readings.open_jobs_at = time.monotonic() if now is None else now

    def render(self) -> bytes:
        """The exposition, in the calling thread (not on the event loop: see render_async)."""
        self._state.snapshot = Snapshot.of(self.readings)
        return generate_latest(self.registry)

    async def render_async(self) -> bytes:
        self._state.snapshot = Snapshot.of(self.readings)
        return await asyncio.to_thread(generate_latest, self.registry)
