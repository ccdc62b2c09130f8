"""Group commit: one writer thread runs every queued write of the SQLite store in one transaction.

The thread takes whatever is queued when it is free (up to `batch_max` writes), so a burst pays one
commit (one fsync) instead of one each, and no caller's future resolves before the commit that holds
its write. It loops on its own queue: finishing one batch and starting the next costs no trip through
the event loop.

Every statement costs this thread a hand-over of the GIL, which it must win back from a busy event
loop: statements, not rows, are what a batch must save. So a batch first runs in one transaction
without savepoints, and writes of one kind that know how (`run_many`) are written together, a few
statements for all of them. Should anything fail, the transaction is rolled back and the batch run
again one write at a time, each in its own savepoint, so one failing write spoils no other. Writes are
plain database work and may therefore run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_sleep = time.sleep  # the writer thread's own, so a test can watch it without touching time.sleep
Op = Callable[[sqlite3.Connection], Any]
_Results = list[tuple[bool, Any]]


class _Item:
    """A queued write: its caller's future, whether it may wait for company, whether a batch took it."""

    __slots__ = ("fut", "op", "patient", "taken")

    def __init__(self, op: Op, fut: asyncio.Future[Any], patient: bool) -> None:
        self.op, self.fut, self.patient, self.taken = op, fut, patient, False


class WriterClosed(RuntimeError):
    """A write came when the store was not open (or was closing)."""


class Batchable(ABC):
    """A write that can also run together with others of its kind (`run_many`), fewer statements for all.

    `run_many` returns one result per write, in order, or raises: the batch then runs one write at a
    time, calling each alone.
    """

    @abstractmethod
    def __call__(self, conn: sqlite3.Connection) -> Any: ...

    @classmethod
    @abstractmethod
    def run_many(cls, conn: sqlite3.Connection, ops: Sequence[Any]) -> list[Any]: ...


class CodeSequences:
    """Dossier-code numbers handed out within one transaction: read once per (unit, day), written once.

    Nothing is kept between transactions, so another process writing the same file stays correct.
    """

    def __init__(self) -> None:
        self._read: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[str, str], int] = {}

    def next(self, conn: sqlite3.Connection, unit: str, day: str) -> int:
        key = (unit, day)
        last = self._last.get(key)
        if last is None:
            row = conn.execute("SELECT last FROM code_sequences WHERE unit = ? AND day = ?", key).fetchone()
            last = self._read[key] = int(row[0]) if row is not None else 0
        self._last[key] = last + 1
        return last + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._last)

    def restore(self, snapshot: dict[tuple[str, str], int]) -> None:
        self._last = snapshot

    def flush(self, conn: sqlite3.Connection) -> None:
        for (unit, day), last in self._last.items():
            if last != self._read.get((unit, day)):
                conn.execute(
                    "INSERT INTO code_sequences (unit, day, last) VALUES (?, ?, ?) "
                    "ON CONFLICT (unit, day) DO UPDATE SET last = excluded.last",
                    (unit, day, last),
                )

    def reset(self) -> None:
        self._read.clear()
        self._last.clear()


