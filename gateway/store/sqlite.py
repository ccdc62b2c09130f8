"""SQLite store (WAL): the embedded default, for one gateway process.

Writes go through one writer thread that groups whatever is queued into one transaction (writer.py),
so a burst of submissions pays one fsync (synchronous=FULL) instead of one each; nobody's future
resolves before the commit that holds their write, and one failing write spoils no other.
Reads use their own connections in a small thread pool (WAL lets them run beside the writer).

This class owns the connections and hands each operation to the writer or a reader; the SQL lives in
the modules beside it: accept.py (new dossiers), events.py and updates.py (status changes), outbox.py
(delivery jobs), bundles.py, supplements.py, reads.py (dossiers, the feed, counts), cursors.py (how far
feed consumers got), audit.py (the hash-chained log of accesses to dossiers) and pauses.py (operators'
pauses of agencies).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from contracts import Dossier, StatusEvent
from contracts.bundle import BundleView
from gateway.connector import AgencyUpdate, SubmitReceipt
from gateway.errors import ServiceUnavailable
from gateway.store import audit, bundles, cursors, outbox, pauses, reads, rows, supplements, updates
from gateway.store import audit as _audit  # the methods below take an argument named audit
from gateway.store.accept import CreateDossier
from gateway.store.base import (
    AuditCheck,
    AuditEntry,
    AuditRecord,
    CreateOutcome,
    FeedItem,
    JobRecord,
    JobState,
    NewBundle,
    NewDossier,
    Pause,
    Store,
    UpdateOutcome,
)
from gateway.store.migrations import migrate
from gateway.store.writer import CodeSequences, GroupCommitWriter

T = TypeVar("T")


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, batch_max: int = 256, exclusive: bool = False) -> None:
        self.path = str(path)
        self.batch_max = batch_max
        self.exclusive = exclusive  # the serving process locks the file; CLI tools share it
        self._writer = GroupCommitWriter(batch_max)
        self._codes: CodeSequences = self._writer.codes
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock_fd: int | None = None
        self._event_listeners: list[Callable[[], None]] = []

    @property
    def commits(self) -> int:
        """Grouped commits so far, for metrics and the benchmark."""
        return self._writer.commits

    # -- life cycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="lienthong-sqlite-reader")
        await self._writer.start(self._open_writer, self._close_writer)

    def _open_writer(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self.exclusive:
            fd = os.open(self.path + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ServiceUnavailable(f"another gateway process already serves {self.path}") from None
            self._lock_fd = fd
        try:
            conn = _connect(self.path)
            migrate(conn)
        except BaseException:
            self._release_lock()
            raise
        return conn

    async def close(self) -> None:
        await self._writer.stop()  # queued writes commit before the writer goes
        if self._readers is not None:
            self._readers.shutdown(wait=False)

    def _close_writer(self, conn: sqlite3.Connection) -> None:
        conn.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- plumbing -----------------------------------------------------------------------------------

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.write(op)

    async def _write_events(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A write that may append status events: feed consumers hear of it once it has committed."""
        try:
            return await self._writer.write(op)
        finally:
            for listener in self._event_listeners:
                listener()

    def on_events(self, listener: Callable[[], None]) -> None:
        self._event_listeners.append(listener)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._reader()))

    # -- dossiers, their events, the feed -----------------------------------------------------------

    async def create_dossier(self, new: NewDossier) -> CreateOutcome:
        did, inserted = await self._write_events(CreateDossier(new, self._codes))
        if inserted is not None:
            # Built from the rows just committed, as a read would: no second trip to the database.
            return CreateOutcome(rows.dossier(*inserted), True)
        dossier = await self.get_dossier(did)
        assert dossier is not None
        return CreateOutcome(dossier, False)

    async def get_dossier(self, ref: str) -> Dossier | None:
        return await self._read(lambda conn: reads.dossier(conn, ref))

    async def list_dossiers(self, *, client_id: str | None, status: int | None, limit: int) -> list[Dossier]:
        return await self._read(lambda conn: reads.dossiers(conn, client_id, status, limit))

    async def events(self, dossier_id: UUID) -> list[StatusEvent]:
        return await self._read(lambda conn: reads.events(conn, dossier_id))

    async def expire_supplements(self, now: datetime) -> list[UUID]:
        return await self._write_events(lambda conn: supplements.expire(conn, now))

    async def feed(self, *, after: int, limit: int, client_id: str | None = None) -> list[FeedItem]:
        return await self._read(lambda conn: reads.feed(conn, after, limit, client_id))

    async def feed_cursor(self, name: str) -> int:
        return await self._read(lambda conn: cursors.get(conn, name))

    async def advance_feed_cursor(self, name: str, seq: int) -> None:
        await self._write(lambda conn: cursors.advance(conn, name, seq))

    async def apply_update(self, update: AgencyUpdate, *, actor: str) -> UpdateOutcome:
        return await self._write_events(lambda conn: updates.apply_update(conn, update, actor))

    # -- bundles and supplements --------------------------------------------------------------------

    async def create_bundle(self, new: NewBundle) -> tuple[UUID, bool]:
        return await self._write_events(lambda conn: bundles.create(conn, self._codes, new))

    async def get_bundle(self, bundle_id: str) -> BundleView | None:
        return await self._read(lambda conn: bundles.view(conn, bundle_id))

    async def cancel_bundle(self, bundle_id: UUID, *, actor: str) -> int:
        return await self._write_events(lambda conn: bundles.cancel(conn, bundle_id, actor))

    async def retry_bundle(self, bundle_id: UUID) -> int:
        return await self._write_events(lambda conn: bundles.retry(conn, bundle_id))

    async def answer_supplement(self, dossier_id: UUID, answer: dict[str, Any], *, actor: str) -> Dossier:
        await self._write_events(lambda conn: supplements.record_answer(conn, dossier_id, answer, actor))
        dossier = await self.get_dossier(str(dossier_id))
        assert dossier is not None
        return dossier

    # -- jobs ---------------------------------------------------------------------------------------

    async def claim_jobs(
        self,
        owner: str,
        free: dict[str, int],
        lease_seconds: float,
        endpoints: Mapping[str, Mapping[str, int]] | None = None,
    ) -> list[JobRecord]:
        leased, dossier_rows = await self._write(
            lambda conn: outbox.claim(conn, owner, free, lease_seconds, endpoints)
        )
        return outbox.claimed(leased, dossier_rows)

    async def unclaim_job(self, job_id: int, owner: str) -> bool:
        return await self._write(lambda conn: outbox.unclaim(conn, job_id, owner))

    async def complete_job(self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str) -> bool:
        return await self._write_events(lambda conn: outbox.complete(conn, job_id, owner, receipt, actor))

    async def fail_job(self, job_id: int, owner: str, error: str, retry_at: float | None) -> bool:
        return await self._write_events(lambda conn: outbox.fail(conn, job_id, owner, error, retry_at))

    async def release_leases(self) -> int:
        return await self._write(outbox.release_leases)

    async def replay_dead(
        self,
        job_ids: list[int] | None = None,
        *,
        agency: str | None = None,
        endpoint: str | None = None,
        since: float | None = None,
        audit: AuditEntry | None = None,
    ) -> int:
        if audit is not None:
            _audit.prepare(audit)  # a bad entry fails here, before the writer
        return await self._write(lambda conn: outbox.replay_dead(conn, job_ids, agency, endpoint, since, audit))

    async def jobs(
        self,
        state: JobState | None = None,
        limit: int = 100,
        ids: list[int] | None = None,
        *,
        agency: str | None = None,
        since: float | None = None,
    ) -> list[JobRecord]:
        return await self._read(lambda conn: outbox.jobs(conn, state, limit, ids, agency, since))

    async def pending_by_endpoint(self) -> dict[tuple[str, str], int]:
        return await self._read(outbox.pending_by_endpoint)

    # -- pauses -------------------------------------------------------------------------------------

    async def pauses(self) -> list[Pause]:
        return await self._read(pauses.active)

    async def pause(self, pause: Pause, audit: AuditEntry) -> None:
        _audit.prepare(audit)
        await self._write(lambda conn: pauses.put(conn, pause, audit))

    async def resume(self, agency: str, endpoint: str | None, audit: AuditEntry) -> list[Pause]:
        _audit.prepare(audit)
        return await self._write(lambda conn: pauses.remove(conn, agency, endpoint, audit))

    # -- operators ----------------------------------------------------------------------------------

    async def bundles_needing_action(self, limit: int = 50) -> list[BundleView]:
        return await self._read(lambda conn: bundles.needing_action(conn, limit))

    async def counts(self) -> dict[str, Any]:
        return await self._read(reads.counts)

    # -- the audit log ------------------------------------------------------------------------------

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        prepared = [audit.prepare(e) for e in entries]  # a bad entry fails here, before the writer
        if prepared:
            await self._write(audit.AppendAudit(prepared))

    async def audit_log(
        self, *, after: int = 0, limit: int = 100, dossier_id: str | None = None, client_id: str | None = None
    ) -> list[AuditRecord]:
        return await self._read(lambda conn: audit.log(conn, after, limit, dossier_id, client_id))

    async def refused_accesses(self, limit: int = 20) -> list[AuditRecord]:
        return await self._read(lambda conn: audit.refused(conn, limit))

    async def verify_audit(self) -> AuditCheck:
        # One reader trip per page, so a long log neither fills memory nor holds a reader thread throughout.
        walk = audit.Walk()
        while True:
            rows = await self._read(functools.partial(audit.page, after=walk.seq, limit=audit.PAGE))
            if not rows:
                return walk.result()
            bad = walk.check(rows)
            if bad is not None:
                return bad
