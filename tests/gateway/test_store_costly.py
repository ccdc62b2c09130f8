"""A costly read (the overview's counts): shared by the callers that come while it runs, reused in
proportion to what it took, never reused when it was quick, and never cancelled by one caller leaving."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.costly import CostlyRead


class Counter:
    """A read that takes `seconds` and answers how many times it has run."""

    def __init__(self, seconds: float, fail: bool = False) -> None:
        self.seconds, self.fail, self.runs = seconds, fail, 0

    async def __call__(self) -> int:
        self.runs += 1
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise OSError("disk I/O error")
        return self.runs


async def test_callers_that_come_while_it_runs_share_it() -> None:
    read = Counter(0.05)
    costly = CostlyRead(read)
    assert await asyncio.gather(*(costly.get() for _ in range(5))) == [1] * 5
    assert read.runs == 1


async def test_a_slow_answer_is_reused_in_proportion_to_its_cost_then_read_again() -> None:
    read = Counter(0.05)
    costly = CostlyRead(read, slow=0.02, reuse=4.0)  # reused for about 4 x 0.05 = 0.2 s
    assert await costly.get() == 1
    assert await costly.get() == 1
    await asyncio.sleep(0.25)
    assert await costly.get() == 2


async def test_a_quick_answer_is_always_read_afresh() -> None:
    read = Counter(0.0)
    costly = CostlyRead(read, slow=0.02)
    assert [await costly.get() for _ in range(3)] == [1, 2, 3]


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    read = Counter(0.03, fail=True)
    costly = CostlyRead(read, slow=0.0)
    results = await asyncio.gather(costly.get(), costly.get(), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results) and read.runs == 1
    read.fail = False
    assert await costly.get() == 2


async def test_a_caller_that_leaves_does_not_cancel_the_read_for_the_others() -> None:
    read = Counter(0.05)
    costly = CostlyRead(read)
    leaving = asyncio.create_task(costly.get())
    staying = asyncio.create_task(costly.get())
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving
