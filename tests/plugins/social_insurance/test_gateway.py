"""OAuth2 tokens through the running gateway: a token that expires while a bundle runs, and tokens the
agency drops without warning, never cost a delivery attempt. The gateway, the dispatcher and the three
simulators are real, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from plugins.social_insurance.simulator import insurance_number
from tests.plugins.justice.support import ServerFactory, Stack, birth_bundle, gateway_stack

TOKEN_TTL = 1.0  # seconds; the connector renews at 90 % of a token's life


@pytest.fixture
def token_ttl() -> float:
    return TOKEN_TTL


@pytest.fixture
async def stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: ServerFactory,
    unused_tcp_port_factory: Callable[[], int],
    token_ttl: float,
) -> AsyncIterator[Stack]:
    settings = {"social_insurance": {"token_ttl": token_ttl}}
    async with gateway_stack(tmp_path, monkeypatch, aiohttp_server, unused_tcp_port_factory(), settings=settings) as s:
        yield s


def health_card_only(i: int) -> dict[str, Any]:
    body = {**birth_bundle(i), "steps": ["birth", "health_card"]}
    body["forms"] = {k: v for k, v in body["forms"].items() if k != "residence"}
    body["attachments"] = {"birth": body["attachments"]["birth"]}
    return body


async def test_a_token_expiring_while_a_bundle_runs_is_renewed_before_use(stack: Stack) -> None:
    body = health_card_only(0)
    mother = body["forms"]["birth"]["mother"]["personal_id"]
    # The centre looks up the mother's insurance number: the gateway gets its first token.
    found = await stack.call("POST", "/v1/lookups/social-insurance-number", json={"personal_id": mother})
    assert found["social_insurance_number"] == insurance_number(mother)
    assert stack.stats("social_insurance")["tokens_issued"] == 1
    # The birth step is slow at the justice ministry: the token expires before the health-card step.
    await stack.faults("justice", latency_ms=int(TOKEN_TTL * 1000) + 300)
    view = await stack.run(body)
    assert view["state"] == "completed", view
    card = view["steps"][1]
    assert (card["step"], card["attempts"]) == ("health_card", 1)
    stats = stack.stats("social_insurance")
    assert stats["tokens_issued"] == 2  # a new token, fetched before the old one was refused
    assert stats.get("tokens_refused", 0) == 0


# A token that lives long: it outlives both bundles whatever the machine's speed, and the one the agency
# dropped is still fresh when the second bundle needs it, so the gateway uses it and meets the refusal (a
# short life would renew it first on a slow machine): only the agency's drop can refuse it.
@pytest.mark.parametrize("token_ttl", [3600.0])
async def test_tokens_the_agency_dropped_are_replaced_within_the_same_attempt(stack: Stack) -> None:
    first = await stack.run(health_card_only(0))
    assert first["state"] == "completed", first
    # The agency restarts and forgets every token it issued; the gateway's cached one is still "valid".
    async with stack.client.session.post(str(stack.sims["social_insurance"].make_url("/_sim/revoke-tokens"))) as r:
        assert (await r.json())["revoked"] == 1
    view = await stack.run(health_card_only(1))
    assert view["state"] == "completed", view
    assert view["steps"][1]["attempts"] == 1  # the 401 was answered with a new token, not a retry later
    stats = stack.stats("social_insurance")
    assert (stats["tokens_refused"], stats["tokens_issued"], stats["accepted"]) == (1, 2, 2)
