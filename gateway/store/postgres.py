"""PostgreSQL store: several gateway processes, on one machine or several, on one database.

It is the SQLite store's operations over another connection: the same SQL modules (accept.py, outbox.py,
audit.py, ...) run on a psycopg connection that translates their statements (dialect.py). Writes go
through the same group-commit writer thread (one connection per process, a burst shares a commit);
each write transaction first takes one advisory transaction lock of the database, as SQLite's
BEGIN IMMEDIATE takes its file's write lock, so dossier codes, idempotency keys and the audit chain's
head are as one writer leaves them, whichever process writes. Reads use a psycopg-pool of connections
from a few threads.

Across processes: jobs are leased (`FOR UPDATE SKIP LOCKED` in the claim) and a lease that ran out is
reclaimed by any process's dispatcher; a process that commits status events sends NOTIFY, and the others'
LISTEN wakes their feed consumers and dispatchers (they poll all the same); roles that must run in one
process at a time (an agency's poller, the portal pusher, the audit checkpoints) hold a session advisory
lock on a connection of their own (`hold_role`): when the process dies its connection closes, the lock
is released, and another process waiting for the role takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.errors import LienthongError
from gateway.store.dialect import KEEPALIVES, PgConnection
from gateway.store.migrations import migrate_postgres
from gateway.store.seals import AuditKey
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import redacted
from gateway.store.writer import GroupCommitWriter

T = TypeVar("T")
log = structlog.get_logger("lienthong.store")
CHANNEL = "lienthong_events"
ROLE_RETRY = 2.0  # seconds between tries at a role another process holds, and between checks of one held


class StoreUnreachable(LienthongError):
    """The database of `[store] url` did not answer (or refused the connection) at start-up."""


class ReconnectingConnection(PgConnection):
    """The writer's connection: a transaction begun on a connection the server dropped (a restart, a
    network fault) opens a new one first; the batch that was on the old one failed with StorageUnavailable."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(psycopg.connect(url, autocommit=True, **KEEPALIVES))

    def execute(self, sql: str, params: Any = None) -> Any:
        if sql == "BEGIN IMMEDIATE" and self.broken:
            self.raw.close()
            self.raw = psycopg.connect(self.url, autocommit=True, **KEEPALIVES)
            PgConnection.__init__(self, self.raw)
        return super().execute(sql, params)


