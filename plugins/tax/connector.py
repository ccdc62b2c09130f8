"""The tax connector: SOAP 1.1 calls to the tax authority's land-transfer service; payments by polling.

The tax service never calls back. Submitting a declaration answers at once with the tax notices
(status 6); the dispatcher then calls `poll()`, which reads payment events after a cursor and turns a
SETTLED event (every notice of a dossier paid) into status 9 with the receipts. The cursor moves only
in `acknowledge()`, only forward, and never past an update the store did not take: that one is read
again. It is kept in the gateway's store (`ConnectorContext.state`), written before it moves in memory,
so a restart resumes where the last acknowledgement left off. An answer never moves it back: a page
whose lastSequence is missing, not a number or behind the cursor is logged and read again next time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field, ValidationError
from zeep.helpers import serialize_object

from adapters.soap import SoapCall, SoapTransport
from contracts import Dossier
from gateway.sdk import (
    AgencyError,
    AgencyRejected,
    AgencyUpdate,
    CheckResult,
    Connector,
    ConnectorContext,
    Delivery,
    EndpointSettings,
    PollOutcome,
    SubmitReceipt,
    document_bytes,
)
from gateway.sdk.appointments import AppointmentDesk, AppointmentsAtDesk, DeskSettings
from plugins.tax import wire
from plugins.tax.forms import NoticeAnswer, NoticeQuery, TaxpayerAnswer, TaxpayerQuery

log = structlog.get_logger("lienthong.plugins.tax")

WSDL = Path(__file__).resolve().parent / "wsdl" / "tax.wsdl"
MAX_PAGES = 10  # pages of events read in one poll; the rest waits for the next one
CURSOR = "event_cursor"  # the connector state key: every event up to it is settled in the store
OPERATIONS = ("LookupTaxpayer", "SubmitLandTransferDeclaration", "QueryNoticePayment", "GetNoticeUpdates")


class TaxSettings(EndpointSettings):
    """`url` is the SOAP endpoint address (it overrides the WSDL's soap:address)."""

    wsdl: str | None = Field(None, description="the agency's WSDL file; the bundled one by default")
    max_answer_bytes: int = Field(4 * 1024 * 1024, gt=0)
    poll_batch: int = Field(100, ge=1, le=500, description="events asked for per GetNoticeUpdates call")
    appointments: DeskSettings | None = Field(
        None, description="the tax office's booking service (REST, signed): consultations on a declaration"
    )


def _sequence(value: Any) -> int | None:
    """An event sequence number from an answer, or None when it is not one."""
    if type(value) is not int or value < 0:  # zeep maps xs:long to int; bool, None or text is garbage
        return None
    return value


def _plain(result: Any) -> dict[str, Any]:
    data = serialize_object(result, dict)  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        return {}
    return data


class TaxConnector(AppointmentsAtDesk, Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, TaxSettings)
        self.settings = settings
        self.transport = SoapTransport(
            ctx.http,
            settings.wsdl or WSDL,
            agency=ctx.agency,
            timeout=settings.timeout,
            max_answer_bytes=settings.max_answer_bytes,
            address=settings.url,
            operations=OPERATIONS,
            ssl_context=ctx.ssl_context,
        )
        self.desk = AppointmentDesk.of(self, settings.appointments, ctx.endpoint) if settings.appointments else None
        self.cursor = 0  # every event up to this sequence is settled in the store (read in start())
        self._read_to = 0  # how far the last poll read
        self._pending: dict[str, int] = {}  # event id -> sequence, for the last poll's updates

    async def start(self) -> None:
        await self.transport.load()  # zeep reads the WSDL synchronously: in a thread, once
        await self._load_cursor()

    async def _load_cursor(self) -> None:
        """The stored cursor, when it is ahead of ours: another gateway process on the same store polled
        last (it held the poller's role, then died or stopped) and settled the events up to it."""
        stored = await self.ctx.state.get(CURSOR)
        if stored is not None:
            if type(stored) is not int or stored < 0:  # only this connector writes it: a broken store
                raise ValueError(f"tax: stored event cursor {stored!r} is not a sequence number")
            if stored > self.cursor:
                self.cursor = self._read_to = stored

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        # The documents go as base64Binary elements of the SOAP body (tax.xsd, AttachedDocument).
        contents = {a.sha256: await document_bytes(self.ctx, a) for a in dossier.submission.attachments if a.sha256}
        try:
            params = wire.declaration_request(dossier, delivery.idempotency_key, contents)
        except ValidationError as exc:  # the form's own words, without the values (personal ids)
            reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in exc.errors())
            raise AgencyRejected(f"tax: cannot map dossier {dossier.code}: {reasons}", agency=self.ctx.agency) from None
        except ValueError as exc:
            raise AgencyRejected(f"tax: cannot map dossier {dossier.code}: {exc}", agency=self.ctx.agency) from exc
        answer = _plain(await self.transport.call("SubmitLandTransferDeclaration", **params))
        update = wire.notices_update(answer)
        return SubmitReceipt(agency_ref=update.agency_ref, updates=[update])

    async def lookup(self, name: str, query: BaseModel) -> BaseModel:
        if name == "taxpayer" and isinstance(query, TaxpayerQuery):
            try:
                answer = await self.transport.send(SoapCall("LookupTaxpayer", wire.taxpayer_request(query)))
            except AgencyRejected as exc:
                if exc.code == "Client.TaxpayerNotFound":
                    return TaxpayerAnswer(found=False)
                raise
            return wire.taxpayer_answer(_plain(answer))
        if name == "tax-notice" and isinstance(query, NoticeQuery):
            try:
                answer = await self.transport.call("QueryNoticePayment", noticeNumber=query.notice_number)
            except AgencyRejected as exc:
                if exc.code == "Client.NoticeNotFound":
                    return NoticeAnswer(found=False, notice_number=query.notice_number)
                raise
            return wire.notice_answer(_plain(answer))
        return await super().lookup(name, query)

    async def poll(self) -> list[AgencyUpdate]:
        """Payment events after the cursor, a few pages at most. A failure of the first page is raised (the
        dispatcher's breaker learns of an outage from it); one of a later page returns what was read."""
        await self._load_cursor()
        updates: list[AgencyUpdate] = []
        pending: dict[str, int] = {}
        cursor = self.cursor
        for page_number in range(MAX_PAGES):
            try:
                answer = await self.transport.call(
                    "GetNoticeUpdates", sinceSequence=cursor, maxEvents=self.settings.poll_batch
                )
            except AgencyError as exc:
                if page_number == 0:
                    raise
                log.warning("poll_cut_short", agency=self.ctx.agency, cursor=cursor, error=type(exc).__name__)
                break
            page = _plain(answer)
            last = _sequence(page.get("lastSequence"))
            if last is None or last < cursor:  # never trust an answer that would move the cursor back
                log.error(
                    "poll_answer_unusable",
                    agency=self.ctx.agency,
                    cursor=cursor,
                    last_sequence=repr(page.get("lastSequence"))[:40],
                )
                break
            events = page.get("event") or []
            found, problems = wire.poll_updates(events)
            for problem in problems:  # a broken event must not block every later one: skipped, logged
                log.error("event_unreadable", agency=self.ctx.agency, problem=problem)
            # An event without a usable sequence holds the cursor at this page's start until it is settled.
            sequences = {str(e.get("eventId")): min(_sequence(e.get("sequence")) or cursor + 1, last) for e in events}
            pending.update((u.event_id, sequences[u.event_id]) for u in found)
            updates.extend(found)
            cursor, previous = last, cursor
            if not page.get("moreAvailable") or cursor == previous:  # the end, or no progress
                break
        self._read_to, self._pending = cursor, pending
        return updates

    async def acknowledge(self, outcome: PollOutcome) -> None:
        """Move the cursor past what the store settled, up to the first update it did not take; write it
        to the store first. It never goes back."""
        unsettled = [seq for event_id, seq in self._pending.items() if not outcome.settled(event_id)]
        target = max(min(unsettled) - 1, 0) if unsettled else self._read_to
        self._pending = {}
        if target > self.cursor:
            await self.ctx.state.put(CURSOR, target)  # a failure leaves the cursor where it was: read again
            self.cursor = target

    async def check(self) -> CheckResult:
        return await self.transport.check()
