"""Connector state: small JSON values a connector keeps across restarts, in the store or in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.connector_state import ConnectorState, MemoryConnectorState, StoreConnectorState
from gateway.store import SqliteStore


async def _round_trip(state: ConnectorState) -> None:
    assert await state.get("event_cursor") is None
    await state.put("event_cursor", 41)
    await state.put("event_cursor", 42)  # the last write wins
    await state.put("token", {"etag": 'W/"5"', "seen": ["a", "b"], "since": None})
    assert await state.get("event_cursor") == 42
    kept = await state.get("token")
    assert kept == {"etag": 'W/"5"', "seen": ["a", "b"], "since": None}
    kept["seen"].append("c")  # a copy: what is kept does not change with it
    assert (await state.get("token"))["seen"] == ["a", "b"]
    with pytest.raises(TypeError):
        await state.put("bad", object())
    with pytest.raises(ValueError, match="connector state key"):
        await state.get("")
    with pytest.raises(ValueError, match="connector state key"):
        await state.put("k" * 201, 1)


async def test_in_memory() -> None:
    await _round_trip(MemoryConnectorState())


async def test_in_the_store_per_endpoint_and_across_a_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gw.db")
    await store.open()
    try:
        await _round_trip(StoreConnectorState(store, "tax", "national"))
        other = StoreConnectorState(store, "tax", "hanoi")  # another endpoint of the same agency
        assert await other.get("event_cursor") is None
        await other.put("event_cursor", 7)
        assert await StoreConnectorState(store, "land", "national").get("event_cursor") is None
    finally:
        await store.close()
    store = SqliteStore(tmp_path / "gw.db")
    await store.open()
    try:
        values: dict[str, Any] = {
            endpoint: await StoreConnectorState(store, "tax", endpoint).get("event_cursor")
            for endpoint in ("national", "hanoi")
        }
        assert values == {"national": 42, "hanoi": 7}
        assert await store.connector_state("tax", "national", "bad") is None  # the refused value never got in
    finally:
        await store.close()
