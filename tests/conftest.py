"""Suite-wide fixtures: every test runs with a detector of blocking calls on the event loop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    # Only calls made from a running event loop count; thread pools and start-up code are free.
    with blockbuster_ctx(excluded_modules=["structlog", "_pytest", "pytest_aiohttp", "pytest_asyncio"]) as bb:
        yield bb
