"""The middleware: header bytes that are not UTF-8 (400, naming the header, before anything is read or
written), the correlation id, and redirects passed through. Raw HTTP over loopback: an HTTP client library
will not send such bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.api.access import APPLICANT_HEADER
from gateway.api.keys import STORE
from gateway.sandbox.demo import DEMO_KEYS
from tests.gateway.conftest import GatewayHarness

Make = Callable[[int], dict[str, Any]]
NOT_UTF8 = b"\xff\xfe\xc3("  # no UTF-8 sequence starts with 0xff; 0xc3 0x28 is a broken one


async def raw(
    h: GatewayHarness, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte; the status, headers and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", h.client.port)
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1"), b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers]
    if body:
        lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    got = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), got, content


def key(who: str = "centre-hanoi") -> tuple[str, bytes]:
    return ("X-Api-Key", DEMO_KEYS[who].encode())


def assert_header_problem(status: int, headers: dict[str, str], body: bytes, name: str) -> None:
    assert status == 400, body
    assert headers["content-type"].startswith("application/problem+json")
    problem = orjson.loads(body)
    assert problem["type"] == "urn:lienthong:problem:invalid-request"
    assert problem["detail"] == f"the {name} header is not valid UTF-8"
    assert problem["errors"] == [{"path": f"headers.{name}", "message": "is not valid UTF-8", "code": "invalid"}]
    assert headers["x-correlation-id"]  # answered like every other request, with a correlation id


@pytest.mark.parametrize("name", ["X-Api-Key", "Idempotency-Key", "X-Correlation-ID"])
async def test_a_header_that_is_not_utf8_is_400_and_nothing_is_created(
    harness: GatewayHarness, submission: Make, name: str
) -> None:
    headers = [key(), (name, b"abc" + NOT_UTF8)] if name != "X-Api-Key" else [(name, b"lt_" + NOT_UTF8)]
    status, got, body = await raw(harness, "POST", "/v1/dossiers", headers, orjson.dumps(submission(0)))
    assert_header_problem(status, got, body, name)
    assert await harness.app[STORE].list_dossiers(client_id=None, status=None, limit=10) == []


async def test_an_applicant_id_that_is_not_utf8_is_400_for_existing_and_missing_dossiers(
    harness: GatewayHarness, submission: Make
) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    existing = (await resp.json())["id"]
    for ref in (existing, "000.00.01.H26-251122-9999", "3b0e7c36-7d3f-4b55-9a39-000000000000"):
        status, got, body = await raw(
            harness, "GET", f"/v1/dossiers/{ref}", [key("centre-hcm"), (APPLICANT_HEADER, NOT_UTF8)]
        )
        assert_header_problem(status, got, body, APPLICANT_HEADER)


async def test_a_correlation_id_with_control_characters_is_400(harness: GatewayHarness) -> None:
    # The HTTP parser refuses C0 controls itself; a C1 control (NEL, U+0085) is valid UTF-8 and reaches us.
    cid = "abc\u0085def".encode()
    status, got, body = await raw(harness, "GET", "/v1/dossiers", [key(), ("X-Correlation-ID", cid)])
    assert status == 400, body
    problem = orjson.loads(body)
    assert problem["errors"][0]["path"] == "headers.X-Correlation-ID"
    assert got["x-correlation-id"].isascii() and len(got["x-correlation-id"]) == 32  # a fresh one, safe to echo


async def test_valid_utf8_in_a_header_is_taken(harness: GatewayHarness, submission: Make) -> None:
    key_value = "khóa-hồ-sơ-1".encode()  # an idempotency key in Vietnamese: valid UTF-8
    status, _, body = await raw(
        harness, "POST", "/v1/dossiers", [key(), ("Idempotency-Key", key_value)], orjson.dumps(submission(0))
    )
    assert status == 202, body


@pytest.mark.parametrize("path", [b"/v1/dossiers/%FF%FE", b"/v1/bundles/%C3%28"])
async def test_a_path_that_is_not_utf8_is_a_missing_resource(harness: GatewayHarness, path: bytes) -> None:
    status, got, body = await raw(harness, "GET", path.decode("latin-1"), [key()])
    assert status == 404, body
    assert got["content-type"].startswith("application/problem+json")
    assert orjson.loads(body)["type"] == "urn:lienthong:problem:not-found"
