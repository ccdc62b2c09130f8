"""Circuit breakers per endpoint: when they open, how they are probed, when they close, what they log; an
agency down for twelve times its retry budget while 200 dossiers arrive; and an agency with one endpoint
held while its other endpoint goes on."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.breaker import Breaker, Breakers
from gateway.config.model import BreakerSettings
from plugins.police.demo import demo_dossiers
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_smoke import wait_status

EP = ("police", "national")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def breakers(clock: Clock, jitter: float = 0.0, **settings: float) -> Breakers:
    conf = BreakerSettings.model_validate({"failures": 3, "probe_after": 5, "probe_max": 30} | settings)
    return Breakers(conf, clock=clock, rng=lambda: jitter)


def test_it_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    b = breakers(clock)
    b.failed(*EP, "503")
    b.failed(*EP, "503")
    b.succeeded(*EP)  # the agency answered: the run is broken
    b.failed(*EP, "503")
    b.failed(*EP, "503")
    assert b.permit(*EP) == "call"
    b.failed(*EP, "timeout")
    assert b.permit(*EP) == "wait"
    state = b.get(*EP)
    assert (state.state, state.opened_at, state.next_probe_at, state.last_error) == (
        "open",
        clock.now,
        clock.now + 5,
        "timeout",
    )


def test_probes_come_at_doubling_intervals_up_to_the_longest() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed(*EP, "503")
    waits = []
    for _ in range(6):
        opened_or_failed = clock.now
        assert b.next_probe(clock.now) is not None
        clock.now = b.get(*EP).next_probe_at  # type: ignore[assignment]
        waits.append(clock.now - opened_or_failed)
        assert b.permit(*EP) == "probe"
        assert b.take_probe(*EP)
        assert not b.take_probe(*EP)  # one probe at a time
        assert b.permit(*EP) == "wait"
        b.failed(*EP, "503", probe=True)
    assert waits == [5, 10, 20, 30, 30, 30]


def test_jitter_only_lengthens_a_wait() -> None:
    clock = Clock()
    b = breakers(clock, jitter=1.0, probe_jitter=0.2)
    for _ in range(3):
        b.failed(*EP, "503")
    assert b.get(*EP).next_probe_at == clock.now + 6  # 5 s, lengthened by 20 %


def test_a_probe_that_finds_nothing_to_send_is_given_back() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed(*EP, "503")
    clock.now += 5
    assert b.take_probe(*EP)
    assert b.next_probe(clock.now) is None  # out: nobody else looks for it
    b.drop_probe(*EP)
    assert b.permit(*EP) == "probe"


def test_a_successful_probe_closes_and_says_when_the_outage_began() -> None:
    clock = Clock()
    b = breakers(clock)
    closed: list[tuple[Breaker, float]] = []
    b.on_close.append(lambda br, began: closed.append((br, began)))
    began = clock.now
    with capture_logs() as logs:
        for _ in range(3):
            b.failed(*EP, "503")
            clock.now += 1
        clock.now += 5
        b.succeeded(*EP)  # a call sent before the opening ended well: it says little about now
        assert (b.get(*EP).state, b.permit(*EP)) == ("open", "probe")
        assert b.take_probe(*EP)
        b.failed(*EP, "503", probe=True)
        clock.now = b.get(*EP).next_probe_at  # type: ignore[assignment]
        assert b.take_probe(*EP)
        b.succeeded(*EP, probe=True)
    assert b.permit(*EP) == "call"
    assert [(br.agency, br.endpoint, t) for br, t in closed] == [("police", "national", began)]
    # One line when it went down, one when it came back: none per failure or probe.
    assert [(entry["event"], entry["log_level"]) for entry in logs if entry["log_level"] != "debug"] == [
        ("endpoint_down", "warning"),
        ("endpoint_up", "info"),
    ]
    up = logs[-1]
    assert (up["down_s"], up["probes"]) == (round(clock.now - began, 1), 2)


def test_retry_after_opens_at_once_and_sets_the_probe() -> None:
    clock = Clock()
    b = breakers(clock, retry_after_max=600)
    b.failed(*EP, "503", retry_after=7)
    assert (b.permit(*EP), b.get(*EP).next_probe_at) == ("wait", clock.now + 7)
    clock.now += 7
    assert b.take_probe(*EP)
    b.failed(*EP, "503", retry_after=3600, probe=True)  # longer than we obey
    assert b.get(*EP).next_probe_at == clock.now + 600


def test_a_late_retry_after_pushes_the_probe_back() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed(*EP, "503")
    b.failed(*EP, "503", retry_after=20)  # a call in flight when it opened, answered late
    assert b.get(*EP).next_probe_at == clock.now + 20


def test_failures_zero_never_opens_on_a_count_but_obeys_retry_after() -> None:
    clock = Clock()
    b = breakers(clock, failures=0)
    for _ in range(100):
        b.failed(*EP, "503")
    assert b.permit(*EP) == "call"
    b.failed(*EP, "429", retry_after=2)
    assert b.permit(*EP) == "wait"


def test_endpoints_are_apart() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed("land", "hanoi", "sftp: connection refused")
    assert (b.permit("land", "hanoi"), b.permit("land", "hcm")) == ("wait", "call")
    assert [x.openings for x in b.all()] == [1]


# -- an agency down for many times its retry budget, against the police simulator ----------------------

BUDGET, OUTAGE, DOSSIERS = 1.0, 12.0, 200  # give_up_after, in seconds; the outage is 12 times as long
FAILURES, PROBE_AFTER, PROBE_MAX, CONCURRENCY = 5, 0.2, 1.0, 16  # the harness's breaker; police's concurrency


def most_probes(seconds: float) -> int:
    """How many probes fit in `seconds` at the shortest waits (jitter only lengthens them)."""
    n, t, wait = 0, 0.0, PROBE_AFTER
    while t + wait <= seconds:
        t, n, wait = t + wait, n + 1, min(wait * 2, PROBE_MAX)
    return n


def most_at_once(calls: list[dict[str, Any]]) -> int:
    edges = sorted([(c["at"], 1) for c in calls] + [(c["ended"], -1) for c in calls])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_GIVE_UP_AFTER": str(BUDGET)}])
async def test_a_long_outage_dead_letters_nothing_and_the_backlog_drains_at_the_agency_concurrency(
    harness: GatewayHarness,
) -> None:
    bodies = await asyncio.to_thread(demo_dossiers, 77, DOSSIERS)
    await harness.set_faults(down=True)
    down_at = time.time()
    sem = asyncio.Semaphore(8)

    async def submit(body: dict[str, Any]) -> str:
        async with sem:
            while True:  # as a centre does: past its rate limit (429), it waits as Retry-After says
                resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
                if resp.status != 429:
                    break
                await asyncio.sleep(float(resp.headers["Retry-After"]))
            assert resp.status == 202, await resp.text()
            return str((await resp.json())["id"])

    ids = await asyncio.gather(*(submit(b) for b in bodies))
    await asyncio.sleep(max(0.0, down_at + OUTAGE - time.time()))

    # Twelve budgets later: not one dead letter, everything pending and held, and the agency was left alone.
    dead = await (
        await harness.client.get("/v1/admin/deliveries?state=dead", headers=harness.headers("operator"))
    ).json()
    assert dead["items"] == []
    agencies = await harness.client.get("/v1/admin/agencies?check=false", headers=harness.headers("operator"))
    [police] = (await agencies.json())["items"]
    assert (police["state"], police["pending"] + police["in_flight"]) == ("open", DOSSIERS)
    up_at = time.time()
    refused = await calls(harness)
    bound = FAILURES + CONCURRENCY - 1 + most_probes(up_at - down_at)
    assert all(c["status"] == 503 for c in refused)
    assert 0 < len(refused) <= bound, f"{len(refused)} calls reached the dead agency; at most {bound} may"

    # Back, each call taking 0.5 s: the backlog goes at the agency's concurrency, each dossier once.
    await harness.set_faults(down=False, latency_ms=500)
    for did in ids:
        assert (await wait_status(harness, did, 9, timeout=60))["status"] == 9
    drain = await calls(harness, since=up_at)
    assert sorted(c["status"] for c in drain) == [202] * DOSSIERS
    assert most_at_once(drain) == CONCURRENCY
    stats = await harness.sim_stats()
    assert (stats["accepted"], stats.get("duplicates", 0)) == (DOSSIERS, 0)


async def calls(h: GatewayHarness, since: float = 0.0) -> list[dict[str, Any]]:
    async with h.client.session.get(str(h.police.make_url("/_sim/calls")), params={"since": str(since)}) as r:
        got: list[dict[str, Any]] = await r.json()
        return got


# -- an agency of several endpoints: one held, the others delivered -----------------------------------


@pytest.fixture
def two_endpoints() -> bool:
    return False


@pytest.fixture
def gateway_conf(tmp_path: Path, two_endpoints: bool) -> Path:
    """With `two_endpoints`, police has a second endpoint (the same simulator behind it) that takes
    temporary residence (1.004203)."""
    if not two_endpoints:
        return CONF
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    agencies = (copy / "agencies.toml").read_text()
    national = agencies[agencies.index("[agency.police.endpoints.national]") :]
    (copy / "agencies.toml").write_text(agencies + "\n" + national.replace(".national]", ".temporary]"))
    routes = (copy / "routes.toml").read_text()
    temporary = 'procedure = "1.004203"\nagency = "police"\nendpoint = "temporary"'
    (copy / "routes.toml").write_text(
        routes.replace('procedure = "1.004203"\nagency = "police"\nendpoint = "national"', temporary)
    )
    return copy


@pytest.mark.parametrize("two_endpoints", [True])
async def test_an_endpoint_held_leaves_the_agency_other_endpoints_going(harness: GatewayHarness) -> None:
    bodies = await asyncio.to_thread(demo_dossiers, 42, 12)
    operator = harness.headers("operator")
    pause = {"until": "1h", "reason": "chuyển máy chủ", "endpoint": "temporary"}
    assert (await harness.client.post("/v1/admin/agencies/police/pause", json=pause, headers=operator)).status == 200
    ids: dict[str, list[str]] = {"1.004194": [], "1.004203": []}
    for body in bodies:
        resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
        assert resp.status == 202
        ids[body["procedure_code"]].append((await resp.json())["id"])
    assert ids["1.004194"] and ids["1.004203"]
    for did in ids["1.004194"]:
        assert (await wait_status(harness, did, 9))["status"] == 9
    state = await (await harness.client.get("/v1/admin/agencies?check=false", headers=operator)).json()
    by_endpoint = {i["endpoint"]: i for i in state["items"]}
    assert (by_endpoint["national"]["state"], by_endpoint["national"]["pending"]) == ("closed", 0)
    assert (by_endpoint["temporary"]["state"], by_endpoint["temporary"]["held"]) == ("paused", len(ids["1.004203"]))
    assert (await harness.sim_stats())["accepted"] == len(ids["1.004194"])

    resp = await harness.client.post(
        "/v1/admin/agencies/police/resume", json={"endpoint": "temporary"}, headers=operator
    )
    assert (await resp.json())["resumed"] == 1
    for did in ids["1.004203"]:
        assert (await wait_status(harness, did, 9))["status"] == 9
    assert (await harness.sim_stats())["accepted"] == len(bodies)
