"""Whether a call may go to an agency endpoint now: its breaker (gateway/breaker.py), its maintenance
windows and its pauses (gateway/maintenance.py). The dispatcher plans its claims with it, pollers ask it
before each poll, and operators see its state (admin API, dashboard, metrics).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from gateway.breaker import Breakers, Endpoint
from gateway.maintenance import Hold, Holds
from gateway.store.base import Store

log = structlog.get_logger("lienthong.gate")

Decision = Literal["call", "probe", "hold", "wait"]  # hold: a window or a pause; wait: an open breaker


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """What the dispatcher may claim: agencies with free slots, and for the agencies where some endpoint
    may not be called, the endpoints that may and how many jobs each (a probe: 1)."""

    free: dict[str, int]
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    probes: frozenset[Endpoint] = frozenset()


class Gate:
    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        breakers: Breakers,
        holds: Holds,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.by_agency: dict[str, list[str]] = {}
        for agency, endpoint in endpoints:
            self.by_agency.setdefault(agency, []).append(endpoint)
        self.breakers = breakers
        self.holds = holds
        self._clock = clock
        self.held_jobs: dict[Endpoint, int] = {}  # counted by `refresh` for the blocked endpoints
        self._holds_seen: dict[Endpoint, tuple[str, float] | None] = {}

    @property
    def endpoints(self) -> list[Endpoint]:
        return [(a, e) for a, eps in self.by_agency.items() for e in eps]

    def decide(self, agency: str, endpoint: str, now: float | None = None) -> Decision:
        now = self._clock() if now is None else now
        if self.holds.hold(agency, endpoint, now) is not None:
            return "hold"
        return self.breakers.permit(agency, endpoint, now)

    def acquire(self, agency: str, endpoint: str, now: float | None = None) -> Decision:
        """`decide`, taking the probe when it is this caller's to make ("probe" means: you have it)."""
        now = self._clock() if now is None else now
        decision = self.decide(agency, endpoint, now)
        if decision == "probe" and not self.breakers.take_probe(agency, endpoint, now):
            return "wait"
        return decision

    def plan(self, free: Mapping[str, int]) -> ClaimPlan:
        """The claim for these agencies' free slots. Probes it names are taken: the caller gives back
        (`breakers.drop_probe`) those it found no job for."""
        now = self._clock()
        out: dict[str, int] = {}
        restricted: dict[str, dict[str, int]] = {}
        probes: set[Endpoint] = set()
        for agency, n in free.items():
            if n <= 0:
                continue
            endpoints = self.by_agency.get(agency)
            if not endpoints:
                out[agency] = n
                continue
            caps: dict[str, int] = {}
            for endpoint in endpoints:
                decision = self.acquire(agency, endpoint, now)
                if decision == "call":
                    caps[endpoint] = n
                elif decision == "probe":
                    caps[endpoint] = 1
                    probes.add((agency, endpoint))
            if caps:
                out[agency] = n
                if len(caps) < len(endpoints) or any(c < n for c in caps.values()):
                    restricted[agency] = caps
        return ClaimPlan(out, restricted, frozenset(probes))

    def next_change(self, now: float) -> float | None:
        """The next time (after `now`) a probe comes due or a hold starts or ends."""
        times = [t for t in (self.breakers.next_probe(now), self.holds.next_change(now)) if t is not None]
        return min(times, default=None)

    # -- pauses taken elsewhere, held jobs ---------------------------------------------------------------

    async def refresh(self, store: Store) -> bool:
        """Read the pauses again (another process or the CLI may have changed them) and count the jobs held
        at blocked endpoints; True when the pauses changed."""
        changed = self.holds.set_pauses(await store.pauses())
        now = self._clock()
        self.note_holds(now)
        blocked = [ep for ep in self.endpoints if self.decide(*ep, now) != "call"]
        if blocked:
            pending = await store.pending_by_endpoint()
            self.held_jobs = {ep: pending.get(ep, 0) for ep in blocked}
        else:
            self.held_jobs = {}
        return changed

    def note_holds(self, now: float | None = None) -> None:
        """One log line when an endpoint becomes held (a window starts, a pause is taken) and one when it is
        released; called on every refresh, and at once by whoever pauses or resumes."""
        now = self._clock() if now is None else now
        for agency, endpoint in self.endpoints:
            hold = self.holds.hold(agency, endpoint, now)
            seen = (hold.kind, hold.until) if hold is not None else None
            before = self._holds_seen.get((agency, endpoint))
            if seen == before:
                continue
            self._holds_seen[(agency, endpoint)] = seen
            if hold is not None:
                log.info(
                    "endpoint_held",
                    agency=agency,
                    endpoint=endpoint,
                    hold=hold.kind,
                    until=_iso(hold.until),
                    reason=hold.reason,
                    by=hold.by,
                )
            elif before is not None:
                log.info("endpoint_released", agency=agency, endpoint=endpoint, hold=before[0])

    async def watch(self, store: Store, interval: float, wake: Callable[[], None]) -> None:
        """`refresh` every `interval` seconds; `wake` the dispatcher when the pauses changed."""
        failing = False
        while True:
            try:
                if await self.refresh(store):
                    wake()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:  # once, not every interval
                    log.warning("hold_refresh_failed", exc_info=True)
                failing = True
            await asyncio.sleep(interval)

    # -- what operators see ------------------------------------------------------------------------------

    def state(self, agency: str, endpoint: str, now: float | None = None) -> dict[str, Any]:
        """An endpoint's state: closed, open (since, next probe), maintenance or paused (until, reason)."""
        now = self._clock() if now is None else now
        hold: Hold | None = self.holds.hold(agency, endpoint, now)
        b = self.breakers.get(agency, endpoint)
        state = hold.kind if hold is not None else ("closed" if b.state == "closed" else "open")
        upcoming = self.holds.schedule.upcoming(agency, endpoint, now)
        return {
            "agency": agency,
            "endpoint": endpoint,
            "state": {"window": "maintenance", "pause": "paused"}.get(state, state),
            "breaker": b.state,
            "open_since": _iso(b.opened_at),
            "next_probe_at": _iso(b.next_probe_at),
            "probing": b.probing,
            "failures": b.failures,
            "last_error": b.last_error if b.state == "open" else None,
            "paused_until": _iso(hold.until) if hold is not None else None,
            "reason": hold.reason if hold is not None else None,
            "paused_by": hold.by if hold is not None else None,
            "next_window": (
                {"start": _iso(upcoming[0]), "end": _iso(upcoming[1]), "reason": upcoming[2]} if upcoming else None
            ),
        }

    def readings(self) -> list[tuple[str, str, str, bool, int, bool, int]]:
        """For /metrics, from memory (no table is read): per endpoint its breaker's state, whether it is
        open, its openings, whether it is held, and its held jobs."""
        now = self._clock()
        out: list[tuple[str, str, str, bool, int, bool, int]] = []
        for agency, endpoint in self.endpoints:
            b = self.breakers.get(agency, endpoint)
            held = self.holds.hold(agency, endpoint, now) is not None
            out.append(
                (
                    agency,
                    endpoint,
                    b.state,
                    b.state == "open",
                    b.openings,
                    held,
                    self.held_jobs.get((agency, endpoint), 0),
                )
            )
        return out


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()
