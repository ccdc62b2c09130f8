"""The listener's limits, over raw TCP on loopback: a cap on open connections, request headers that must
arrive in time, and a request body that arrives too slowly (408): an upload's too, which its handler
streams itself, with a deadline of its own and no pause longer than a body's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from gateway.api.keys import INTAKE, STORE
from gateway.app import create_app
from gateway.config import Config, load_config
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.server import ListenerSite, start_listener
from tests.gateway.pki import conf_copy

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"


@pytest.fixture
async def listener(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch, unused_tcp_port_factory: Callable[[], int]
) -> AsyncIterator[ListenerSite]:
    def conf() -> Path:
        folder = conf_copy(tmp_path / "conf", gateway="[documents]\nupload_timeout = 2.0")
        text = (folder / "gateway.toml").read_text(encoding="utf-8")
        text = text.replace("[server]\n", "[server]\nmax_connections = 3\nheader_timeout = 0.5\n", 1)
        text = text.replace("[limits]\n", "[limits]\nbody_timeout = 0.5\n", 1)
        (folder / "gateway.toml").write_text(text, encoding="utf-8")
        return folder

    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    config = await asyncio.to_thread(lambda: load_config(conf(), registry))
    runner, site = await start_listener(create_app(config, registry), config, unused_tcp_port_factory())
    try:
        yield site
    finally:
        await runner.cleanup()


async def connect(site: ListenerSite) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", site.port)


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response: status, headers, body (by Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("Content-Length", "0"))), 10)
    return int(lines[0].split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection (within 10 s): EOF, or a reset."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:
        return True


async def test_past_the_cap_a_connection_gets_503_and_a_freed_place_is_taken_again(listener: ListenerSite) -> None:
    held = [await connect(listener) for _ in range(3)]
    for _, w in held:  # each one in use: a request answered, the connection kept alive
        w.write(HEALTH)
    for r, _ in held:
        assert (await answer(r))[0] == 200
    reader, writer = await connect(listener)
    status, headers, body = await answer(reader)
    assert status == 503 and headers["Retry-After"] == "1" and headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/problem+json"
    assert orjson.loads(body)["type"] == "urn:lienthong:problem:unavailable"
    assert await closed(reader)
    writer.close()
    assert listener.listener is not None and listener.listener.refused == 1
    held[0][1].close()
    await held[0][1].wait_closed()
    for _ in range(100):  # the place frees once the server has seen the close
        if listener.listener.open < 3:
            break
        await asyncio.sleep(0.02)
    reader, writer = await connect(listener)
    writer.write(HEALTH)
    assert (await answer(reader))[0] == 200
    for _, w in [*held[1:], (reader, writer)]:
        w.close()


async def test_headers_that_trickle_in_lose_the_connection(listener: ListenerSite) -> None:
    reader, writer = await connect(listener)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gat")  # ... and nothing more
    assert await closed(reader)
    writer.close()
    assert listener.listener is not None and listener.listener.timed_out == 1
    # A connection that says nothing at all goes the same way.
    reader, writer = await connect(listener)
    assert await closed(reader)
    writer.close()


async def test_a_body_that_comes_too_slowly_gets_408(listener: ListenerSite) -> None:
    reader, writer = await connect(listener)
    writer.write(
        b"POST /v1/admin/deliveries/replay HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"X-Api-Key: " + DEMO_KEYS["operator"].encode() + b'\r\nContent-Length: 100\r\n\r\n{"ids": ['
    )
    status, _, body = await answer(reader)
    assert status == 408
    problem = orjson.loads(body)
    assert problem["type"] == "urn:lienthong:problem:request-timeout"
    assert problem["detail"] == "the request body did not arrive within 0.5 s"
    assert await closed(reader)
    writer.close()
    # Nothing was replayed, and the connection's place is free again.
    assert listener.listener is not None
    for _ in range(100):
        if listener.listener.open == 0:
            break
        await asyncio.sleep(0.02)
    assert listener.listener.open == 0


def upload_head(length: int) -> bytes:
    return (
        b"POST /v1/documents HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/pdf\r\n"
        b"X-Api-Key: " + DEMO_KEYS["centre-hanoi"].encode() + f"\r\nContent-Length: {length}\r\n\r\n".encode()
    )


def documents_left(tmp_path: Path) -> list[Path]:
    """Whatever the document store holds beside the database: files, temporary ones included."""
    return [p for p in (tmp_path / "documents").rglob("*") if p.is_file()]


async def test_an_upload_that_stops_half_way_gets_408_and_leaves_nothing(
    listener: ListenerSite, tmp_path: Path
) -> None:
    reader, writer = await connect(listener)
    writer.write(upload_head(200_000) + b"%PDF-1.7\n" + b"x" * 50_000)  # ... and then nothing
    status, _, body = await answer(reader)
    assert status == 408
    problem = orjson.loads(body)
    assert problem["type"] == "urn:lienthong:problem:request-timeout"
    assert problem["detail"] == "the document stopped arriving within 0.5 s"
    assert await closed(reader)
    writer.close()
    assert await asyncio.to_thread(documents_left, tmp_path) == []


async def test_an_upload_that_trickles_past_its_deadline_gets_408_and_leaves_nothing(
    listener: ListenerSite, tmp_path: Path
) -> None:
    reader, writer = await connect(listener)
    writer.write(upload_head(1_000_000) + b"%PDF-1.7\n")
    answered = asyncio.ensure_future(answer(reader))
    while not answered.done():  # never a pause as long as a body's deadline, never the whole document
        writer.write(b"y" * 100)
        await asyncio.wait([answered], timeout=0.1)
    status, _, body = answered.result()
    assert status == 408
    assert orjson.loads(body)["detail"] == "the document did not arrive within 2 s"
    writer.close()
    assert await asyncio.to_thread(documents_left, tmp_path) == []


async def test_an_upload_in_time_is_streamed_whatever_the_body_deadline(listener: ListenerSite) -> None:
    reader, writer = await connect(listener)
    document = b"%PDF-1.7\n" + b"z" * 99_990
    writer.write(upload_head(len(document)))
    for i in range(0, len(document), 10_000):  # longer in all than a body may take: an upload is not a body
        writer.write(document[i : i + 10_000])
        await asyncio.sleep(0.1)
    status, _, body = await answer(reader)
    assert status == 201, body
    assert orjson.loads(body)["size"] == len(document)
    writer.close()


async def test_the_listener_is_what_serve_runs(listener: ListenerSite) -> None:
    assert isinstance(listener, web.BaseSite) and listener.name.startswith("http://127.0.0.1:")
    reader, writer = await connect(listener)
    writer.write(HEALTH)
    status, _, body = await answer(reader)
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    writer.close()


async def test_the_writer_batch_and_the_submissions_in_progress_come_from_the_configuration(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch, unused_tcp_port_factory: Callable[[], int]
) -> None:
    """A writer batch smaller than the submissions in progress: one group commits while the next is taken in."""
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))

    def configs() -> tuple[Config, Config]:
        folder = conf_copy(tmp_path / "conf")
        defaults = load_config(folder, registry)
        text = (folder / "gateway.toml").read_text(encoding="utf-8")
        text = text.replace("[store]\n", "[store]\nbatch_max = 5\n", 1)
        text = text.replace("[limits]\n", "[limits]\nsubmissions_in_progress = 3\n", 1)
        (folder / "gateway.toml").write_text(text, encoding="utf-8")
        return defaults, load_config(folder, registry)

    defaults, config = await asyncio.to_thread(configs)
    assert (defaults.gateway.store.batch_max, defaults.gateway.limits.submissions_in_progress) == (64, 256)
    app = create_app(config, registry)
    runner, _ = await start_listener(app, config, unused_tcp_port_factory())
    try:
        assert app[INTAKE].in_progress == 3
        assert app[STORE].batch_max == 5
    finally:
        await runner.cleanup()
