"""The store interface. One transaction accepts a dossier: dossier + first event + outbox job."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from contracts import DeliveryState, Dossier, DossierStatus, StatusEvent
from contracts.appointment import Appointment, AppointmentEvent, BookedSlot
from contracts.bundle import BundleView
from contracts.calendar import NATIONAL, WorkCalendar
from contracts.dossier import PortalRefusal
from contracts.payment import Payment
from gateway.connector import AgencyUpdate, SubmitReceipt
from gateway.store.appointments import NewAppointment
from gateway.store.attempts import AttemptInfo, AttemptQuery, AttemptRecord
from gateway.store.filters import JobFilter
from gateway.store.kpis import KpiRows
from gateway.store.payments import NewPayment, PaidNotice
from gateway.store.retention import Pruned
from gateway.store.seals import AuditVerifier

JobState = Literal["waiting", "pending", "leased", "done", "dead", "cancelled"]
# How a dossier's delivery is asked after (GET /v1/dossiers?delivery=): DeliveryState's names.
DeliveryFilter = Literal["waiting", "pending", "in_flight", "delivered", "dead", "cancelled"]


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A document a dossier names: its bytes are in the document store under `sha256` (for a URL fetched
    before delivery, once fetched)."""

    component_code: str
    name: str
    media_type: str
    size: int
    sha256: str
    origin: Literal["inline", "upload", "url"]
    url: str | None = None
    # A small document sent inline: kept in the database with the dossier, in its transaction (not in the folder).
    content: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NewUpload:
    id: str
    client_id: str
    sha256: str
    size: int
    media_type: str
    name: str | None
    created_at: datetime
    expires_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    client_id: str
    sha256: str
    size: int
    media_type: str
    name: str | None


@dataclass(frozen=True, slots=True)
class NewDossier:
    id: UUID
    receiving_unit: str
    day: date  # the receiving day, local time: the code sequence restarts every day
    procedure_code: str
    procedure_name: str
    client_id: str
    agency: str
    endpoint: str
    received_at: datetime
    due_at: datetime
    submission: dict[str, Any]
    idempotency_key: str | None
    body_hash: str
    documents: tuple[DocumentRef, ...] = ()  # the submission's attachments, in order


@dataclass(frozen=True, slots=True)
class DossierBrief:
    """What a submission's answer tells of its dossier (the fields of a `Dossier` of the same names)."""

    id: UUID
    code: str
    status: DossierStatus
    due_at: datetime
    agency: str
    delivery: DeliveryState | None

    @classmethod
    def of(cls, d: Dossier) -> DossierBrief:
        return cls(d.id, d.code, d.status, d.due_at, d.agency, d.delivery)


class CreateOutcome:
    """A submission's dossier, and whether this request made it. The answer needs only the brief; the
    whole dossier, validated, is built when first asked for (about 15 µs of the event loop's time per
    submission otherwise)."""

    __slots__ = ("_build", "_dossier", "brief", "created")

    def __init__(self, brief: DossierBrief, dossier: Dossier | Callable[[], Dossier], created: bool) -> None:
        self.brief = brief
        self.created = created  # False: an earlier request with the same idempotency key and body made it
        self._dossier: Dossier | None = dossier if isinstance(dossier, Dossier) else None
        self._build: Callable[[], Dossier] | None = None if isinstance(dossier, Dossier) else dossier

    @property
    def dossier(self) -> Dossier:
        if self._dossier is None:
            assert self._build is not None
            self._dossier, self._build = self._build(), None
        return self._dossier


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    dossier_id: UUID
    step: str
    agency: str
    endpoint: str
    idempotency_key: str
    state: JobState
    attempts: int
    next_at: float
    last_error: str | None
    inputs: dict[str, Any]
    dossier: Dossier | None = None  # claimed jobs come with their dossier, read in the same transaction
    # The retry budget: when the first transient failure came (None: none yet), and the seconds the job
    # has since waited past its due time without being sent (an open breaker, a window, a pause, a backlog).
    failing_since: float | None = None
    held: float = 0.0
    updated_at: float = 0.0  # for a dead letter: when it was dead-lettered
    # A claimed job's documents kept in the database (the small ones), read in the claim's transaction:
    # the delivery needs no trip to a reader thread for them. By sha256.
    documents: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pause:
    """An operator's pause of an agency (or one endpoint): nothing is sent to it before `until`."""

    agency: str
    endpoint: str | None  # None: every endpoint of the agency
    until: float  # epoch seconds
    reason: str
    by: str  # the client (or "cli:<user>") that paused it
    at: float  # when


