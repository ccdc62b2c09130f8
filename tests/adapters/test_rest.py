"""RestTransport against a local aiohttp server: every failure becomes the right AgencyError."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.rest import RestRequest, RestTransport, hmac_rest
from adapters.signing import HmacSigner, HmacVerifier, SignatureError
from gateway.errors import (
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    MalformedAnswer,
    UnsafeAnswer,
)

LIMIT = 1024
SECRET = "shared-secret-both-directions"


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.json_response({"maLoi": str(code), "moTa": f"answer {code}"}, status=code)


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": (await request.read()).decode(),
        }
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.0)
    return web.json_response({})


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (LIMIT + 1), content_type="application/json")


async def big_chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for _ in range(4):
        await resp.write(b"y" * 400)
    await resp.write_eof()
    return resp


async def busy(request: web.Request) -> web.Response:
    """An agency asking to be left alone: 503 or 429 with the Retry-After given in the query."""
    code = int(request.match_info["code"])
    headers = {"Retry-After": request.query["after"]} if "after" in request.query else {}
    return web.Response(status=code, text="busy", headers=headers)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def text(request: web.Request) -> web.Response:
    return web.Response(text="<html>maintenance</html>", content_type="text/html")


@pytest.fixture
async def server(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/text", text)
    app.router.add_get("/health", health)
    app.router.add_route("*", "/busy/{code}", busy)
    return await aiohttp_server(app)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def transport(server: TestServer, http: aiohttp.ClientSession, **kw: Any) -> RestTransport:
    return RestTransport(http, str(server.make_url("/")), agency="tax", max_answer_bytes=LIMIT, **kw)


async def test_ok_json(server: TestServer, http: aiohttp.ClientSession) -> None:
    resp = await transport(server, http).send(RestRequest("POST", "/echo?x=1", json={"a": "ă"}))
    assert resp.status == 200
    data = resp.json()
    assert (data["method"], data["path"], data["body"]) == ("POST", "/echo?x=1", '{"a":"ă"}')
    assert data["headers"]["Content-Type"] == "application/json"
    assert data["headers"]["Accept"] == "application/json"


@pytest.mark.parametrize("code", [500, 502, 503, 429])
async def test_5xx_and_429_are_unavailable_and_retryable(
    server: TestServer, http: aiohttp.ClientSession, code: int
) -> None:
    with pytest.raises(AgencyUnavailable) as err:
        await transport(server, http).send(RestRequest("GET", f"/status/{code}"))
    assert (err.value.status, err.value.agency, err.value.retryable) == (code, "tax", True)
    assert err.value.message == f'tax: HTTP {code}: {{"maLoi": "{code}", "moTa": "answer {code}"}}'


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422])
async def test_4xx_is_rejected_and_not_retried(server: TestServer, http: aiohttp.ClientSession, code: int) -> None:
    with pytest.raises(AgencyRejected) as err:
        await transport(server, http).send(RestRequest("POST", f"/status/{code}", json={}))
    assert (err.value.status, err.value.retryable) == (code, False)


@pytest.mark.parametrize("code", [408, 504])
async def test_408_and_504_are_timeouts(server: TestServer, http: aiohttp.ClientSession, code: int) -> None:
    with pytest.raises(AgencyTimeout) as err:
        await transport(server, http).send(RestRequest("GET", f"/status/{code}"))
    assert (err.value.status, err.value.retryable) == (code, True)


@pytest.mark.parametrize(("code", "after", "expected"), [(503, "5", 5.0), (429, "120", 120.0), (503, None, None)])
async def test_retry_after_rides_on_the_error(
    server: TestServer, http: aiohttp.ClientSession, code: int, after: str | None, expected: float | None
) -> None:
    query = f"?after={after}" if after is not None else ""
    with pytest.raises(AgencyUnavailable) as err:
        await transport(server, http).send(RestRequest("POST", f"/busy/{code}{query}", json={}))
    assert err.value.retry_after == expected


async def test_retry_after_as_an_http_date_and_unreadable(server: TestServer, http: aiohttp.ClientSession) -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    with pytest.raises(AgencyUnavailable) as err:
        await transport(server, http).send(RestRequest("GET", f"/busy/503?after={quote(soon)}"))
    assert err.value.retry_after is not None and 55 <= err.value.retry_after <= 60
    with pytest.raises(AgencyUnavailable) as err:
        await transport(server, http).send(RestRequest("GET", "/busy/503?after=soon"))
    assert err.value.retry_after is None  # an odd header never fails the call on its own


async def test_statuses_the_caller_accepts(server: TestServer, http: aiohttp.ClientSession) -> None:
    resp = await transport(server, http).send(RestRequest("GET", "/status/404", ok=(404,)))
    assert resp.status == 404
    assert resp.json()["moTa"] == "answer 404"


async def test_no_answer_in_time(server: TestServer, http: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AgencyTimeout, match="tax: no answer in time") as err:
        await transport(server, http, timeout=0.2).send(RestRequest("GET", "/slow"))
    assert err.value.retryable
    assert loop.time() - started < 0.9
    with pytest.raises(AgencyTimeout):  # a per-request timeout wins over the transport's
        await transport(server, http, timeout=30).send(RestRequest("GET", "/slow", timeout=0.2))


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_oversize_answer_is_unsafe(server: TestServer, http: aiohttp.ClientSession, path: str) -> None:
    with pytest.raises(UnsafeAnswer, match=f"exceeds {LIMIT}") as err:
        await transport(server, http).send(RestRequest("GET", path))
    assert not err.value.retryable


async def test_non_json_answer_is_malformed(server: TestServer, http: aiohttp.ClientSession) -> None:
    resp = await transport(server, http).send(RestRequest("GET", "/text"))
    assert resp.status == 200
    with pytest.raises(MalformedAnswer, match="answer is not JSON: b'<html>maintenance") as err:
        resp.json()
    assert err.value.retryable


async def test_connection_refused_is_unavailable(unused_tcp_port: int, http: aiohttp.ClientSession) -> None:
    t = RestTransport(http, f"http://127.0.0.1:{unused_tcp_port}", agency="tax")
    with pytest.raises(AgencyUnavailable, match="tax: cannot connect") as err:
        await t.send(RestRequest("GET", "/health"))
    assert err.value.status is None


async def test_signed_request_verifies_at_the_agency(server: TestServer, http: aiohttp.ClientSession) -> None:
    t = transport(server, http, signer=HmacSigner("gw", "shared-secret-for-rest-test"))
    resp = await t.send(RestRequest("POST", "/echo", json={"n": 1}))
    seen = resp.json()
    body = seen["body"].encode()
    assert HmacVerifier({"gw": "shared-secret-for-rest-test"}).verify("POST", "/echo", seen["headers"], body) == "gw"


async def test_hmac_rest_signs_with_the_key_its_verifier_checks(
    server: TestServer, http: aiohttp.ClientSession
) -> None:
    url = str(server.make_url("/"))
    t, verifier = hmac_rest(
        http, url, agency="justice", key_id="gw", secret=SECRET, timeout=2.5, max_answer_bytes=LIMIT
    )
    assert t.describe() == {"kind": "rest", "base_url": url.rstrip("/"), "timeout": 2.5, "signed": True}
    seen = (await t.send(RestRequest("POST", "/echo", json={"n": 1}))).json()
    assert verifier.verify("POST", "/echo", seen["headers"], seen["body"].encode()) == "gw"
    forged = HmacSigner("gw", "a-secret-the-agency-never-issued")("POST", "/v1/callbacks/justice", b"{}")
    with pytest.raises(SignatureError, match="bad signature"):
        verifier.verify("POST", "/v1/callbacks/justice", forged, b"{}")
    with pytest.raises(UnsafeAnswer, match=f"justice: answer of {LIMIT + 1} bytes exceeds {LIMIT}"):
        await t.send(RestRequest("GET", "/big"))


async def test_auth_headers_and_raw_body(server: TestServer, http: aiohttp.ClientSession) -> None:
    async def auth() -> dict[str, str]:
        return {"Authorization": "Bearer t0k3n"}

    t = transport(server, http, auth=auth)
    resp = await t.send(RestRequest("PUT", "/echo", body=b"raw", headers={"X-Trace": "1"}))
    seen = orjson.loads(resp.body)
    assert (seen["method"], seen["body"]) == ("PUT", "raw")
    assert (seen["headers"]["Authorization"], seen["headers"]["X-Trace"]) == ("Bearer t0k3n", "1")


async def test_check(server: TestServer, http: aiohttp.ClientSession) -> None:
    ok = await transport(server, http).check()
    assert (ok.ok, ok.detail) == (True, "HTTP 200")
    bad = await transport(server, http, health_path="/status/503").check()
    assert not bad.ok
    assert bad.detail.startswith("tax: HTTP 503")
    assert transport(server, http).describe() == {
        "kind": "rest",
        "base_url": str(server.make_url("/")).rstrip("/"),
        "timeout": 10.0,
        "signed": False,
    }
