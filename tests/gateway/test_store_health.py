"""Storage faults: 503 with Retry-After while the store cannot commit, /readyz not ready, one log line per
episode, and recovery without a restart; nothing answered 202 is missing from the file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.api.keys import STORE
from gateway.store.health import Episodes
from tests.gateway.conftest import GatewayHarness
from tests.gateway.faults import StoreFaults
from tests.gateway.test_api_errors import assert_problem

Make = Callable[[int], dict[str, Any]]


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append(("error", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.lines.append(("warning", event, kw))


def test_one_line_when_an_episode_starts_and_one_when_it_ends() -> None:
    now = [100.0]
    lines = Lines()
    episodes = Episodes(settle=1.0, clock=lambda: now[0], logger=lines)
    episodes.committed()  # healthy: nothing to say
    for _ in range(500):
        episodes.failed(sqlite3.OperationalError("database or disk is full"))
    now[0] += 0.5
    episodes.committed()  # one small commit got through half a second later: not over yet
    episodes.failed(sqlite3.OperationalError("database or disk is full"))
    now[0] += 2.0
    episodes.committed()
    episodes.committed()
    assert [(level, event) for level, event, _ in lines.lines] == [
        ("error", "storage_fault"),
        ("warning", "storage_recovered"),
    ]
    assert lines.lines[1][2] == {"seconds": 2.5, "failed_operations": 501, "episode": 1}
    assert not episodes.faulty
    episodes.failed(OSError("I/O error"))
    assert episodes.faulty and episodes.episodes == 2 and len(lines.lines) == 3


async def test_a_full_disk_answers_503_and_the_gateway_recovers_without_a_restart(
    store_faults: StoreFaults, harness: GatewayHarness, submission: Make, tmp_path: Path
) -> None:
    store = harness.app[STORE]
    store.episodes.settle = 0.0
    assert (await harness.client.get("/readyz")).status == 200
    store_faults.disk_full()
    for i in range(5):
        resp = await harness.client.post(
            "/v1/dossiers", json=submission(i), headers=harness.headers(**{"Idempotency-Key": f"k-{i}"})
        )
        problem = await assert_problem(resp, 503, "storage-unavailable")
        assert resp.headers["Retry-After"] == "5"
        assert problem["detail"].startswith("the gateway cannot write to its store now")
    ready = await harness.client.get("/readyz")
    await assert_problem(ready, 503, "storage-unavailable")
    assert ready.headers["Retry-After"] == "5"
    # No data leaves without its audit record, which cannot be written either: 503 too.
    listed = await harness.client.get("/v1/dossiers", headers=harness.headers())
    await assert_problem(listed, 503, "storage-unavailable")
    # Nothing of the refused submissions was kept (the store still reads).
    assert await store.list_dossiers(client_id=None, status=None, limit=10) == []
    assert (store.episodes.episodes, store.episodes.faulty) == (1, True)  # one episode, however many requests

    store_faults.clear()  # space is freed: no restart
    assert (await harness.client.get("/readyz")).status == 200
    assert not store.episodes.faulty
    accepted = []
    for i in range(5):  # the centres send the same requests again
        resp = await harness.client.post(
            "/v1/dossiers", json=submission(i), headers=harness.headers(**{"Idempotency-Key": f"k-{i}"})
        )
        assert resp.status == 202, await resp.text()
        accepted.append((await resp.json())["id"])
    # Every 202 is in the file, read by a connection of its own (committed rows only).
    assert await asyncio.to_thread(count_in_file, store.path, accepted) == 5


def count_in_file(path: str, ids: list[str]) -> int:
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(ids))
        return int(conn.execute(f"SELECT COUNT(*) FROM dossiers WHERE id IN ({marks})", ids).fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/v1/bundles", "/v1/dossiers"])
async def test_a_storage_fault_is_never_a_500(
    store_faults: StoreFaults, harness: GatewayHarness, submission: Make, path: str
) -> None:
    store_faults.disk_full()
    body: Any = submission(0) if path == "/v1/dossiers" else {"bundle": "none", "applicant": {}}
    resp = await harness.client.post(path, json=body, headers=harness.headers())
    assert resp.status in (422, 503), await resp.text()  # a bundle the catalog lacks is refused before any write
    audit = await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))
    assert audit.status == 200  # reading the log needs no write