@dataclass(frozen=True, slots=True)
class NewBundleStep:
    step: str
    dossier: NewDossier
    inputs: dict[str, str]  # name -> "step.output", resolved when the step before finishes


@dataclass(frozen=True, slots=True)
class NewBundle:
    id: UUID
    spec: str
    name: str
    client_id: str
    created_at: datetime
    steps: list[NewBundleStep]
    idempotency_key: str | None
    body_hash: str


@dataclass(frozen=True, slots=True)
class UpdateSource:
    """Who reports a status update. An agency may change only the dossiers routed to it: to its instance
    and, when `endpoint` is given (an office of a per-office agency such as land, whose answers come from
    that office's own folder), to that endpoint. `agency` None: the gateway itself, on a centre's request
    (a hand-over); never for news from an agency."""

    actor: str  # recorded on the event: "agency:police", or the client id of the centre
    agency: str | None = None
    endpoint: str | None = None

    @classmethod
    def of_agency(cls, agency: str, endpoint: str | None = None) -> UpdateSource:
        return cls(f"agency:{agency}", agency, endpoint)


@dataclass(frozen=True, slots=True)
class ReplayKey:
    """What makes a signed request unique (its nonce), recorded in the transaction that applies it and kept
    for `window` seconds: the same request again in that time is refused (ReplayedRequest), even after a
    restart; a request whose apply failed left nothing behind, so its resend is applied."""

    scope: str  # e.g. "police:lienthong-gateway": the agency instance and the signing key id
    key: str
    window: float


class ReplayedRequest(Exception):
    """The replay key was recorded before, within its window."""


@dataclass(frozen=True, slots=True)
class Completion:
    """What `complete_job` recorded. `recorded` False: the lease was lost, whoever holds it now finishes.

    `skipped`: updates of the receipt that were not applied, by event id, with why. "superseded": the
    dossier has moved on since (later news from the agency, e.g. a redelivered submit whose receipt says
    6 while the dossier is already 9); "invalid-result": its result document was refused. The job is done
    all the same: delivering it again would bring the same answer.
    """

    recorded: bool
    skipped: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    applied: bool  # False: the same agency event was applied before (a repeated callback)
    dossier_id: UUID | None
    status: int | None
    # What the acceptance-to-result metric needs, read in the update's own transaction (no read after it).
    agency: str | None = None
    received_at: str | None = None  # ISO 8601, as stored


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One status event of the feed, with its dossier as it is now and the dossier's whole log."""

    event: StatusEvent
    dossier: Dossier
    history: list[StatusEvent]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One access to dossiers, to be appended to the audit log."""

    client_id: str  # who accessed
    action: str  # "read", "events", "result", "return", "list", "feed", "supplement", ...
    outcome: str  # "allowed" or "denied"
    basis: str  # why it was allowed, or what was missing: "own", "applicant-proof", "no-proof", ...
    dossier_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # small JSON-able facts; never a personal id in clear


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as written: numbered, timed and linked to the record before it."""

    seq: int
    at: datetime  # UTC, set by the store when written
    client_id: str
    action: str
    outcome: str
    basis: str
    dossier_id: str | None
    detail: dict[str, Any]
    prev_hash: str  # hex sha256 of the previous record ("0" * 64 for the first)
    hash: str  # hex sha256 over prev_hash and the canonical JSON of the fields above (audit.py)
    sealed_from: int | None = None  # on the last record of a batch: the batch's first seq ...
    seal: str | None = None  # ... and the writer's Ed25519 signature over them (seals.py)


