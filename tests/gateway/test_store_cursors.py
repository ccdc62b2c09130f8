"""Feed cursors in the SQLite store: durable, forward only, one per consumer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.store import SqliteStore


async def test_a_cursor_starts_at_zero_moves_forward_only_and_survives_a_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        assert await store.feed_cursor("portal-push") == 0
        await store.advance_feed_cursor("portal-push", 7)
        await store.advance_feed_cursor("portal-push", 5)  # a late, older acknowledgement changes nothing
        await store.advance_feed_cursor("other", 2)
        assert (await store.feed_cursor("portal-push"), await store.feed_cursor("other")) == (7, 2)
    finally:
        await store.close()
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        assert await store.feed_cursor("portal-push") == 7
    finally:
        await store.close()


async def test_writes_that_add_events_call_the_listeners(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    calls: list[int] = []
    store.on_events(lambda: calls.append(1))
    try:
        await store.expire_supplements(datetime.now(UTC))
        assert calls == [1]
        await store.advance_feed_cursor("portal-push", 1)  # no event: nobody is woken
        assert calls == [1]
    finally:
        await store.close()