class PostgresStore(SqliteStore):
    # Other processes hold leases on this database: a process starting releases none of theirs (the
    # leases of one that died run out, and reclaim_expired_leases makes their jobs ready again).
    shared = True

    def __init__(
        self,
        url: str,
        *,
        batch_max: int = 64,
        audit_key: AuditKey | None = None,
        readers: int = 4,
        group_commit_wait: float = 0.0,
        lookup_record_wait: float = 0.0,
    ) -> None:
        super().__init__(url, batch_max=batch_max, audit_key=audit_key)
        self.url = url
        self._writer = GroupCommitWriter(
            batch_max,
            name="lienthong-pg-writer",
            on_batch=self._batch_ended,
            linger=group_commit_wait,
            patience=lookup_record_wait,
        )
        self._codes = self._writer.codes
        self._pool: ConnectionPool[Any] | None = None
        self._reader_count = readers
        self._listener: asyncio.Task[None] | None = None
        self._notify: asyncio.Task[None] | None = None
        self._notify_again = False
        self._remote_listeners: list[Callable[[], None]] = []
        self._closing = False
        self._me = f"{os.getpid()}-{secrets.token_hex(4)}"  # our NOTIFYs, which our LISTEN hears too

    async def open(self) -> None:
        self._closing = False
        self._readers = ThreadPoolExecutor(self._reader_count, thread_name_prefix="lienthong-pg-reader")
        await self._writer.start(self._open_writer, self._close_writer)
        pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self._reader_count + 1,
            kwargs={"autocommit": True, **KEEPALIVES},
            open=False,
            name="lienthong-pg-readers",
        )
        await asyncio.to_thread(pool.open, True, 30.0)
        self._pool = pool
        self._listener = asyncio.create_task(self._listen(), name="store-listen")

    def _open_writer(self) -> Any:
        try:
            conn = ReconnectingConnection(self.url)
        except psycopg.OperationalError as exc:
            raise StoreUnreachable(f"cannot reach the PostgreSQL store {redacted(self.url)}: {exc}".strip()) from None
        try:
            migrate_postgres(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_writer(self, conn: Any) -> None:
        conn.close()

    async def close(self) -> None:
        self._closing = True
        for task in (self._listener, self._notify):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listener = self._notify = None
        await self._writer.stop()
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)
            self._pool = None
        if self._readers is not None:
            self._readers.shutdown(wait=False)

    # -- plumbing -----------------------------------------------------------------------------------

    def _fault(self, exc: BaseException) -> bool:
        # The server gone, a connection lost, the pool exhausted, the disk full: not the operation's fault.
        return isinstance(exc, psycopg.OperationalError | psycopg.errors.DiskFull | PoolTimeout)

    async def _read(self, fn: Callable[[Any], T]) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("the store is not open")

        def run() -> T:
            with pool.connection() as raw:
                return fn(PgConnection(raw))

        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, run)
        except Exception as exc:
            if self._fault(exc):
                raise self._unavailable(exc, "read from") from exc
            raise

    async def _write_events(self, op: Callable[[Any], T]) -> T:
        try:
            return await super()._write_events(op)
        finally:
            self._announce()

    # -- wake-ups across processes ------------------------------------------------------------------

    def on_events(self, listener: Callable[[], None]) -> None:
        super().on_events(listener)
        self._remote_listeners.append(listener)

    def on_remote_events(self, listener: Callable[[], None]) -> None:
        """Called when another process committed status events or jobs (a NOTIFY): e.g. a dispatcher's wake."""
        self._remote_listeners.append(listener)

    def _announce(self) -> None:
        """NOTIFY the other processes, once for a burst of commits (one in flight, one more after it)."""
        if self._closing:
            return
        if self._notify is not None and not self._notify.done():
            self._notify_again = True
            return
        self._notify = asyncio.create_task(self._send_notify(), name="store-notify")

    async def _send_notify(self) -> None:
        while True:
            self._notify_again = False
            try:
                await self._read(lambda conn: conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, self._me)))
            except Exception as exc:  # the others poll all the same
                log.warning("store_notify_failed", error=f"{type(exc).__name__}: {exc}")
                return
            if not self._notify_again:
                return

    async def _listen(self) -> None:
        me = self._me
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True, **KEEPALIVES) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for note in conn.notifies():
                        if note.payload != me:
                            for listener in self._remote_listeners:
                                listener()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("store_listen_lost", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(ROLE_RETRY)

    # -- roles held by one process at a time --------------------------------------------------------

    async def hold_role(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        key = zlib.crc32(f"lienthong-role:{name}".encode())
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True, **KEEPALIVES) as conn:
                    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                    row = await cur.fetchone()
                    if row is None or not row[0]:
                        await asyncio.sleep(ROLE_RETRY)
                        continue
                    log.info("role_taken", role=name, pid=os.getpid())
                    await _run_while_connected(conn, run)
                    return
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                log.warning("role_lost", role=name, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(ROLE_RETRY)


async def _run_while_connected(conn: psycopg.AsyncConnection[Any], run: Callable[[], Awaitable[None]]) -> None:
    """Run the role while its lock's connection lives; a lost connection (the lock with it) stops it."""
    task = asyncio.ensure_future(run())
    try:
        while not task.done():
            await asyncio.wait([task], timeout=ROLE_RETRY)
            if not task.done():
                await conn.execute("SELECT 1")  # raises when the connection, and so the lock, is gone
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
