"""The group-commit writer: how it gathers writes into one commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.store import writer as writer_module
from gateway.store.writer import GroupCommitWriter


def _setup(path: Path) -> Any:
    def setup() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        return conn

    return setup


def _insert(v: int) -> Any:
    return lambda conn: conn.execute("INSERT INTO t (v) VALUES (?)", (v,)).rowcount


async def test_writes_arriving_while_the_writer_lingers_share_its_commit(tmp_path: Path) -> None:
    w = GroupCommitWriter(256, linger=0.5)
    await w.start(_setup(tmp_path / "db"), lambda conn: conn.close())
    try:
        first = [asyncio.ensure_future(w.write(_insert(i))) for i in range(2)]
        await asyncio.sleep(0.01)  # the writer has taken the first two and waits for more
        late = asyncio.ensure_future(w.write(_insert(2)))
        assert await asyncio.gather(*first, late) == [1, 1, 1]
        assert w.commits == 1
    finally:
        await w.stop()


async def test_a_lone_write_never_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(writer_module, "_sleep", slept.append)
    w = GroupCommitWriter(256, linger=0.5)
    await w.start(_setup(tmp_path / "db"), lambda conn: conn.close())
    try:
        for i in range(3):
            assert await w.write(_insert(i)) == 1
        assert w.commits == 3
        assert slept == []
    finally:
        await w.stop()


async def test_without_linger_a_batch_is_what_was_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(writer_module, "_sleep", slept.append)
    w = GroupCommitWriter(256)
    await w.start(_setup(tmp_path / "db"), lambda conn: conn.close())
    try:
        assert await asyncio.gather(*(w.write(_insert(i)) for i in range(10))) == [1] * 10
        assert slept == []
    finally:
        await w.stop()
