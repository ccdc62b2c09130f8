"""The OAuth2 client-credentials cache on a fake clock: cached, renewed early, one refresh at a time."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from adapters.base import MockTransport
from adapters.rest import RestRequest, RestResponse
from gateway.errors import AgencyRejected, AgencyUnavailable, MalformedAnswer
from plugins.social_insurance.oauth import ClientCredentials, basic_auth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """Answers token requests; `answers` overrides what the next requests get."""

    def __init__(self, ttl: Any = 3600, delay: float = 0.0) -> None:
        self.ttl = ttl
        self.delay = delay
        self.issued = 0
        self.answers: list[Any] = []

    async def __call__(self, request: RestRequest) -> RestResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return RestResponse(200, {}, orjson.dumps(answer))
        self.issued += 1
        body = {"access_token": f"tok-{self.issued}", "token_type": "Bearer", "expires_in": self.ttl}
        return RestResponse(200, {}, orjson.dumps(body))


def cache(endpoint: TokenEndpoint, clock: Clock, **kw: Any) -> tuple[ClientCredentials, MockTransport[Any, Any]]:
    transport: MockTransport[RestRequest, RestResponse] = MockTransport(endpoint, agency="social_insurance")
    return ClientCredentials(
        transport, "/oauth/token", "lienthong gw", "s3cret:with&chars", clock=clock, **kw
    ), transport


async def test_token_request_is_rfc6749_client_credentials() -> None:
    creds, transport = cache(TokenEndpoint(), Clock(), scope="ho-so tra-cuu")
    await creds.token()
    [req] = transport.requests
    assert (req.method, req.path) == ("POST", "/oauth/token")
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs((req.body or b"").decode()) == {"grant_type": ["client_credentials"], "scope": ["ho-so tra-cuu"]}
    raw = base64.b64decode(req.headers["Authorization"].removeprefix("Basic "))
    assert raw == b"lienthong+gw:s3cret%3Awith%26chars"  # form-encoded before base64 (RFC 6749 2.3.1)
    assert basic_auth("a", "b") == "Basic " + base64.b64encode(b"a:b").decode()


async def test_cached_until_the_margin() -> None:
    clock, endpoint = Clock(), TokenEndpoint(ttl=3600)
    creds, _ = cache(endpoint, clock)
    first = await creds.token()
    assert first.value == "tok-1"
    clock.now += 3569  # 31 s left: still good
    assert (await creds.token()) is first
    clock.now += 2  # 29 s left: less than the 30 s margin, renewed before it expires
    second = await creds.token()
    assert second.value == "tok-2"
    assert clock.now < first.expires_at
    assert (endpoint.issued, creds.fetched) == (2, 2)


async def test_short_tokens_are_renewed_at_ten_percent() -> None:
    clock, endpoint = Clock(), TokenEndpoint(ttl=2)
    creds, _ = cache(endpoint, clock)
    token = await creds.token()
    assert token.refresh_at == pytest.approx(clock.now + 1.8)
    clock.now += 1.7
    assert (await creds.token()).value == "tok-1"
    clock.now += 0.15
    assert (await creds.token()).value == "tok-2"


async def test_one_refresh_at_a_time() -> None:
    endpoint = TokenEndpoint(delay=0.05)
    creds, _ = cache(endpoint, Clock())
    tokens = await asyncio.gather(*(creds.token() for _ in range(25)))
    assert {t.value for t in tokens} == {"tok-1"}
    assert endpoint.issued == 1


async def test_invalidate_drops_only_the_refused_token() -> None:
    endpoint = TokenEndpoint()
    creds, _ = cache(endpoint, Clock())
    old = await creds.token()
    creds.invalidate(old)
    new = await creds.token()
    assert new.value == "tok-2"
    creds.invalidate(old)  # a late 401 for the old token must not throw away the new one
    assert (await creds.token()) is new


async def test_a_valid_token_outlives_a_token_endpoint_hiccup() -> None:
    clock, endpoint = Clock(), TokenEndpoint(ttl=100)
    creds, _ = cache(endpoint, clock)
    token = await creds.token()
    clock.now += 95  # inside the margin, not yet expired
    endpoint.answers = [AgencyUnavailable("social_insurance: HTTP 503", status=503)]
    assert (await creds.token()) is token
    clock.now += 10  # expired now: the failure surfaces
    endpoint.answers = [AgencyUnavailable("social_insurance: HTTP 503", status=503)]
    with pytest.raises(AgencyUnavailable):
        await creds.token()


async def test_refused_credentials() -> None:
    endpoint = TokenEndpoint()
    endpoint.answers = [AgencyRejected('social_insurance: HTTP 401: {"error":"invalid_client"}', status=401)]
    creds, _ = cache(endpoint, Clock())
    with pytest.raises(AgencyRejected, match="the token endpoint refused the client credentials") as err:
        await creds.token()
    assert (err.value.status, err.value.retryable) == (401, False)


async def test_default_lifetime_when_the_agency_does_not_say() -> None:
    clock, endpoint = Clock(), TokenEndpoint()
    endpoint.answers = [{"access_token": "opaque", "token_type": "bearer"}]
    creds, _ = cache(endpoint, clock, default_ttl=60)
    token = await creds.token()
    assert (token.value, token.expires_at, token.refresh_at) == ("opaque", clock.now + 60, clock.now + 54)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"token_type": "Bearer"}, "no access_token"),
        ({"access_token": ""}, "no access_token"),
        ({"access_token": "t", "token_type": "mac"}, "is not Bearer"),
        ({"access_token": "t", "expires_in": "soon"}, "not a number"),
        ({"access_token": "t", "expires_in": -5}, "not a lifetime"),
        ({"access_token": "t", "expires_in": "nan"}, "not a lifetime"),
        (["access_token"], "no access_token"),
    ],
)
async def test_malformed_token_answers(answer: Any, message: str) -> None:
    endpoint = TokenEndpoint()
    endpoint.answers = [answer]
    creds, _ = cache(endpoint, Clock())
    with pytest.raises(MalformedAnswer, match=message) as err:
        await creds.token()
    assert err.value.retryable
