"""Circuit breakers, one per agency endpoint, in the memory of each gateway process.

Closed: calls go. After `failures` consecutive transient failures (timeouts, refused connections, 5xx,
garbled answers), or at once when the agency answers with `Retry-After`, the endpoint opens: the
dispatcher claims none of its jobs (they stay pending, their attempts unspent) and its poller stops
asking. When the probe is due one call goes: a delivery, or a poll. If it succeeds (or the agency
answers at all, even with a refusal) the breaker closes and the backlog goes at the agency's
concurrency; if it fails, the next probe waits longer: from `probe_after`, doubling up to `probe_max`,
each wait lengthened at random by up to `probe_jitter` (processes that learnt together do not probe
together), or as long as the agency's `Retry-After` says. While open, only the probe's outcome counts:
a late answer to a call sent before the opening says little about now.

So a dead agency receives, per endpoint and process, the calls in flight when the breaker opened (at
most `failures` + the agency's concurrency - 1), then one call per probe.

Written here rather than taken from a library (pybreaker, aiobreaker, purgatory): those wrap a call
and raise while open, whereas the dispatcher must know before it claims a job whether that job's
endpoint may be called, and one breaker is shared by the deliveries and the poller of an endpoint.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from gateway.config.model import BreakerSettings

log = structlog.get_logger("lienthong.breaker")

Permit = Literal["call", "probe", "wait"]
Endpoint = tuple[str, str]  # (agency, endpoint)


@dataclass
class Breaker:
    agency: str
    endpoint: str
    state: Literal["closed", "open"] = "closed"
    failures: int = 0  # consecutive transient failures
    failing_since: float | None = None  # the first of them: when the outage began, for the replay on recovery
    opened_at: float | None = None
    next_probe_at: float | None = None
    probes: int = 0  # probes failed since it opened
    probing: bool = False  # a probe is out
    last_error: str | None = None
    openings: int = 0  # since the process started, for metrics


class Breakers:
    """Every endpoint's breaker; `on_close` listeners hear of each recovery (with when the outage began)."""

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._rng = rng
        self._by: dict[Endpoint, Breaker] = {}
        self.on_close: list[Callable[[Breaker, float], None]] = []

    def get(self, agency: str, endpoint: str) -> Breaker:
        b = self._by.get((agency, endpoint))
        if b is None:
            b = self._by[(agency, endpoint)] = Breaker(agency, endpoint)
        return b

    def all(self) -> list[Breaker]:
        return list(self._by.values())

    # -- asking ----------------------------------------------------------------------------------------

    def permit(self, agency: str, endpoint: str, now: float | None = None) -> Permit:
        b = self._by.get((agency, endpoint))
        if b is None or b.state == "closed":
            return "call"
        assert b.next_probe_at is not None
        if b.probing or (now if now is not None else self._clock()) < b.next_probe_at:
            return "wait"
        return "probe"

    def take_probe(self, agency: str, endpoint: str, now: float | None = None) -> bool:
        """Take the endpoint's one probe if it is due and nobody has it."""
        if self.permit(agency, endpoint, now) != "probe":
            return False
        self.get(agency, endpoint).probing = True
        return True

    def drop_probe(self, agency: str, endpoint: str) -> None:
        """The probe taken was not made (nothing to send, or the endpoint became held): the next caller may."""
        self.get(agency, endpoint).probing = False

    def next_probe(self, now: float) -> float | None:
        """The next time a probe comes due (after `now`), when someone must look again."""
        due = [
            b.next_probe_at
            for b in self._by.values()
            if b.state == "open" and not b.probing and b.next_probe_at is not None and b.next_probe_at > now
        ]
        return min(due, default=None)

    # -- telling ---------------------------------------------------------------------------------------

    def succeeded(self, agency: str, endpoint: str, *, probe: bool = False) -> None:
        """The endpoint answered (a success, or a refusal: it is up)."""
        b = self.get(agency, endpoint)
        if b.state == "closed":
            b.failures, b.failing_since = 0, None
        elif probe:
            self._close(b)

    def failed(
        self, agency: str, endpoint: str, error: str, *, retry_after: float | None = None, probe: bool = False
    ) -> None:
        """A transient failure; `retry_after`: the seconds the agency asked us to wait."""
        now = self._clock()
        b = self.get(agency, endpoint)
        b.last_error = error
        if b.state == "closed":
            b.failures += 1
            if b.failing_since is None:
                b.failing_since = now
            if retry_after is not None or (self.settings.failures and b.failures >= self.settings.failures):
                self._open(b, now, retry_after)
        elif probe:
            b.probing = False
            b.probes += 1
            b.next_probe_at = now + self._wait(b.probes, retry_after)
            log.debug("probe_failed", agency=agency, endpoint=endpoint, error=error, next_in=b.next_probe_at - now)
        elif retry_after is not None:
            # A late answer to a call sent before the opening: the agency's word is kept all the same.
            assert b.next_probe_at is not None
            b.next_probe_at = max(b.next_probe_at, now + self._wait(b.probes, retry_after))

    def _wait(self, probes: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(max(retry_after, 0.0), s.retry_after_max)
        doubled: float = s.probe_after * 2.0 ** min(probes, 32)
        return min(doubled, s.probe_max) * (1 + s.probe_jitter * self._rng())

    def _open(self, b: Breaker, now: float, retry_after: float | None) -> None:
        b.state, b.opened_at, b.probes, b.probing = "open", now, 0, False
        b.next_probe_at = now + self._wait(0, retry_after)
        b.openings += 1
        log.warning(
            "endpoint_down",
            agency=b.agency,
            endpoint=b.endpoint,
            failures=b.failures,
            error=b.last_error,
            retry_after=retry_after,
            probe_in=round(b.next_probe_at - now, 2),
        )

    def _close(self, b: Breaker) -> None:
        now = self._clock()
        assert b.opened_at is not None
        began = b.failing_since if b.failing_since is not None else b.opened_at
        log.info("endpoint_up", agency=b.agency, endpoint=b.endpoint, down_s=round(now - began, 1), probes=b.probes + 1)
        b.state, b.failures, b.failing_since, b.opened_at = "closed", 0, None, None
        b.next_probe_at, b.probes, b.probing = None, 0, False
        for listener in self.on_close:
            listener(b, began)