class GroupCommitWriter:
    def __init__(
        self,
        batch_max: int,
        name: str = "lienthong-sqlite-writer",
        linger: float = 0.0,
        on_batch: Callable[[Exception | None], None] | None = None,
        patience: float = 0.0,
    ) -> None:
        self.batch_max = batch_max
        # Writes that come together are many callers at once: waiting a moment for more of them makes one
        # commit (one fsync, one audit seal) serve more. A lone write never waits.
        self.linger = linger
        # A patient write's caller has other work to do before it needs the commit (a look-up's record
        # commits while the agency answers). Under load, a batch of patient writes only waits for more
        # until one of their callers needs its answer (`PendingWrite`), a write that cannot wait comes,
        # or `patience` has passed: one commit then serves the look-ups of several agency round trips.
        self.patience = patience
        self._last_batch = 0  # writes in the last batch: 1 means no load, so nothing to wait for
        # Set when a caller waits on a write no batch has taken yet, or a write that cannot wait is queued:
        # the writer stops gathering. Queued writes themselves do not wake it (a thread switch each).
        self._urgent = threading.Event()
        self._gathering = False  # the writer waits for company: only then must a write that cannot wait wake it
        self.name = name
        self.on_batch = on_batch  # told, in the writer thread, how each batch ended: None when it committed
        self.codes = CodeSequences()
        self.commits = 0
        self.writes = 0  # committed: writes / commits is the size of the batches
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False

    async def start(
        self, setup: Callable[[], sqlite3.Connection], teardown: Callable[[sqlite3.Connection], None]
    ) -> None:
        """Open the connection in the writer thread (`setup`); its errors are raised here."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._closing = False
        self._thread = threading.Thread(
            target=self._main, args=(loop, setup, teardown, ready, self._stopped), name=self.name, daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._thread = None  # it has ended: writes must fail fast, not wait on it
            raise

    async def stop(self) -> None:
        """Commit what is queued, then close the connection and end the thread."""
        if self._thread is None or self._stopped is None:
            return
        self._closing = True  # writes queued from now on would come after the end mark: refuse them
        self._queue.put(None)
        self._urgent.set()
        await self._stopped
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self.submit(op)
        return result

    def submit(self, op: Callable[[sqlite3.Connection], T], *, patient: bool = False) -> PendingWrite:
        """Queue a write; await the answer to have its result once it has committed. A patient write may
        wait for company until its caller awaits it."""
        if self._thread is None or self._closing:
            raise WriterClosed("the store is not open")
        item = _Item(op, asyncio.get_running_loop().create_future(), patient)
        self._queue.put(item)
        if not patient and self._gathering:
            self._urgent.set()
        return PendingWrite(self, item)

    # -- the writer thread --------------------------------------------------------------------------

    def _main(
        self,
        loop: asyncio.AbstractEventLoop,
        setup: Callable[[], sqlite3.Connection],
        teardown: Callable[[sqlite3.Connection], None],
        ready: asyncio.Future[None],
        stopped: asyncio.Future[None],
    ) -> None:
        try:
            conn = setup()
        except Exception as exc:
            _post(loop, _settle, ready, None, exc)
            _post(loop, _settle, stopped, None, None)
            return
        _post(loop, _settle, ready, None, None)
        try:
            self._serve(loop, conn)
        finally:
            try:
                teardown(conn)
            finally:
                _post(loop, _settle, stopped, None, None)

    def _serve(self, loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = self._drain(batch)
            if (
                not stopping
                and self.patience > 0
                and all(i.patient for i in batch)
                and (len(batch) > 1 or self._last_batch > 1)
            ):
                # Under load, patient writes only: gather until a caller waits or patience runs out. The
                # flag is raised before looking at the queue once more, so a write that cannot wait and
                # came meanwhile is either seen here or wakes the wait.
                self._gathering = True
                stopping = self._drain(batch)
                if not stopping and all(i.patient for i in batch):
                    self._urgent.wait(self.patience)
                self._gathering = False
            elif not stopping and self.linger > 0 and 1 < len(batch) < self.batch_max:
                _sleep(self.linger)
            # From here, a caller waiting on a write of this batch has nothing to hurry: the flag then
            # speaks only of writes still queued, and those are taken now.
            for item in batch:
                item.taken = True
            self._urgent.clear()
            stopping = self._drain(batch, taken=True) or stopping
            self._last_batch = len(batch)
            ops = [item.op for item in batch]
            try:
                results: _Results | None = self._run_batch(conn, ops)
                error: Exception | None = None
            except Exception as exc:  # the commit itself failed: nothing in the batch is durable
                results, error = None, exc
            if self.on_batch is not None:
                self.on_batch(error)
            if not _post(loop, _resolve, batch, results, error):
                return  # the loop is gone (the process is ending): nobody waits for these answers

    def _drain(self, batch: list[_Item], taken: bool = False) -> bool:
        """Take what is queued; True when the end mark came."""
        while len(batch) < self.batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            item.taken = taken
            batch.append(item)
        return False

    def _run_batch(self, conn: sqlite3.Connection, ops: list[Op]) -> _Results:
        if conn.in_transaction:  # a storage fault interrupted the last batch's rollback: start clean
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                out = self._run_together(conn, ops)
            except Exception:
                conn.execute("ROLLBACK")
                self.codes.reset()
                conn.execute("BEGIN IMMEDIATE")
                out = self._run_isolated(conn, ops)
            self.codes.flush(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self.codes.reset()
        self.commits += 1
        self.writes += len(ops)
        return out

    def _run_together(self, conn: sqlite3.Connection, ops: list[Op]) -> _Results:
        # PostgreSQL: pipelined, since any error here rolls the batch back whole (SQLite has no round trips).
        pipelined = getattr(conn, "pipelined", None)
        with pipelined() if pipelined is not None else contextlib.nullcontext():
            return self._run_each(conn, ops)

    def _run_each(self, conn: sqlite3.Connection, ops: list[Op]) -> _Results:
        out: list[tuple[bool, Any] | None] = [None] * len(ops)
        for i, op in enumerate(ops):
            if out[i] is not None:
                continue
            if isinstance(op, Batchable):
                kind = type(op)
                group = [j for j in range(i, len(ops)) if type(ops[j]) is kind]
                results = kind.run_many(conn, [ops[j] for j in group])
                for j, value in zip(group, results, strict=True):
                    out[j] = (True, value)
            else:
                out[i] = (True, op(conn))
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]

    def _run_isolated(self, conn: sqlite3.Connection, ops: list[Op]) -> _Results:
        out: _Results = []
        for op in ops:
            codes = self.codes.snapshot()
            conn.execute("SAVEPOINT op")
            try:
                out.append((True, op(conn)))
                conn.execute("RELEASE op")
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                self.codes.restore(codes)
                out.append((False, exc))
        return out


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> bool:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed
        return False
    return True


def _settle(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _resolve(batch: list[_Item], results: _Results | None, error: Exception | None) -> None:
    for i, item in enumerate(batch):
        fut = item.fut
        if fut.done():  # its caller was cancelled; the write stands
            continue
        if results is None:
            fut.set_exception(error or RuntimeError("the write batch failed"))
            continue
        ok, value = results[i]
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class PendingWrite:
    """A queued write's commit: awaiting it tells the writer, when no batch has taken it yet, that its
    caller now waits (a patient write then stops waiting for company)."""

    __slots__ = ("_item", "_writer")

    def __init__(self, writer: GroupCommitWriter, item: _Item) -> None:
        self._writer, self._item = writer, item

    def __await__(self) -> Any:
        if not self._item.taken and not self._item.fut.done():
            self._writer._urgent.set()
        return self._item.fut.__await__()

    def done(self) -> bool:
        return self._item.fut.done()
