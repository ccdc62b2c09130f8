"""Rate limits: token buckets per client (requests, look-ups, each configurable per client) and on failed
authentication per source address; 429 problem+json with Retry-After. Look-ups are audited, their fields
as keyed hashes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.api.lookups import pseudonym
from gateway.config.model import ClientConf, RateLimitSettings
from gateway.ratelimit import Buckets, Rate, RateLimits, retry_after
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_api_errors import assert_problem

Make = Callable[[int], dict[str, Any]]
AUDIT_KEY = "test-pseudonym-key-0001"


def test_a_bucket_lets_a_burst_through_then_the_sustained_rate() -> None:
    now = [0.0]
    buckets = Buckets(clock=lambda: now[0])
    rate = Rate(per_second=2.0, burst=3)
    assert [buckets.take("c", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("c", rate) == 0.5  # half a second until the next token
    assert buckets.take("c", rate) == 0.5  # a refused request takes nothing
    assert buckets.take("other", rate) == 0.0  # another key has its own bucket
    now[0] += 0.5
    assert buckets.take("c", rate) == 0.0
    now[0] += 100
    assert [buckets.take("c", rate) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # never more than the burst


def test_buckets_forget_the_least_recently_seen_key() -> None:
    buckets = Buckets(max_keys=2, clock=lambda: 0.0)
    rate = Rate(1.0, 1)
    for key in ("a", "b", "a", "c"):
        buckets.take(key, rate)
    assert list(buckets._state) == ["a", "c"]


def test_a_clients_own_limits_override_the_defaults() -> None:
    limits = RateLimits(RateLimitSettings(requests_per_second=10, burst=20, lookups_per_minute=60, lookup_burst=5))
    base = {"name": "x", "kind": "centre", "unit": "000.00.01.H26", "scopes": ["read"], "api_key_sha256": "0" * 64}
    plain = ClientConf.model_validate(base)
    own = ClientConf.model_validate(base | {"rate_limit": {"requests_per_second": 200, "lookup_burst": 1}})
    assert limits.request_rate(plain) == Rate(10, 20)
    assert limits.request_rate(own) == Rate(200, 20)
    assert limits.lookup_rate(own) == Rate(1.0, 1)
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    """The harness's configuration with tight limits: centre-hcm a burst of 3, look-ups 2 at once, keyless
    requests 3 at once per address."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    with (conf / "gateway.toml").open("a") as f:
        f.write(
            "\n[rate_limits]\nrequests_per_second = 0.05\nburst = 1000\nlookups_per_minute = 1\nlookup_burst = 2\n"
            "auth_failures_per_minute = 1\nauth_failure_burst = 4\npublic_per_minute = 1\npublic_burst = 3\n"
            f'\n[audit]\npseudonym_key = "{AUDIT_KEY}"\n'
        )
    clients = (conf / "clients.toml").read_text()
    marker = "[client.centre-danang]"
    clients = clients.replace(marker, "[client.centre-hcm.rate_limit]\nburst = 3\n\n" + marker)
    (conf / "clients.toml").write_text(clients)
    return conf


async def test_a_client_past_its_rate_waits(harness: GatewayHarness) -> None:
    for _ in range(3):
        assert (await harness.client.get("/v1/dossiers", headers=harness.headers("centre-hcm"))).status == 200
    resp = await harness.client.get("/v1/dossiers", headers=harness.headers("centre-hcm"))
    problem = await assert_problem(resp, 429, "too-many-requests")
    assert int(resp.headers["Retry-After"]) == 20  # one token every 20 s
    assert "centre-hcm" in problem["detail"]
    # Other clients have buckets of their own (the defaults here: a burst of 1000).
    assert (await harness.client.get("/v1/dossiers", headers=harness.headers("centre-hanoi"))).status == 200


async def test_an_address_that_keeps_failing_to_authenticate_waits_even_with_a_good_key(
    harness: GatewayHarness,
) -> None:
    for i in range(4):
        resp = await harness.client.get("/v1/dossiers", headers={"X-Api-Key": f"lt_guess_{i}"})
        await assert_problem(resp, 401, "unauthenticated")
    for headers in ({"X-Api-Key": "lt_guess_5"}, {}, harness.headers("centre-hanoi")):
        resp = await harness.client.get("/v1/dossiers", headers=headers)
        problem = await assert_problem(resp, 429, "too-many-requests")
        assert int(resp.headers["Retry-After"]) == 60
        assert problem["detail"].startswith("too many failed authentications from 127.0.0.1")
    # Public paths need no key and are not held back.
    assert (await harness.client.get("/healthz")).status == 200


async def test_look_ups_are_limited_per_client_and_audited_without_personal_data(
    harness: GatewayHarness, submission: Make
) -> None:
    a = submission(0)["applicant"]
    query = {"personal_id": a["personal_id"], "full_name": a["full_name"], "date_of_birth": a["date_of_birth"]}
    url = "/v1/lookups/identity-verification"
    for _ in range(2):
        assert (await harness.client.post(url, json=query, headers=harness.headers())).status == 200
    resp = await harness.client.post(url, json=query, headers=harness.headers())
    await assert_problem(resp, 429, "too-many-requests")
    assert int(resp.headers["Retry-After"]) == 60
    assert (await harness.client.post(url, json=query, headers=harness.headers("operator"))).status == 200
    log = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    lookups = [r for r in log["items"] if r["action"] == "lookup"]
    assert [r["client"] for r in lookups] == ["centre-hanoi", "centre-hanoi", "operator"]
    record = lookups[0]
    assert (record["outcome"], record["basis"]) == ("allowed", "lookup-scope")
    assert record["detail"]["lookup"] == "identity-verification" and record["detail"]["agency"] == "police"
    hashed = {k: pseudonym(v, AUDIT_KEY) for k, v in query.items()}
    assert record["detail"]["query"] == hashed  # whoever holds the key can tell who was looked up...
    text = orjson.dumps(log).decode()
    for value in (a["personal_id"], a["full_name"], a["date_of_birth"], a["date_of_birth"].replace("-", "")):
        assert value not in text  # ...nobody can read it


async def test_keyless_requests_are_limited_per_address(harness: GatewayHarness) -> None:
    statuses = [(await harness.client.get("/v1/public/procedures/1.004194")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = await harness.client.get("/guide/1.004194")
    problem = await assert_problem(limited, 429, "too-many-requests")
    assert int(limited.headers["Retry-After"]) >= 1 and "127.0.0.1" in problem["detail"]
    # Centres have buckets of their own: the citizens' limit does not hold them.
    assert (await harness.client.get("/v1/procedures", headers=harness.headers())).status == 200
