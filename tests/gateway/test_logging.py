"""Logs: JSON lines with a correlation id; secrets and personal ids never appear in clear."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from gateway import logging as glog
from tests.gateway.conftest import GatewayHarness


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    stream = io.StringIO()
    glog.configure("info", json=True, stream=stream)
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    glog.reset()


def test_masking_of_fields_and_free_text(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    log = structlog.get_logger("t")
    log.info(
        "x",
        personal_id="079090001234",
        api_key="lt_secret",
        note="citizen 001305012345 asked",
        nested={"authorization": "Bearer abc", "soDinhDanh": "079090001234"},
    )
    (line,) = log_lines()
    text = orjson.dumps(line).decode()
    assert "079090001234" not in text and "001305012345" not in text and "lt_secret" not in text
    assert line["personal_id"] == "079*******34"
    assert line["api_key"] == "***"
    assert line["note"] == "citizen 001*******45 asked"
    assert line["nested"]["authorization"] == "***"


@pytest.mark.parametrize("json", [True, False])
def test_tracebacks_are_masked_too(json: bool) -> None:
    stream = io.StringIO()
    glog.configure("info", json=json, stream=stream)
    try:
        try:
            raise ValueError("no citizen 079090001234 in the register")
        except ValueError:
            structlog.get_logger("t").exception("lookup_failed")  # outside a loop: written at once
    finally:
        glog.reset()
    text = stream.getvalue()
    assert "ValueError: no citizen 079*******34 in the register" in text
    assert "079090001234" not in text


async def test_one_line_per_request_and_outbound_call(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]], log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    body = submission(0)
    query = {
        "personal_id": body["applicant"]["personal_id"],
        "full_name": body["applicant"]["full_name"],
        "date_of_birth": body["applicant"]["date_of_birth"],
    }
    resp = await harness.client.post(
        "/v1/lookups/identity-verification", json=query, headers=harness.headers(**{"X-Correlation-ID": "corr-123"})
    )
    assert resp.status == 200
    assert resp.headers["X-Correlation-ID"] == "corr-123"
    lines = [ln for ln in log_lines() if ln.get("correlation_id") == "corr-123"]
    events = [ln["event"] for ln in lines]
    assert events.count("request") == 1
    assert events.count("outbound") == 1
    request = next(ln for ln in lines if ln["event"] == "request")
    assert request["status"] == 200 and request["client"] == "centre-hanoi" and request["ms"] >= 0
    outbound = next(ln for ln in lines if ln["event"] == "outbound")
    assert outbound["agency"] == "police" and outbound["status"] == 200
    assert body["applicant"]["personal_id"] not in orjson.dumps(lines).decode()


def test_the_json_line_is_what_the_processor_chain_would_render() -> None:
    # render_json does in one step what structlog's processors did one after another.
    chain = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        glog.mask_processor,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=lambda obj, **kw: orjson.dumps(obj, **kw).decode()),
    ]
    events: list[dict[str, Any]] = [
        {"event": "request", "path": "/v1/dossiers/079090001234", "status": 200, "ms": 1.5, "client": None},
        {"event": "x", "token": None, "secret": 42, "note": "ids 001305012345 and 123456789", "flag": True},
        {"event": "y", "data": {"soDinhDanh": "079090001234", "items": ["call 079090001234", 3]}, "ids": ("a", "b")},
        {"event": "z", "personal_id": "079090001234", "where": Path("/tmp/079090001234"), "short": "12345678"},
    ]
    structlog.contextvars.bind_contextvars(correlation_id="corr-079090001234")
    try:
        for method in ("info", "warn", "exception"):
            for event in events:
                expected = dict(event)
                for proc in chain:
                    expected = proc(None, method, expected)  # type: ignore[assignment]
                got = orjson.loads(glog.render_json(None, method, dict(event)))
                want = orjson.loads(expected)  # type: ignore[arg-type]
                assert got.pop("timestamp")[:16] == want.pop("timestamp")[:16]
                assert list(got) == list(want) and got == want
    finally:
        structlog.contextvars.clear_contextvars()


async def test_lines_of_one_loop_turn_are_written_together_and_in_order() -> None:
    stream = io.StringIO()
    glog.configure("info", json=True, stream=stream)
    try:
        structlog.get_logger("a").info("first")
        structlog.get_logger("b").info("second")
        structlog.get_logger("a").info("third")
        assert stream.getvalue() == ""  # not yet: at the end of this turn of the loop
        await asyncio.sleep(0)
        assert [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["first", "second", "third"]
    finally:
        glog.reset()


def test_lines_outside_the_loop_are_written_at_once() -> None:
    stream = io.StringIO()
    glog.configure("info", json=True, stream=stream)
    try:
        structlog.get_logger("a").info("now")
        assert orjson.loads(stream.getvalue())["event"] == "now"
    finally:
        glog.reset()


def test_identifiers_are_never_masked_and_ids_in_free_text_are(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    uuid = "3fa85f64-5717-4562-b3fc-123456789012"  # a last group of 12 digits, as 1 UUID in ~300 has
    log = structlog.get_logger("t")
    structlog.contextvars.bind_contextvars(correlation_id="c0ffee-123456789012")
    try:
        log.info(
            "x",
            dossier_id=uuid,
            job="job-123456789",
            note=f"dossier {uuid} (000.00.01.H26-261205-000123456) for citizen 079090001234. Call 0912345678",
            path=f"/v1/dossiers/{uuid}/documents/123456789012",
            version="1.123456789.2",
        )
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = log_lines()
    assert line["correlation_id"] == "c0ffee-123456789012"
    assert line["dossier_id"] == uuid and line["job"] == "job-123456789"
    assert line["note"] == f"dossier {uuid} (000.00.01.H26-261205-000123456) for citizen 079*******34. Call 091*****78"
    assert line["path"] == f"/v1/dossiers/{uuid}/documents/123*******12"
    assert line["version"] == "1.123456789.2"


def test_names_phones_and_secrets_in_text_are_masked(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    structlog.get_logger("t").info(
        "x",
        full_name="Nguyễn Văn An",
        phone="0912345678",
        detail="login password=hunter2 then X-Api-Key: demo-operator-key-Pq5t and Authorization: Bearer abc.def",
        body='{"client_secret": "s3cr3t-value", "ok": 1}',
    )
    (line,) = log_lines()
    text = orjson.dumps(line).decode()
    for secret in ("hunter2", "demo-operator-key-Pq5t", "abc.def", "s3cr3t-value", "Văn", "0912345678"):
        assert secret not in text, secret
    assert line["full_name"] == "N*** V*** A***"
    assert line["phone"] == "091*****78"
    assert line["detail"] == "login password=*** then X-Api-Key: *** and Authorization: Bearer ***"
    assert line["body"] == '{"client_secret": "***", "ok": 1}'


def test_standard_library_lines_are_json_and_masked(log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """aiohttp, asyncssh, zeep and asyncio log through the standard library: same pipeline, same masking."""
    structlog.contextvars.bind_contextvars(correlation_id="corr-1")
    try:
        logging.getLogger("asyncssh").info("Auth for user %s with password=%s", "land", "hunter2")
        try:
            raise ValueError("bad header for citizen 079090001234")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
        logging.getLogger("zeep.transports").debug("not at info level")
    finally:
        structlog.contextvars.clear_contextvars()
    ssh, server = log_lines()
    assert ssh == {
        "event": "Auth for user land with password=***",
        "correlation_id": "corr-1",
        "logger": "asyncssh",
        "level": "info",
        "timestamp": ssh["timestamp"],
    }
    assert server["logger"] == "aiohttp.server" and server["level"] == "error"
    assert "ValueError: bad header for citizen 079*******34" in server["exception"]
    assert "079090001234" not in orjson.dumps(server).decode()


async def test_a_malformed_request_is_one_json_line(
    harness: GatewayHarness, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.client.port)
    writer.write(b"GET /v1/dossiers/079090001234 HTTP/1.1\r\nHost: x\r\nX-Api-Key demo\x01key\r\n\r\n")
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert b" 400 " in status
    await asyncio.sleep(0.05)
    lines = log_lines()  # each parsed as JSON by the fixture: a plain traceback would fail here
    server = [ln for ln in lines if ln.get("logger", "").startswith("aiohttp")]
    assert server, lines
    text = orjson.dumps(lines).decode()
    assert "079090001234" not in text and "demo\\x01key" not in text and "x01key" not in text


async def test_lines_from_other_threads_are_whole_and_none_is_lost(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    def write(n: int) -> None:
        for i in range(200):
            logging.getLogger("zeep.transports").warning("thread %d line %d", n, i)

    loop_log = structlog.get_logger("t")
    threads = [asyncio.to_thread(write, n) for n in range(4)]
    for i in range(200):
        loop_log.info("loop", i=i)
        if i == 100:
            await asyncio.gather(*threads)
    await asyncio.sleep(0)
    lines = log_lines()  # each parsed as JSON
    assert len(lines) == 1000
    assert sum(ln["event"] == "loop" for ln in lines) == 200
