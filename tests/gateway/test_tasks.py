"""Stopping background tasks is bounded, even for a task that swallows its cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from structlog.testing import capture_logs

from gateway.tasks import cancel_and_wait


async def _swallows_once(log: list[str]) -> None:
    """What a loop does when Python 3.11's wait_for swallowed the cancellation meant to stop it."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(60)
    log.append("ran on")
    await asyncio.Event().wait()  # e.g. its next poll interval: only a second cancellation ends it


async def test_a_task_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    log: list[str] = []
    task = asyncio.create_task(_swallows_once(log), name="poller")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await cancel_and_wait([task], grace=5)
    assert task.cancelled() and log == ["ran on"]
    assert loop.time() - started < 2


async def test_a_task_that_never_stops_is_given_up_on_loudly() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        assert not await cancel_and_wait([task], grace=0.3, what="test tasks")
    assert [(e["event"], e["tasks"]) for e in logs] == [("tasks_not_stopping", ["stubborn"])]
    released.set()  # let it end, so the test's own loop can close
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert task.done()


async def test_finished_and_empty_collections() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    assert await cancel_and_wait([done])
    assert await cancel_and_wait([])
