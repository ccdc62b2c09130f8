"""Logs: JSON lines with a correlation id; secrets and personal ids never appear in clear."""

from __future__ import annotations

import asyncio
import io
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
    structlog.reset_defaults()


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
        structlog.reset_defaults()
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
        structlog.reset_defaults()


def test_lines_outside_the_loop_are_written_at_once() -> None:
    stream = io.StringIO()
    glog.configure("info", json=True, stream=stream)
    try:
        structlog.get_logger("a").info("now")
        assert orjson.loads(stream.getvalue())["event"] == "now"
    finally:
        structlog.reset_defaults()
