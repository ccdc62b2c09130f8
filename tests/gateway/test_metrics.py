"""/metrics by convention: promtool's check and a parser's, HELP and TYPE on every family, latency
histograms per route and per agency, the open jobs by state, process metrics; the admin right unless
[metrics] public."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics, operation_of, status_class
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem

Make = Callable[[int], dict[str, Any]]


async def scrape(h: GatewayHarness, who: str | None = "operator") -> str:
    resp = await h.client.get("/metrics", headers=h.headers(who) if who else {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await resp.text()


async def promtool_check(text: str) -> str:
    return await asyncio.to_thread(run_promtool, text)


def run_promtool(text: str) -> str:
    """`promtool check metrics` on the exposition. .ci/setup installs promtool: its absence fails."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: install Debian's prometheus package (.ci/setup does)"
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def delivered(h: GatewayHarness, n: int) -> str:
    """A scrape once n dossiers are delivered and finished (the simulator finishes each soon after)."""
    wanted = {"lienthong_deliveries_total", "lienthong_dossier_finish_seconds_count"}
    for _ in range(400):
        text = await scrape(h)
        seen = {s.name for f in text_string_to_metric_families(text) for s in f.samples if s.value >= n}
        if wanted <= seen:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError("the deliveries and finishes were not counted")


async def test_a_scrape_after_traffic_passes_promtool_with_histograms_per_route_and_agency(
    harness: GatewayHarness, submission: Make
) -> None:
    for i in range(3):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        assert resp.status == 202
    await harness.client.get("/v1/no-such-thing", headers=harness.headers())
    text = await delivered(harness, 3)
    assert await promtool_check(text) == ""  # no lint finding either
    fams = families(text)
    for f in fams.values():
        assert f.documentation, f"{f.name} has no HELP"
        assert f.type != "unknown", f"{f.name} has no TYPE"
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info", "lienthong_build_info"):
        assert name in fams, name
    http = fams["lienthong_http_request_duration_seconds"]
    assert http.type == "histogram"
    routes = {(s.labels["route"], s.labels["method"], s.labels["status_class"]) for s in http.samples}
    assert ("/v1/dossiers", "POST", "2xx") in routes
    assert ("unmatched", "GET", "4xx") in routes  # never the raw path: its values would be unbounded
    counted = {
        (s.labels["route"], s.labels["client"])
        for s in fams["lienthong_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert ("/v1/dossiers", "centre-hanoi") in counted
    calls = fams["lienthong_agency_call_duration_seconds"]
    ok = [
        s
        for s in calls.samples
        if s.name.endswith("_count")
        and s.labels == {"agency": "police", "endpoint": "national", "operation": "submit", "outcome": "ok"}
    ]
    assert ok and ok[0].value == 3
    delays = [s for s in fams["lienthong_dossier_delivery_delay_seconds"].samples if s.name.endswith("_count")]
    assert [(s.labels["agency"], s.value) for s in delays] == [("police", 3.0)]
    finished = [s for s in fams["lienthong_dossier_finish_seconds"].samples if s.name.endswith("_count")]
    assert [(s.labels["agency"], s.value) for s in finished] == [("police", 3.0)]  # the simulator finishes each
    ahead = {s.labels["agency"]: s.value for s in fams["lienthong_deliveries_claimed_ahead"].samples}
    assert ahead["police"] == 0.0  # all three delivered: nothing left waiting for a slot
    breaker = [s for s in fams["lienthong_endpoint_breaker_open"].samples if s.labels["agency"] == "police"]
    assert breaker and breaker[0].value == 0.0
    # Three submissions, their deliveries and callbacks, at least: each commit held one write or more.
    commits = fams["lienthong_store_commits"].samples[0].value
    writes = fams["lienthong_store_writes"].samples[0].value
    assert fams["lienthong_store_commits"].type == "counter"
    assert 3 <= commits <= writes


async def test_open_jobs_by_agency_and_state_while_the_agency_is_down(
    harness: GatewayHarness, submission: Make
) -> None:
    await harness.set_faults(down=True)
    for i in range(2):
        assert (await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())).status == 202
    text = ""
    for _ in range(200):
        await asyncio.sleep(OPEN_WAIT)
        text = await scrape(harness)
        jobs = {
            tuple(s.labels[k] for k in ("agency", "endpoint", "state")): s.value
            for s in families(text)["lienthong_jobs"].samples
        }
        if sum(v for (a, _, st), v in jobs.items() if a == "police" and st in ("pending", "leased")) == 2:
            break
    else:
        raise AssertionError(text)
    transient = [
        s
        for s in families(text)["lienthong_agency_call_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["outcome"] in ("transient", "timeout")
    ]
    assert transient and sum(s.value for s in transient) >= 1
    await promtool_check(text)


OPEN_WAIT = 0.5  # the open jobs are read again after OPEN_JOBS_TTL (2 s)


async def test_metrics_need_the_admin_right(harness: GatewayHarness) -> None:
    await assert_problem(await harness.client.get("/metrics"), 401, "unauthenticated")
    await assert_problem(await harness.client.get("/metrics", headers=harness.headers()), 403, "forbidden")


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_METRICS_PUBLIC": "true"}])
async def test_metrics_public_when_configured(harness: GatewayHarness) -> None:
    await promtool_check(await scrape(harness, who=None))


def test_labels_stay_bounded() -> None:
    assert [status_class(s) for s in (200, 302, 404, 503)] == ["2xx", "3xx", "4xx", "5xx"]
    assert [operation_of(s) for s in ("submit", "supplement-3", "withdraw")] == ["submit", "supplement", "withdraw"]


def test_a_fresh_registry_per_application() -> None:
    """Two applications in one process (tests, a reload) never collide on a metric name."""
    a, b = Metrics(), Metrics()
    a.observe("/v1/dossiers", "POST", 202, "c", 0.01)
    assert b"lienthong_http_requests_total{" in a.render()
    assert b"lienthong_http_requests_total{" not in b.render()
