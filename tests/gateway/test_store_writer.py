"""The group-commit writer: how it gathers writes into one commit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store import writer as writer_module
from gateway.store.writer import GroupCommitWriter, PendingWrite


def _setup(path: Path) -> Any:
    def setup() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        return conn

    return setup


@contextlib.asynccontextmanager
async def _writer(path: Path, **kwargs: Any) -> AsyncIterator[GroupCommitWriter]:
    """A started writer on a fresh database, stopped at the end."""
    w = GroupCommitWriter(256, **kwargs)
    await w.start(_setup(path), lambda conn: conn.close())
    try:
        yield w
    finally:
        await w.stop()


def _insert(v: int) -> Any:
    return lambda conn: conn.execute("INSERT INTO t (v) VALUES (?)", (v,)).rowcount


async def test_writes_arriving_while_the_writer_lingers_share_its_commit(tmp_path: Path) -> None:
    async with _writer(tmp_path / "db", linger=0.5) as w:
        first = [asyncio.ensure_future(w.write(_insert(i))) for i in range(2)]
        await asyncio.sleep(0.01)  # the writer has taken the first two and waits for more
        late = asyncio.ensure_future(w.write(_insert(2)))
        assert await asyncio.gather(*first, late) == [1, 1, 1]
        assert w.commits == 1


async def test_a_lone_write_never_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(writer_module, "_sleep", slept.append)
    async with _writer(tmp_path / "db", linger=0.5) as w:
        for i in range(3):
            assert await w.write(_insert(i)) == 1
        assert w.commits == 3
        assert slept == []


async def test_without_linger_a_batch_is_what_was_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(writer_module, "_sleep", slept.append)
    async with _writer(tmp_path / "db") as w:
        assert await asyncio.gather(*(w.write(_insert(i)) for i in range(10))) == [1] * 10
        assert slept == []


async def _without_waiting(pending: list[PendingWrite], timeout: float = 2.0) -> None:
    """Let the writes commit on their own: polled, never awaited (awaiting tells the writer to hurry)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not all(p.done() for p in pending):
        assert loop.time() < end, "the patient writes did not commit on their own"
        await asyncio.sleep(0.005)


async def test_patient_writes_under_load_share_one_commit_until_a_caller_waits(tmp_path: Path) -> None:
    async with _writer(tmp_path / "db", patience=5.0) as w:  # far longer than the test: only the caller's wait ends it
        # Two queued at once: load. The writer keeps gathering patient writes while their callers work.
        early = [w.submit(_insert(i), patient=True) for i in range(2)]
        await asyncio.sleep(0.05)
        later = [w.submit(_insert(i), patient=True) for i in range(2, 5)]
        await asyncio.sleep(0.05)
        assert not any(p.done() for p in early + later)
        assert w.commits == 0
        # One caller needs its commit: the batch commits, every write of it with one commit.
        assert await asyncio.wait_for(_result(early[0]), 2.0) == 1
        await _without_waiting(early + later)
        assert w.commits == 1
        assert [await p for p in early[1:] + later] == [1] * 4


async def _result(pending: PendingWrite) -> Any:
    return await pending


async def test_a_lone_patient_write_commits_at_once(tmp_path: Path) -> None:
    async with _writer(tmp_path / "db", patience=5.0) as w:
        for i in range(3):  # no load: nothing to wait for, even though nobody awaits it
            await _without_waiting([w.submit(_insert(i), patient=True)])
        assert w.commits == 3


async def test_a_write_that_cannot_wait_ends_the_patient_gathering(tmp_path: Path) -> None:
    async with _writer(tmp_path / "db", patience=5.0) as w:
        patient = [w.submit(_insert(i), patient=True) for i in range(2)]
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(w.write(_insert(9)), 2.0) == 1  # a submission, say
        await _without_waiting(patient)
        assert w.commits == 1


async def test_patience_runs_out(tmp_path: Path) -> None:
    async with _writer(tmp_path / "db", patience=0.05) as w:
        patient = [w.submit(_insert(i), patient=True) for i in range(2)]
        await _without_waiting(patient)  # nobody awaited them
        assert w.commits == 1


async def test_stop_commits_patient_writes_still_gathering(tmp_path: Path) -> None:
    w = GroupCommitWriter(256, patience=5.0)
    await w.start(_setup(tmp_path / "db"), lambda conn: conn.close())
    patient = [w.submit(_insert(i), patient=True) for i in range(3)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(w.stop(), 2.0)
    assert [await p for p in patient] == [1, 1, 1]
