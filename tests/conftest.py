"""Suite-wide fixtures: every test runs with a detector of blocking calls on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

from gateway import logging as glog
from gateway.sandbox.launcher import free_port

glog.reset()  # tests that log without configuring: structlog's defaults, with plain tracebacks


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    # Only calls made from a running event loop count; thread pools and start-up code are free.
    with blockbuster_ctx(excluded_modules=["structlog", "_pytest", "pytest_aiohttp", "pytest_asyncio"]) as bb:
        yield bb


@pytest.fixture
def unused_tcp_port() -> int:
    return free_port()


@pytest.fixture
def unused_tcp_port_factory() -> Callable[[], int]:
    # Ports for servers that bind a moment later (often in another process), taken out of the range the
    # kernel draws outgoing connections' source ports from, so none of those can take one first.
    return free_port
