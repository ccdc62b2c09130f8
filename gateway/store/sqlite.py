"""SQLite store (WAL): the embedded default, for one gateway process.

Writes go through one writer thread that groups whatever is queued into one transaction (writer.py),
so a burst of submissions pays one fsync (synchronous=FULL) instead of one each; nobody's future
resolves before the commit that holds their write, and one failing write spoils no other.
Reads use their own connections in a small thread pool (WAL lets them run beside the writer).

A storage fault (a full disk, an I/O error, the file locked by another process for longer than the busy
timeout) fails only the writes of the batch it hits: they raise StorageUnavailable (503, Retry-After),
nothing of them is kept, and the writer goes on with the next batch, so the store recovers by itself
when the fault clears. health.py logs one line per episode.

This class owns the connections and hands each operation to the writer or a reader; the SQL lives in
the modules beside it: accept.py (new dossiers), events.py and updates.py (status changes), outbox.py
(delivery jobs), bundles.py, supplements.py, reads.py (dossiers, the feed, counts), cursors.py (how far
feed consumers got), connector_state.py (what connectors keep across restarts), refusals.py (the national
portal's refusals, kept on dossiers), audit.py (the hash-chained log of accesses to dossiers) and
pauses.py (operators' pauses of agencies).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson

from contracts import Dossier, StatusEvent
from contracts.appointment import Appointment, AppointmentEvent, BookedSlot
from contracts.bundle import BundleView
from contracts.dossier import PortalRefusal
from contracts.payment import Payment
from gateway.connector import AgencyUpdate, SubmitReceipt
from gateway.errors import ServiceUnavailable, StorageUnavailable
from gateway.store import (
    appointments,
    attempts,
    audit,
    bundles,
    checkpoints,
    connector_state,
    cursors,
    deliveries,
    documents,
    gauges,
    health,
    kpis,
    outbox,
    pauses,
    payments,
    reads,
    refusals,
    retention,
    rows,
    supplements,
    updates,
)
from gateway.store import audit as _audit  # the methods below take an argument named audit
from gateway.store.accept import CreateDossier
from gateway.store.attempts import AttemptInfo, AttemptQuery, AttemptRecord
from gateway.store.base import (
    AuditCheck,
    AuditEntry,
    AuditRecord,
    AuditWalk,
    Completion,
    CreateOutcome,
    DeliveryFilter,
    DocumentRef,
    DossierBrief,
    FeedItem,
    JobRecord,
    JobState,
    NewBundle,
    NewDossier,
    NewUpload,
    Pause,
    ReplayKey,
    Store,
    StoredCheckpoint,
    UpdateOutcome,
    UpdateSource,
    UploadRecord,
)
from gateway.store.costly import CostlyRead
from gateway.store.filters import JobFilter
from gateway.store.migrations import migrate
from gateway.store.seals import AuditKey
from gateway.store.writer import CodeSequences, GroupCommitWriter, PendingWrite

T = TypeVar("T")

# Primary result codes that say the storage, not the operation, failed: a retry later may succeed.
_STORAGE_FAULTS = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
    }
)


def storage_fault(exc: BaseException) -> bool:
    """A full disk, an I/O error, a lock held too long: not the operation's fault (a constraint, a bug)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _STORAGE_FAULTS


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class SqliteStore(Store):
    def __init__(
        self,
        path: str | Path,
        *,
        batch_max: int = 64,
        exclusive: bool = False,
        audit_key: AuditKey | None = None,
        group_commit_wait: float = 0.0,
        lookup_record_wait: float = 0.0,
    ) -> None:
        self.path = str(path)
        self.audit_key = audit_key  # seals each batch of audit records (seals.py)
        self.batch_max = batch_max
        self.exclusive = exclusive  # the serving process locks the file; CLI tools share it
        self.episodes = health.Episodes()
        self._writer = GroupCommitWriter(
            batch_max, on_batch=self._batch_ended, linger=group_commit_wait, patience=lookup_record_wait
        )
        self._codes: CodeSequences = self._writer.codes
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock_fd: int | None = None
        self._event_listeners: list[Callable[[], None]] = []
        self._counts = CostlyRead(lambda: self._read(reads.counts))  # the overview's scans, shared

    @property
    def commits(self) -> int:
        """Grouped commits so far, for metrics and the benchmark."""
        return self._writer.commits

    @property
    def writes(self) -> int:
        """Writes those commits held (each a call's write: a submission, an update, a batch of records...)."""
        return self._writer.writes

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

    def _batch_ended(self, error: Exception | None) -> None:
        if error is None:
            self.episodes.committed()

    def _fault(self, exc: BaseException) -> bool:
        return storage_fault(exc)

    def _unavailable(self, exc: Exception, what: str) -> StorageUnavailable:
        self.episodes.failed(exc)
        return StorageUnavailable(
            f"the gateway cannot {what} its store now; nothing of this request was kept: send it again later"
        )

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._writer.write(op)
        except Exception as exc:
            if self._fault(exc):
                raise self._unavailable(exc, "write to") from exc
            raise

    async def _write_events(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """A write that may append status events: feed consumers hear of it once it has committed."""
        try:
            return await self._write(op)
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
        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._reader()))
        except Exception as exc:
            if self._fault(exc):
                raise self._unavailable(exc, "read from") from exc
            raise

    # -- dossiers, their events, the feed -----------------------------------------------------------

    async def create_dossier(self, new: NewDossier) -> CreateOutcome:
        did, inserted = await self._write_events(CreateDossier(new, self._codes))
        if inserted is not None:
            # Built from the rows just committed, as a read would: no second trip to the database.
            return CreateOutcome(rows.brief(*inserted), lambda: rows.dossier(*inserted), True)
        dossier = await self.get_dossier(did)
        assert dossier is not None
        return CreateOutcome(DossierBrief.of(dossier), dossier, False)

    async def get_dossier(self, ref: str) -> Dossier | None:
        return await self._read(lambda conn: reads.dossier(conn, ref))

    async def list_dossiers(
        self, *, client_id: str | None, status: int | None, limit: int, delivery: DeliveryFilter | None = None
    ) -> list[Dossier]:
        return await self._read(lambda conn: reads.dossiers(conn, client_id, status, limit, delivery))

    async def events(self, dossier_id: UUID) -> list[StatusEvent]:
        return await self._read(lambda conn: reads.events(conn, dossier_id))

    async def expire_supplements(self, now: datetime) -> list[UUID]:
        return await self._write_events(lambda conn: supplements.expire(conn, now))

    async def feed(self, *, after: int, limit: int, client_id: str | None = None) -> list[FeedItem]:
        return await self._read(lambda conn: reads.feed(conn, after, limit, client_id))

    async def record_portal_refusal(self, codes: Sequence[str], refusal: PortalRefusal) -> int:
        return await self._write(lambda conn: refusals.record(conn, codes, refusal))

    async def clear_portal_refusals(self, codes: Sequence[str]) -> int:
        return await self._write(lambda conn: refusals.clear(conn, codes))

    async def feed_cursor(self, name: str) -> int:
        return await self._read(lambda conn: cursors.get(conn, name))

    async def advance_feed_cursor(self, name: str, seq: int) -> None:
        await self._write(lambda conn: cursors.advance(conn, name, seq))

    async def connector_state(self, agency: str, endpoint: str, key: str) -> Any | None:
        return await self._read(lambda conn: connector_state.get(conn, agency, endpoint, key))

    async def set_connector_state(self, agency: str, endpoint: str, key: str, value: Any) -> None:
        encoded = orjson.dumps(value)  # TypeError here, in the caller, for a value that is not JSON
        await self._write(lambda conn: connector_state.put(conn, agency, endpoint, key, encoded))

    async def apply_updates(
        self, updates_: Sequence[AgencyUpdate], *, source: UpdateSource, replay: ReplayKey | None = None
    ) -> list[UpdateOutcome]:
        batch, calendar = list(updates_), self.calendar
        return await self._write_events(lambda conn: updates.apply_all(conn, batch, source, replay, calendar=calendar))

    # -- bundles and supplements --------------------------------------------------------------------

    async def create_bundle(self, new: NewBundle) -> tuple[UUID, bool]:
        return await self._write_events(lambda conn: bundles.create(conn, self._codes, new))

    async def get_bundle(self, bundle_id: str) -> BundleView | None:
        return await self._read(lambda conn: bundles.view(conn, bundle_id))

    async def cancel_bundle(self, bundle_id: UUID, *, actor: str) -> int:
        return await self._write_events(lambda conn: bundles.cancel(conn, bundle_id, actor))

    async def retry_bundle(self, bundle_id: UUID) -> int:
        return await self._write_events(lambda conn: bundles.retry(conn, bundle_id))

    async def answer_supplement(
        self, dossier_id: UUID, answer: dict[str, Any], *, actor: str, documents: Sequence[DocumentRef] = ()
    ) -> Dossier:
        calendar = self.calendar
        await self._write_events(
            lambda conn: supplements.record_answer(conn, dossier_id, answer, actor, documents, calendar=calendar)
        )
        dossier = await self.get_dossier(str(dossier_id))
        assert dossier is not None
        return dossier

    async def ask_for_documents(
        self, job_id: int, owner: str, items: list[str], note: str, attempt: AttemptInfo | None = None
    ) -> bool:
        calendar = self.calendar

        def ask(conn: sqlite3.Connection) -> bool:
            asked = supplements.ask_for_documents(conn, job_id, owner, items, note, calendar=calendar)
            if asked:
                attempts.record(conn, job_id, "documents-asked", attempt, error=note)
            return asked

        return await self._write_events(ask)

    # -- documents ----------------------------------------------------------------------------------

    async def create_upload(self, new: NewUpload) -> None:
        await self._write(lambda conn: documents.create_upload(conn, new))

    async def uploads(self, client_id: str, ids: Sequence[str]) -> dict[str, UploadRecord]:
        now = time.time()
        return await self._read(lambda conn: documents.uploads(conn, client_id, ids, now))

    async def expire_uploads(self, now: float) -> int:
        return await self._write(lambda conn: documents.expire_uploads(conn, now))

    async def documents_named(self, shas: Sequence[str]) -> set[str]:
        return await self._read(lambda conn: documents.named(conn, shas))

    async def document_content(self, sha256: str) -> bytes | None:
        return await self._read(lambda conn: documents.content(conn, sha256))

    async def sweep_documents(self, before: float) -> int:
        return await self._write(lambda conn: documents.sweep(conn, before))

    # -- jobs ---------------------------------------------------------------------------------------

    async def claim_jobs(
        self,
        owner: str,
        free: dict[str, int],
        lease_seconds: float,
        endpoints: Mapping[str, Mapping[str, int]] | None = None,
    ) -> list[JobRecord]:
        leased, dossier_rows, contents = await self._write(
            lambda conn: outbox.claim(conn, owner, free, lease_seconds, endpoints)
        )
        return outbox.claimed(leased, dossier_rows, contents)

    async def unclaim_job(self, job_id: int, owner: str) -> bool:
        return await self._write(lambda conn: outbox.unclaim(conn, owner, [job_id])) == 1

    async def complete_job(
        self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str, attempt: AttemptInfo | None = None
    ) -> Completion:
        calendar = self.calendar
        return await self._write_events(
            lambda conn: outbox.complete(conn, job_id, owner, receipt, actor, calendar=calendar, attempt=attempt)
        )

    async def fail_job(
        self, job_id: int, owner: str, error: str, retry_at: float | None, attempt: AttemptInfo | None = None
    ) -> bool:
        return await self._write_events(lambda conn: outbox.fail(conn, job_id, owner, error, retry_at, attempt))

    async def release_leases(self) -> int:
        return await self._write(outbox.release_leases)

    async def reclaim_expired_leases(self) -> int:
        return await self._write(outbox.reclaim_expired)

    async def unclaim_jobs(self, owner: str, job_ids: Sequence[int]) -> int:
        ids = list(job_ids)
        return await self._write(lambda conn: outbox.unclaim(conn, owner, ids))

    async def probe(self) -> None:
        await self._write(health.probe)

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
        key = self.audit_key
        return await self._write(lambda conn: outbox.replay_dead(conn, job_ids, agency, endpoint, since, audit, key))

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

    async def prune(
        self, agencies: Sequence[str], jobs_before: float, keys_before: datetime, batch: int
    ) -> retention.Pruned:
        keys = keys_before.astimezone(UTC).isoformat()
        chosen = await self._read(lambda conn: retention.choose(conn, agencies, jobs_before, keys, batch))
        return await self._write(lambda conn: retention.remove(conn, chosen))

    async def open_jobs(self, agencies: Sequence[str]) -> dict[tuple[str, str, str], int]:
        return await self._read(lambda conn: gauges.open_jobs(conn, agencies))

    async def pending_by_endpoint(self) -> dict[tuple[str, str], int]:
        return await self._read(outbox.pending_by_endpoint)

    # -- pauses -------------------------------------------------------------------------------------

    async def pauses(self) -> list[Pause]:
        return await self._read(pauses.active)

    async def pause(self, pause: Pause, audit: AuditEntry) -> None:
        _audit.prepare(audit)
        key = self.audit_key
        await self._write(lambda conn: pauses.put(conn, pause, audit, key))

    async def resume(self, agency: str, endpoint: str | None, audit: AuditEntry) -> list[Pause]:
        _audit.prepare(audit)
        key = self.audit_key
        return await self._write(lambda conn: pauses.remove(conn, agency, endpoint, audit, key))

    # -- appointments -------------------------------------------------------------------------------

    async def begin_appointment(self, new: appointments.NewAppointment) -> tuple[Appointment, bool]:
        return await self._write(lambda conn: appointments.begin(conn, new))

    async def settle_appointment(
        self, appointment_id: str, booked: BookedSlot, kind: str, remind_before: float
    ) -> Appointment:
        return await self._write(lambda conn: appointments.settle(conn, appointment_id, booked, kind, remind_before))

    async def forget_appointment(self, appointment_id: str) -> None:
        await self._write(lambda conn: appointments.forget(conn, appointment_id))

    async def cancel_appointment(self, appointment_id: str) -> Appointment:
        return await self._write(lambda conn: appointments.cancelled(conn, appointment_id))

    async def get_appointment(self, appointment_id: str) -> Appointment | None:
        return await self._read(lambda conn: appointments.get(conn, appointment_id))

    async def list_appointments(
        self, *, client_id: str | None, dossier_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Appointment]:
        return await self._read(lambda conn: appointments.listed(conn, client_id, dossier_id, state, limit))

    async def appointment_events(
        self, *, client_id: str | None, after: int = 0, kind: str | None = None, limit: int = 100
    ) -> list[AppointmentEvent]:
        return await self._read(lambda conn: appointments.events(conn, client_id, after, kind, limit))

    async def remind_appointments(self) -> int:
        return await self._write(appointments.remind)

    # -- payments -----------------------------------------------------------------------------------

    async def begin_payment(self, new: payments.NewPayment) -> tuple[Payment, bool]:
        return await self._write(lambda conn: payments.begin(conn, new))

    async def payment_by_key(self, client_id: str, key: str) -> Payment | None:
        return await self._read(lambda conn: payments.by_key(conn, client_id, key))

    async def payment_created(self, payment_id: str, transaction_id: str, pay_url: str, qr_data: str) -> Payment:
        return await self._write(lambda conn: payments.created(conn, payment_id, transaction_id, pay_url, qr_data))

    async def forget_payment(self, payment_id: str) -> None:
        await self._write(lambda conn: payments.forget(conn, payment_id))

    async def payment_failed(self, payment_id: str) -> None:
        await self._write(lambda conn: payments.failed(conn, payment_id))

    async def payment_paid(self, payment_id: str, notice: payments.PaidNotice, how: str) -> tuple[Payment, bool]:
        return await self._write_events(lambda conn: payments.paid(conn, payment_id, notice, how))

    async def get_payment(self, payment_id: str) -> Payment | None:
        return await self._read(lambda conn: payments.get(conn, payment_id))

    async def payment_receipt(self, payment_id: str) -> bytes | None:
        return await self._read(lambda conn: payments.receipt(conn, payment_id))

    async def list_payments(
        self, *, client_id: str | None, dossier_id: str | None = None, limit: int = 100
    ) -> list[Payment]:
        return await self._read(lambda conn: payments.listed(conn, client_id, dossier_id, limit))

    async def unsettled_payments(self, before: float, limit: int = 100) -> list[Payment]:
        return await self._read(lambda conn: payments.unsettled(conn, before, limit))

    # -- operators ----------------------------------------------------------------------------------

    async def bundles_needing_action(self, limit: int = 50) -> list[BundleView]:
        return await self._read(lambda conn: bundles.needing_action(conn, limit))

    async def counts(self) -> dict[str, Any]:
        return await self._counts.get()

    # -- the audit log ------------------------------------------------------------------------------

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        prepared = [audit.prepare(e) for e in entries]  # a bad entry fails here, before the writer
        if prepared:
            await self._write(audit.AppendAudit(prepared, self.audit_key))

    def audit_later(self, entries: Sequence[AuditEntry]) -> Awaitable[None]:
        # A patient write: no task, and under load it shares its commit with the look-ups in flight.
        prepared = [audit.prepare(e) for e in entries]
        try:
            pending = self._writer.submit(audit.AppendAudit(prepared, self.audit_key), patient=True)
        except Exception as exc:
            if self._fault(exc):
                raise self._unavailable(exc, "write to") from exc
            raise
        return self._settled(pending)

    async def _settled(self, pending: PendingWrite) -> None:
        try:
            await pending
        except Exception as exc:
            if self._fault(exc):
                raise self._unavailable(exc, "write to") from exc
            raise

    async def audit_log(
        self, *, after: int = 0, limit: int = 100, dossier_id: str | None = None, client_id: str | None = None
    ) -> list[AuditRecord]:
        return await self._read(lambda conn: audit.log(conn, after, limit, dossier_id, client_id))

    async def refused_accesses(self, limit: int = 20) -> list[AuditRecord]:
        return await self._read(lambda conn: audit.refused(conn, limit))

    async def verify_audit(self, walk: AuditWalk | None = None) -> AuditCheck:
        # One reader trip per page, so a long log neither fills memory nor holds a reader thread throughout.
        w = walk or AuditWalk()
        walker = audit.Walk(w.verifier, w.expected, seq=w.after_seq, hash=w.after_hash, sealed_to=w.sealed_to)
        while True:
            rows = await self._read(functools.partial(audit.page, after=walker.seq, limit=audit.PAGE))
            check = walker.check(rows) if rows else walker.result()
            if check is not None:
                return replace(check, last_seq=walker.seq, last_hash=walker.hash, first_sealed=walker.first_sealed)

    async def audit_head(self) -> tuple[int, str]:
        return await self._read(audit.head)

    async def audit_hash_at(self, seq: int) -> str | None:
        return await self._read(lambda conn: audit.hash_at(conn, seq))

    async def add_audit_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        await self._write(lambda conn: checkpoints.add(conn, checkpoint))

    async def audit_checkpoints(self, after: int = 0) -> list[StoredCheckpoint]:
        return await self._read(lambda conn: checkpoints.listed(conn, after))

    # -- centre performance -------------------------------------------------------------------------

    async def kpi_rows(self, dim: str, start: date, end: date, now: datetime) -> kpis.KpiRows:
        at = now.astimezone(UTC).isoformat()
        return await self._read(lambda conn: kpis.period(conn, dim, start, end, at))

    async def kpi_series(self, dim: str, start: date, end: date) -> list[tuple[str, str, int, int, int]]:
        return await self._read(lambda conn: kpis.series(conn, dim, start, end))

    async def rebuild_kpis(self) -> int:
        calendar = self.calendar
        return await self._write(lambda conn: kpis.rebuild(conn, calendar))

    # -- delivery attempts and the operators' view of jobs ------------------------------------------

    async def attempts(self, query: AttemptQuery) -> list[AttemptRecord]:
        return await self._read(lambda conn: attempts.search(conn, query))

    async def dossier_attempts(self, dossier_id: str) -> list[AttemptRecord]:
        return await self._read(lambda conn: attempts.of_dossier(conn, dossier_id))

    async def forget_attempt_bodies(self, before: float) -> int:
        return await self._write(lambda conn: attempts.forget_bodies(conn, before))

    async def find_jobs(self, where: JobFilter, limit: int = 200) -> list[JobRecord]:
        return await self._read(lambda conn: deliveries.find(conn, where, limit))

    async def rerun_jobs(self, where: JobFilter, *, audit: AuditEntry | None, dry_run: bool = False) -> int:
        if dry_run:
            return await self._read(lambda conn: deliveries.count_rerun(conn, where))
        if audit is None:
            raise ValueError("a re-run is audited: pass its audit entry")
        _audit.prepare(audit)  # a bad entry fails here, before the writer
        key, entry = self.audit_key, audit
        return await self._write(lambda conn: deliveries.rerun(conn, where, entry, key))
