"""Stopping background tasks without ever hanging a shutdown.

Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives just as what it waits for
completes (libraries call it inside our tasks: asyncssh's `connect` does). A loop task hit that way
runs on, and `gather()` on it waits forever. `cancel_and_wait` cancels again until the tasks end and
gives up, loudly, after a grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import structlog

log = structlog.get_logger("lienthong")

RECANCEL_EVERY = 0.5  # seconds a cancelled task gets to finish its cleanup before it is cancelled again


async def cancel_and_wait(tasks: Collection[asyncio.Future[Any]], *, grace: float = 10.0, what: str = "tasks") -> bool:
    """Cancel `tasks` and wait for them to end; True if they all did within `grace` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        left = deadline - loop.time()
        if left <= 0:
            names = sorted(t.get_name() if isinstance(t, asyncio.Task) else repr(t) for t in pending)
            log.error("tasks_not_stopping", what=what, tasks=names, grace=grace)
            return False
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, left))
    return True
