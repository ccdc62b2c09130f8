"""SQLite store (WAL): the embedded default, for one gateway process.

Writes go through one writer thread that groups whatever is queued into one transaction (writer.py),
so a burst of submissions pays one fsync (synchronous=FULL) instead of one each; nobody's future
resolves before the commit that holds their write, and one failing write spoils no other.
Reads use their own connections in a small thread pool (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson

from contracts import Dossier, DossierStatus, StatusEvent
from contracts.bundle import BundleView
from gateway.connector import AgencyUpdate, SubmitReceipt
from gateway.errors import ServiceUnavailable
from gateway.store import bundles, reads, rows, supplements, updates
from gateway.store.accept import CreateDossier
from gateway.store.base import (
    CreateOutcome,
    FeedItem,
    JobRecord,
    JobState,
    NewBundle,
    NewDossier,
    Store,
    UpdateOutcome,
)
from gateway.store.events import accepted_by_agency
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

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._reader()))

    # -- dossiers -----------------------------------------------------------------------------------

    async def create_dossier(self, new: NewDossier) -> CreateOutcome:
        did, inserted = await self._write(CreateDossier(new, self._codes))
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
        return await self._write(lambda conn: supplements.expire(conn, now))

    async def feed(self, *, after: int, limit: int, client_id: str | None = None) -> list[FeedItem]:
        return await self._read(lambda conn: reads.feed(conn, after, limit, client_id))

    async def apply_update(self, update: AgencyUpdate, *, actor: str) -> UpdateOutcome:
        return await self._write(lambda conn: updates.apply_update(conn, update, actor))

    # -- bundles and supplements -------------------------------------------------------------------

    async def create_bundle(self, new: NewBundle) -> tuple[UUID, bool]:
        return await self._write(lambda conn: bundles.create(conn, self._codes, new))

    async def get_bundle(self, bundle_id: str) -> BundleView | None:
        return await self._read(lambda conn: bundles.view(conn, bundle_id))

    async def cancel_bundle(self, bundle_id: UUID, *, actor: str) -> int:
        return await self._write(lambda conn: bundles.cancel(conn, bundle_id, actor))

    async def retry_bundle(self, bundle_id: UUID) -> int:
        return await self._write(lambda conn: bundles.retry(conn, bundle_id))

    async def answer_supplement(self, dossier_id: UUID, answer: dict[str, Any], *, actor: str) -> Dossier:
        await self._write(lambda conn: supplements.record_answer(conn, dossier_id, answer, actor))
        dossier = await self.get_dossier(str(dossier_id))
        assert dossier is not None
        return dossier

    # -- jobs ---------------------------------------------------------------------------------------

    async def claim_jobs(self, owner: str, free: dict[str, int], lease_seconds: float) -> list[JobRecord]:
        def op(conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
            now = time.time()
            leased: list[sqlite3.Row] = []
            for agency, n in free.items():
                if n > 0:
                    leased += conn.execute(
                        "UPDATE jobs SET state = 'leased', lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
                        "updated_at = ? WHERE id IN (SELECT id FROM jobs WHERE agency = ? AND state = 'pending' "
                        "AND next_at <= ? ORDER BY next_at LIMIT ?) RETURNING *",
                        (owner, now + lease_seconds, now, agency, now, n),
                    ).fetchall()
            if not leased:
                return [], []
            # Each job's dossier in the same trip: the dispatcher needs it for the delivery.
            ids = orjson.dumps([r["dossier_id"] for r in leased]).decode()
            dossiers = conn.execute(
                f"{reads.DOSSIER_WITH_JOB} WHERE d.id IN (SELECT value FROM json_each(?))", (ids,)
            ).fetchall()
            return leased, dossiers

        leased, dossier_rows = await self._write(op)
        by_id = {r["id"]: r for r in dossier_rows}
        leased.sort(key=lambda r: (r["next_at"], r["id"]))
        return [
            dataclasses.replace(rows.job(r), dossier=reads.dossier_with_job(by_id[r["dossier_id"]])) for r in leased
        ]

    async def complete_job(self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT j.dossier_id, j.step, d.status FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
                "WHERE j.id = ? AND j.state = 'leased' AND j.lease_owner = ?",
                (job_id, owner),
            ).fetchone()
            if row is None:
                return False  # the lease was lost; whoever holds it now finishes the job
            did, step, status = row
            conn.execute(
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, "
                "updated_at = ? WHERE id = ?",
                (time.time(), job_id),
            )
            if step == "submit" and status == DossierStatus.RECEIVED:
                accepted_by_agency(conn, did, actor, receipt.agency_ref)
            elif receipt.agency_ref:
                conn.execute(
                    "UPDATE dossiers SET agency_ref = COALESCE(agency_ref, ?) WHERE id = ?", (receipt.agency_ref, did)
                )
            for upd in receipt.updates:
                updates.apply_update(conn, upd.model_copy(update={"dossier_id": UUID(did)}), actor)
            return True

        return await self._write(op)

    async def fail_job(self, job_id: int, owner: str, error: str, retry_at: float | None) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            state = "pending" if retry_at is not None else "dead"
            cur = conn.execute(
                "UPDATE jobs SET state = ?, next_at = COALESCE(?, next_at), lease_owner = NULL, "
                "lease_until = NULL, last_error = ?, updated_at = ? "
                "WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                (state, retry_at, error[:2000], time.time(), job_id, owner),
            )
            return cur.rowcount == 1

        return await self._write(op)

    async def release_leases(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            # An interrupted delivery keeps its place in the queue: ahead of jobs that became due after it.
            cur = conn.execute(
                "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, next_at = MIN(next_at, ?) "
                "WHERE state = 'leased'",
                (time.time(),),
            )
            return cur.rowcount

        return await self._write(op)

    async def replay_dead(self, job_ids: list[int] | None = None) -> int:
        def op(conn: sqlite3.Connection) -> int:
            sql = "UPDATE jobs SET state = 'pending', attempts = 0, next_at = ?, updated_at = ? WHERE state = 'dead'"
            args: list[Any] = [time.time(), time.time()]
            if job_ids is not None:
                sql += " AND id IN (SELECT value FROM json_each(?))"
                args.append(orjson.dumps(job_ids).decode())
            return conn.execute(sql, args).rowcount

        return await self._write(op)

    async def jobs(
        self, state: JobState | None = None, limit: int = 100, ids: list[int] | None = None
    ) -> list[JobRecord]:
        def fn(conn: sqlite3.Connection) -> list[JobRecord]:
            sql, args = "SELECT * FROM jobs WHERE 1=1", list[Any]()
            if state is not None:
                sql += " AND state = ?"
                args.append(state)
            if ids is not None:
                sql += " AND id IN (SELECT value FROM json_each(?))"
                args.append(orjson.dumps(ids).decode())
            cur = conn.execute(sql + " ORDER BY id LIMIT ?", (*args, limit))
            return [rows.job(r) for r in cur.fetchall()]

        return await self._read(fn)

    async def bundles_needing_action(self, limit: int = 50) -> list[BundleView]:
        return await self._read(lambda conn: bundles.needing_action(conn, limit))

    async def counts(self) -> dict[str, Any]:
        return await self._read(reads.counts)