@dataclass(frozen=True, slots=True)
class AuditCheck:
    ok: bool
    checked: int  # records walked
    first_bad: int | None  # seq of the first record whose hash or link does not verify
    reason: str | None
    last_seq: int = field(default=0, compare=False)  # the last record that verified, and its hash
    last_hash: str = field(default="0" * 64, compare=False)
    first_sealed: int | None = field(default=None, compare=False)  # where the writer's seals begin


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint of the audit log as the store keeps it (`body` is its canonical JSON)."""

    number: int
    at: str
    kind: str  # "checkpoint" or "acknowledgement"
    seq: int
    head: str
    body: str
    signature: str


@dataclass(frozen=True, slots=True)
class AuditWalk:
    """What `verify_audit` checks besides the chain: the seals (with the audit public key), hashes signed
    checkpoints recorded, and where to start (after a checkpoint: its seq and head)."""

    verifier: AuditVerifier | None = None
    expected: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # seq -> (hash, which checkpoint)
    after_seq: int = 0
    after_hash: str = "0" * 64
    sealed_to: int | None = None  # the last record known to be sealed at the start


class Store(ABC):
    # True when several processes may share the store (PostgreSQL): nothing a process finds at start-up
    # (a leased job, a role) is known to be left over from its own last run.
    shared: bool = False
    _calendar_source: Callable[[], WorkCalendar] = staticmethod(lambda: NATIONAL)

    def use_calendar(self, source: Callable[[], WorkCalendar]) -> None:
        """Where supplement deadlines and moved due dates take their working days from: the app passes the
        live configuration's calendar, so a reload of calendar.toml applies to the next write."""
        self._calendar_source = source

    @property
    def calendar(self) -> WorkCalendar:
        return self._calendar_source()

    @property
    def commits(self) -> int:
        """Commits of the store's writer since it opened (0 for a store that does not group them)."""
        return 0

    @property
    def writes(self) -> int:
        """Writes those commits held."""
        return 0

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def create_dossier(self, new: NewDossier) -> CreateOutcome:
        """Accept a dossier durably; returns only after its commit. IdempotencyConflict on a reused key."""

    @abstractmethod
    async def get_dossier(self, ref: str) -> Dossier | None:
        """By id (UUID) or by dossier code."""

    @abstractmethod
    async def list_dossiers(
        self, *, client_id: str | None, status: int | None, limit: int, delivery: DeliveryFilter | None = None
    ) -> list[Dossier]:
        """Newest first, each with its delivery state (of its latest job); `delivery` keeps those in that state."""

    @abstractmethod
    async def events(self, dossier_id: UUID) -> list[StatusEvent]: ...

    @abstractmethod
    async def expire_supplements(self, now: datetime) -> list[UUID]:
        """Refuse (status 3) the dossiers still waiting for documents whose deadline passed before `now`.

        The event is recorded once per supplement request, however often this runs. Returns their ids.
        """

    @abstractmethod
    async def feed(self, *, after: int, limit: int, client_id: str | None = None) -> list[FeedItem]:
        """Status events with a sequence number above `after`, in commit order (of one client's dossiers).

        A consumer that keeps the last `seq` it saw and asks again from there misses nothing: an event is
        numbered inside its write transaction, and write transactions commit one at a time (SQLite's
        single writer; on PostgreSQL every process's writes take the database's write lock), in order.
        """

    @abstractmethod
    async def record_portal_refusal(self, codes: Sequence[str], refusal: PortalRefusal) -> int:
        """Keep the national portal's refusal on these dossiers (by code) for an operator; how many exist."""

    @abstractmethod
    async def clear_portal_refusals(self, codes: Sequence[str]) -> int:
        """The portal took these dossiers again: drop their refusals; how many had one."""

    @abstractmethod
    async def feed_cursor(self, name: str) -> int:
        """The last feed seq acknowledged by the consumer `name` (0 before its first)."""

    @abstractmethod
    async def advance_feed_cursor(self, name: str, seq: int) -> None:
        """Record durably that `name` has acknowledged the feed up to `seq`; a cursor never goes back."""

    @abstractmethod
    async def connector_state(self, agency: str, endpoint: str, key: str) -> Any | None:
        """A value a connector stored under `key` (JSON: None, bool, number, text, list, dict), or None."""

    @abstractmethod
    async def set_connector_state(self, agency: str, endpoint: str, key: str, value: Any) -> None:
        """Store a connector's value durably (returns after the commit); TypeError if it is not JSON."""

    @abstractmethod
    def on_events(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the event loop) after each commit that may have added status events.

        A hint for waking feed consumers early; they poll all the same, in case a write was missed.
        """

    def on_remote_events(self, listener: Callable[[], None]) -> None:
        """Call `listener` when another process on the same database committed status events or jobs
        (PostgreSQL's NOTIFY); a store of one process has none to tell of."""
        del listener

    async def hold_role(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run` while this process holds the role `name`, which one process of those sharing the
        store holds at a time (an agency's poller, the portal pusher); wait for it while another does,
        and take it over when that one dies. A store of one process holds every role: it just runs."""
        await run()

    @abstractmethod
    async def apply_updates(
        self, updates: Sequence[AgencyUpdate], *, source: UpdateSource, replay: ReplayKey | None = None
    ) -> list[UpdateOutcome]:
        """Apply status changes in one transaction, all or none (with `replay` recorded in the same one).

        Each is checked, in order: the dossier exists (LookupError), is routed to `source` (WrongAgency),
        its result documents hold what they declare (InvalidResult), the state machine allows the move
        (IllegalTransition); a repeated event id is a no-op. ReplayedRequest if `replay` was seen within
        its window. The first refusal raises and nothing is kept.
        """

    async def apply_update(self, update: AgencyUpdate, *, source: UpdateSource) -> UpdateOutcome:
        """One status change; see apply_updates."""
        [outcome] = await self.apply_updates([update], source=source)
        return outcome

    @abstractmethod
    async def claim_jobs(
        self,
        owner: str,
        free: dict[str, int],
        lease_seconds: float,
        endpoints: Mapping[str, Mapping[str, int]] | None = None,
    ) -> list[JobRecord]:
        """Lease ready jobs, at most free[agency] per agency, oldest due first.

        For an agency in `endpoints`, only jobs of the endpoints named there, at most that many of each
        (an endpoint whose breaker is open is left out; one being probed gets 1). Each job's `held` grows
        by the time it waited past its due time, once it has failed (the retry budget does not count it).
        """

    @abstractmethod
    async def unclaim_job(self, job_id: int, owner: str) -> bool:
        """Give a leased job back unsent, its attempt unspent (its endpoint became held meanwhile)."""

    @abstractmethod
    async def complete_job(
        self, job_id: int, owner: str, receipt: SubmitReceipt, *, actor: str, attempt: AttemptInfo | None = None
    ) -> Completion:
        """The agency took the job: done, with the receipt's updates (bound to the job's agency and endpoint)
        and the attempt (attempts.py), in one transaction."""

    @abstractmethod
    async def fail_job(
        self, job_id: int, owner: str, error: str, retry_at: float | None, attempt: AttemptInfo | None = None
    ) -> bool:
        """Record a failed attempt, in the job and in its history: retry at `retry_at`, or dead-letter when
        it is None."""

    @abstractmethod
    async def release_leases(self) -> int:
        """Make every leased job ready again (start-up of the single process that owns the file)."""

    @abstractmethod
    async def reclaim_expired_leases(self) -> int:
        """Jobs whose lease ran out (`lease_until` passed: the holder died, or could not record the
        outcome) become ready again, keeping their attempt count; the leases of others are left alone."""

    @abstractmethod
    async def unclaim_jobs(self, owner: str, job_ids: Sequence[int]) -> int:
        """Undo a claim nobody will deliver (it was cancelled): the jobs, if `owner` still holds them, are
        ready again as before it, the attempt it counted taken back."""

    @abstractmethod
    async def probe(self) -> None:
        """Commit a small write through the same path as every other write (readiness): returns once it
        is durable, raises StorageUnavailable if the store cannot commit now."""

    @abstractmethod
    async def replay_dead(
        self,
        job_ids: list[int] | None = None,
        *,
        agency: str | None = None,
        endpoint: str | None = None,
        since: float | None = None,
        audit: AuditEntry | None = None,
    ) -> int:
        """Dead-lettered jobs (all, or these; of this agency and endpoint; dead-lettered since this epoch
        time) become pending with their attempts and retry budget reset. `audit` is appended in the same
        transaction, with `replayed` (the count) added to its detail."""

    @abstractmethod
    async def jobs(
        self,
        state: JobState | None = None,
        limit: int = 100,
        ids: list[int] | None = None,
        *,
        agency: str | None = None,
        since: float | None = None,
    ) -> list[JobRecord]:
        """Jobs by id (of an agency; last changed since an epoch time: for dead letters, dead since)."""

    @abstractmethod
    async def prune(self, agencies: Sequence[str], jobs_before: float, keys_before: datetime, batch: int) -> Pruned:
        """One batch of retention (store/retention.py): these agencies' done jobs last due before
        `jobs_before` (epoch seconds), idempotency keys created before `keys_before`; never a dossier,
        event or audit record."""

    @abstractmethod
    async def open_jobs(self, agencies: Sequence[str]) -> dict[tuple[str, str, str], int]:
        """(agency, endpoint, state) -> jobs of these agencies, for the states not final (waiting, pending,
        leased, dead): what /metrics shows, read through the (agency, state) index, never a scan."""

    @abstractmethod
    async def pending_by_endpoint(self) -> dict[tuple[str, str], int]:
        """Pending jobs of each (agency, endpoint) that has some, for the operators' view."""

    @abstractmethod
    async def pauses(self) -> list[Pause]:
        """The pauses in force (their `until` still ahead)."""

    @abstractmethod
    async def pause(self, pause: Pause, audit: AuditEntry) -> None:
        """Record a pause (replacing one of the same agency and endpoint) and its audit record, together."""

    @abstractmethod
    async def resume(self, agency: str, endpoint: str | None, audit: AuditEntry) -> list[Pause]:
        """End the pauses of an agency (endpoint None: all of them, else that endpoint's), audited together;
        returns those ended."""

    @abstractmethod
    async def create_bundle(self, new: NewBundle) -> tuple[UUID, bool]:
        """Accept a bundle durably: every step's dossier at once; the first step's job ready, the rest waiting."""

    @abstractmethod
    async def get_bundle(self, bundle_id: str) -> BundleView | None: ...

    @abstractmethod
    async def cancel_bundle(self, bundle_id: UUID, *, actor: str) -> int:
        """Waiting steps are cancelled (their dossiers withdrawn); returns how many."""

    @abstractmethod
    async def retry_bundle(self, bundle_id: UUID) -> int:
        """Dead-lettered steps of the bundle are tried again."""

    @abstractmethod
    async def answer_supplement(
        self, dossier_id: UUID, answer: dict[str, Any], *, actor: str, documents: Sequence[DocumentRef] = ()
    ) -> Dossier:
        """Record the centre's answer to a supplement request and queue it for the agency; `documents` are
        the answer's attachments, stored. An answer to the gateway's own request (a document it could not
        fetch before delivery) replaces the missing documents and delivers the dossier instead."""

    @abstractmethod
    async def ask_for_documents(
        self, job_id: int, owner: str, items: list[str], note: str, attempt: AttemptInfo | None = None
    ) -> bool:
        """A dossier's documents could not be had before its delivery: the centre is asked for them
        (status 5, requested by the gateway) and the job waits for the answer. False if the lease was lost."""

    # -- documents ------------------------------------------------------------------------------------

    @abstractmethod
    async def create_upload(self, new: NewUpload) -> None: ...

    @abstractmethod
    async def uploads(self, client_id: str, ids: Sequence[str]) -> dict[str, UploadRecord]:
        """The client's unexpired uploads among `ids` (another client's uploads are not found)."""

    @abstractmethod
    async def expire_uploads(self, now: float) -> int:
        """Forget uploads whose time has passed; returns how many."""

    @abstractmethod
    async def documents_named(self, shas: Sequence[str]) -> set[str]:
        """The sha256s among `shas` that a dossier or an upload names: the document store keeps those."""

    @abstractmethod
    async def document_content(self, sha256: str) -> bytes | None:
        """A small document kept in the database (DocumentRef.content), or None."""

    @abstractmethod
    async def sweep_documents(self, before: float) -> int:
        """Delete the small documents kept in the database since before `before` that nothing names."""

    @abstractmethod
    async def bundles_needing_action(self, limit: int = 50) -> list[BundleView]:
        """The latest bundles whose state asks someone to act (a dead or refused step, a supplement)."""

    @abstractmethod
    async def counts(self) -> dict[str, Any]:
        """Dossiers by status and jobs by state, for the dashboard: a scan of both tables, so an answer that
        took long is reused for a while (costly.py); a small store's is always current."""

    @abstractmethod
    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append accesses to the hash-chained audit log; returns after their commit.

        ValueError (before anything is written) for an outcome other than allowed/denied; TypeError
        for a detail that is not JSON.
        """

    def audit_later(self, entries: Sequence[AuditEntry]) -> Awaitable[None]:
        """`audit` started now, awaited when its caller needs the commit (it must be awaited): the store
        may let the record wait for others meanwhile. Errors as `audit`'s (a bad entry: at once, here)."""
        return asyncio.ensure_future(self.audit(entries))

    @abstractmethod
    async def audit_log(
        self, *, after: int = 0, limit: int = 100, dossier_id: str | None = None, client_id: str | None = None
    ) -> list[AuditRecord]:
        """Audit records with a seq above `after`, oldest first (of one dossier, of one client)."""

    @abstractmethod
    async def refused_accesses(self, limit: int = 20) -> list[AuditRecord]:
        """The latest refused accesses, newest first: what the operator dashboard shows."""

    @abstractmethod
    async def verify_audit(self, walk: AuditWalk | None = None) -> AuditCheck:
        """Walk the whole chain (or from `walk.after_seq`): every record's hash, its link to the one before,
        no seq missing; with `walk.verifier` every seal; the hashes of `walk.expected`."""

    @abstractmethod
    async def audit_head(self) -> tuple[int, str]:
        """The last audit record's seq and hash ((0, "0" * 64) for an empty log)."""

    @abstractmethod
    async def audit_hash_at(self, seq: int) -> str | None:
        """The hash of one audit record (None: there is no such record)."""

    @abstractmethod
    async def add_audit_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Keep a signed checkpoint (append-only; one with the same number already there stays)."""

    # -- appointments of referred dossiers (appointments.py) ---------------------------------------

    @abstractmethod
    async def begin_appointment(self, new: NewAppointment) -> tuple[Appointment, bool]:
        """The row of a centre's booking key: new (True) or an earlier request's (False); IdempotencyConflict
        when the key was used for another booking."""

    @abstractmethod
    async def settle_appointment(
        self, appointment_id: str, booked: BookedSlot, kind: str, remind_before: float
    ) -> Appointment:
        """The agency holds `booked`: state booked, a `kind` event (booked, moved), the reminder set."""

    @abstractmethod
    async def forget_appointment(self, appointment_id: str) -> None:
        """The agency refused a booking: its row goes (only while still 'booking')."""

    @abstractmethod
    async def cancel_appointment(self, appointment_id: str) -> Appointment: ...

    @abstractmethod
    async def get_appointment(self, appointment_id: str) -> Appointment | None: ...

    @abstractmethod
    async def list_appointments(
        self, *, client_id: str | None, dossier_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Appointment]: ...

    @abstractmethod
    async def appointment_events(
        self, *, client_id: str | None, after: int = 0, kind: str | None = None, limit: int = 100
    ) -> list[AppointmentEvent]: ...

    @abstractmethod
    async def remind_appointments(self) -> int:
        """Write the reminder event of every booked appointment whose reminder time has come; how many."""

    # -- online payments (payments.py) -----------------------------------------------------------

    @abstractmethod
    async def begin_payment(self, new: NewPayment) -> tuple[Payment, bool]:
        """The row of a centre's payment key: new (True) or an earlier request's (False)."""

    @abstractmethod
    async def payment_by_key(self, client_id: str, key: str) -> Payment | None: ...

    @abstractmethod
    async def payment_created(self, payment_id: str, transaction_id: str, pay_url: str, qr_data: str) -> Payment: ...

    @abstractmethod
    async def forget_payment(self, payment_id: str) -> None: ...

    @abstractmethod
    async def payment_failed(self, payment_id: str) -> None: ...

    @abstractmethod
    async def payment_paid(self, payment_id: str, notice: PaidNotice, how: str) -> tuple[Payment, bool]:
        """Record a payment once, with its receipt and an event on its dossier; False when it was already."""

    @abstractmethod
    async def get_payment(self, payment_id: str) -> Payment | None: ...

    @abstractmethod
    async def payment_receipt(self, payment_id: str) -> bytes | None: ...

    @abstractmethod
    async def list_payments(
        self, *, client_id: str | None, dossier_id: str | None = None, limit: int = 100
    ) -> list[Payment]: ...

    @abstractmethod
    async def unsettled_payments(self, before: float, limit: int = 100) -> list[Payment]: ...

    @abstractmethod
    async def audit_checkpoints(self, after: int = 0) -> list[StoredCheckpoint]:
        """The checkpoints kept, numbered above `after`, oldest first."""

    # -- centre performance and delivery attempts ---------------------------------------------------

    @abstractmethod
    async def kpi_rows(self, dim: str, start: date, end: date, now: datetime) -> KpiRows:
        """The performance counters of one dimension (centre, agency, procedure, province) over local
        days [start, end], per item, with the dossiers open `now` (kpis.py)."""

    @abstractmethod
    async def kpi_series(self, dim: str, start: date, end: date) -> list[tuple[str, str, int, int, int]]:
        """(item, local day, received, finished, on time) of each day of [start, end] with any."""

    @abstractmethod
    async def rebuild_kpis(self) -> int:
        """Recompute the performance counters from the dossiers and their events; returns the dossiers."""

    @abstractmethod
    async def attempts(self, query: AttemptQuery) -> list[AttemptRecord]:
        """Delivery attempts matching every filter of `query`, newest first."""

    @abstractmethod
    async def dossier_attempts(self, dossier_id: str) -> list[AttemptRecord]:
        """Every delivery attempt of one dossier, oldest first (its timeline)."""

    @abstractmethod
    async def forget_attempt_bodies(self, before: float) -> int:
        """Drop the request and answer bodies captured before `before` (epoch seconds)."""

    @abstractmethod
    async def find_jobs(self, where: JobFilter, limit: int = 200) -> list[JobRecord]:
        """Jobs matching every filter, newest first (the operators' list of deliveries)."""

    @abstractmethod
    async def rerun_jobs(self, where: JobFilter, *, audit: AuditEntry | None, dry_run: bool = False) -> int:
        """Done or dead jobs of `where` sent again (dead only unless its states say otherwise), audited in the
        same transaction; with `dry_run`, only how many would be."""
