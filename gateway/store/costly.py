"""A read that scans whole tables, shared and reused in proportion to its cost.

The operators' overview counts dossiers by status and jobs by state: a scan of both tables, about a third
of a second at a million dossiers, and every open operator console asks for it every 2 s. Callers that
come while a count runs share it; an answer that took longer than `slow` seconds is reused while it is
younger than `reuse` times what it took, so counting keeps at most about 1/`reuse` of a reader thread
busy however many consoles are open. A quicker answer is never reused: a store of up to a few hundred
thousand dossiers always shows current counts (and the benchmark, which watches them, exact ones).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CostlyRead(Generic[T]):
    def __init__(self, read: Callable[[], Awaitable[T]], *, slow: float = 0.25, reuse: float = 20.0) -> None:
        self.read, self.slow, self.reuse = read, slow, reuse
        self._last: tuple[float, float, T] | None = None  # (started, seconds taken, answer)
        self._running: asyncio.Task[T] | None = None

    async def get(self) -> T:
        if self._last is not None:
            started, took, answer = self._last
            if took > self.slow and time.monotonic() - started < self.reuse * took:
                return answer
        if self._running is None:
            self._running = asyncio.create_task(self._read())
            # Its failure reaches every caller waiting; retrieved here too, for when none is left.
            self._running.add_done_callback(lambda t: t.cancelled() or t.exception())
        # A caller that gives up (its request cancelled) leaves the read to the others.
        return await asyncio.shield(self._running)

    async def _read(self) -> T:
        started = time.monotonic()
        try:
            answer = await self.read()
        finally:
            self._running = None
        self._last = (started, time.monotonic() - started, answer)
        return answer
