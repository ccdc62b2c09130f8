"""The gate: which endpoints the dispatcher may claim for, what operators and metrics see of them."""

from __future__ import annotations

from datetime import UTC, datetime

from structlog.testing import capture_logs

from gateway.breaker import Breakers
from gateway.config.model import BreakerSettings
from gateway.gate import ClaimPlan, Gate
from gateway.maintenance import Holds
from gateway.store.base import Pause

ENDPOINTS = [("police", "national"), ("land", "hanoi"), ("land", "hcm"), ("land", "danang")]


class Clock:
    now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


def gate() -> tuple[Gate, Clock]:
    clock = Clock()
    breakers = Breakers(BreakerSettings(failures=2, probe_after=5, probe_max=30), clock=clock, rng=lambda: 0.0)
    return Gate(ENDPOINTS, breakers, Holds(), clock=clock), clock


def open_breaker(g: Gate, agency: str, endpoint: str) -> None:
    for _ in range(2):
        g.breakers.failed(agency, endpoint, "503")


def test_nothing_wrong_nothing_restricted() -> None:
    g, _ = gate()
    assert g.plan({"police": 16, "land": 8}) == ClaimPlan({"police": 16, "land": 8})


def test_an_open_endpoint_is_left_out_and_probed_when_due() -> None:
    g, clock = gate()
    open_breaker(g, "land", "hanoi")
    assert g.plan({"land": 8}) == ClaimPlan({"land": 8}, {"land": {"hcm": 8, "danang": 8}})
    clock.now += 5
    plan = g.plan({"land": 8})
    assert plan == ClaimPlan({"land": 8}, {"land": {"hanoi": 1, "hcm": 8, "danang": 8}}, frozenset({("land", "hanoi")}))
    # The probe is out: the next claim leaves the endpoint out again.
    assert g.plan({"land": 8}).endpoints == {"land": {"hcm": 8, "danang": 8}}
    assert g.next_change(clock.now) is None  # nothing to wait for but the probe's outcome


def test_an_agency_with_nothing_to_call_is_not_asked() -> None:
    g, clock = gate()
    open_breaker(g, "police", "national")
    assert g.plan({"police": 16}) == ClaimPlan({})
    assert g.next_change(clock.now) == clock.now + 5


def test_a_pause_holds_even_a_due_probe() -> None:
    g, clock = gate()
    open_breaker(g, "police", "national")
    g.holds.set_pauses([Pause("police", None, clock.now + 60, "bảo trì", "operator", clock.now)])
    clock.now += 10
    assert g.decide("police", "national") == "hold"
    assert g.plan({"police": 16}) == ClaimPlan({})
    assert g.next_change(clock.now) == clock.now + 50  # the pause's end
    assert g.breakers.get("police", "national").probing is False


def test_what_operators_and_metrics_see() -> None:
    g, clock = gate()
    open_breaker(g, "land", "hanoi")
    g.holds.set_pauses([Pause("land", "danang", clock.now + 600, "di dời máy chủ", "operator", clock.now)])
    g.held_jobs = {("land", "hanoi"): 12, ("land", "danang"): 3}
    hanoi, danang, hcm = (g.state("land", e) for e in ("hanoi", "danang", "hcm"))
    iso = datetime.fromtimestamp(clock.now, UTC).isoformat()
    assert (hanoi["state"], hanoi["open_since"], hanoi["last_error"]) == ("open", iso, "503")
    assert hanoi["next_probe_at"] == datetime.fromtimestamp(clock.now + 5, UTC).isoformat()
    assert (danang["state"], danang["reason"], danang["paused_by"]) == ("paused", "di dời máy chủ", "operator")
    assert danang["paused_until"] == datetime.fromtimestamp(clock.now + 600, UTC).isoformat()
    assert (hcm["state"], hcm["open_since"], hcm["paused_until"]) == ("closed", None, None)
    readings = {(a, e): rest for a, e, *rest in g.readings()}  # state, open, openings, held, held jobs
    assert readings["land", "hanoi"] == ["open", True, 1, False, 12]
    assert readings["land", "danang"][3] is True
    assert readings["land", "hcm"][:2] == ["closed", False]


def test_one_line_when_a_hold_starts_and_one_when_it_ends() -> None:
    g, clock = gate()
    with capture_logs() as logs:
        g.note_holds()
        g.holds.paused(Pause("police", None, clock.now + 60, "bảo trì", "operator", clock.now))
        g.note_holds()
        g.note_holds()
        clock.now += 60
        g.note_holds()
        g.note_holds()
    assert [(e["event"], e["agency"], e["hold"]) for e in logs] == [
        ("endpoint_held", "police", "pause"),
        ("endpoint_released", "police", "pause"),
    ]
