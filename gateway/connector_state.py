"""What a connector keeps across restarts: small named values (a polling cursor, the last token seen),
per agency endpoint. The gateway gives each connector one backed by its store (`ConnectorContext.state`);
tests and tools outside the gateway get one in memory.

A value is JSON (None, bool, number, text, lists and dicts of those). `put` returns once the value is
durable; a connector that moves a cursor writes it before it acts on the move.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.store.base import Store

MAX_KEY = 200


def _checked(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise ValueError(f"a connector state key is text of 1 to {MAX_KEY} characters, not {key!r}")
    return key


class ConnectorState(ABC):
    @abstractmethod
    async def get(self, key: str) -> Any | None:
        """The value stored under `key`, or None."""

    @abstractmethod
    async def put(self, key: str, value: Any) -> None:
        """Store `value` under `key` durably. TypeError if it is not JSON."""


class MemoryConnectorState(ConnectorState):
    """Kept in memory: for tests, and for a connector run outside the gateway."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> Any | None:
        raw = self.values.get(_checked(key))
        return None if raw is None else orjson.loads(raw)  # a copy: the caller cannot change what is kept

    async def put(self, key: str, value: Any) -> None:
        self.values[_checked(key)] = orjson.dumps(value)


class StoreConnectorState(ConnectorState):
    """Kept in the gateway's store, under this agency and endpoint."""

    def __init__(self, store: Store, agency: str, endpoint: str) -> None:
        self.store = store
        self.agency = agency
        self.endpoint = endpoint

    async def get(self, key: str) -> Any | None:
        return await self.store.connector_state(self.agency, self.endpoint, _checked(key))

    async def put(self, key: str, value: Any) -> None:
        await self.store.set_connector_state(self.agency, self.endpoint, _checked(key), value)
