"""The tax connector: SOAP 1.1 calls to the tax authority's land-transfer service; payments by polling.

The tax service never calls back. Submitting a declaration answers at once with the tax notices
(status 6); the dispatcher then calls `poll()`, which reads payment events after a cursor and turns a
SETTLED event (every notice of a dossier paid) into status 9 with the receipts. The cursor moves only
in `acknowledge()`, and never past an update the store did not take: that one is read again. The
cursor lives in memory: after a restart it starts at 0 again and the store drops the updates it has
already applied (same event ids).
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
)
from plugins.tax import wire
from plugins.tax.forms import NoticeAnswer, NoticeQuery, TaxpayerAnswer, TaxpayerQuery

log = structlog.get_logger("lienthong.plugins.tax")

WSDL = Path(__file__).resolve().parent / "wsdl" / "tax.wsdl"
MAX_PAGES = 10  # pages of events read in one poll; the rest waits for the next one


class TaxSettings(EndpointSettings):
    """`url` is the SOAP endpoint address (it overrides the WSDL's soap:address)."""

    wsdl: str | None = Field(None, description="the agency's WSDL file; the bundled one by default")
    max_answer_bytes: int = Field(4 * 1024 * 1024, gt=0)
    poll_batch: int = Field(100, ge=1, le=500, description="events asked for per GetNoticeUpdates call")


def _plain(result: Any) -> dict[str, Any]:
    data = serialize_object(result, dict)  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        return {}
    return data


class TaxConnector(Connector):
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
        )
        self.cursor = 0  # every event up to this sequence is settled in the store
        self._read_to = 0  # how far the last poll read
        self._pending: dict[str, int] = {}  # event id -> sequence, for the last poll's updates

    async def start(self) -> None:
        await self.transport.load()  # zeep reads the WSDL synchronously: in a thread, once

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        try:
            params = wire.declaration_request(dossier, delivery.idempotency_key)
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
            events = page.get("event") or []
            found, problems = wire.poll_updates(events)
            for problem in problems:  # a broken event must not block every later one: skipped, logged
                log.error("event_unreadable", agency=self.ctx.agency, problem=problem)
            sequences = {str(e.get("eventId")): int(e.get("sequence") or 0) for e in events}
            pending.update((u.event_id, sequences[u.event_id]) for u in found)
            updates.extend(found)
            cursor = int(page.get("lastSequence") or 0)
            if not page.get("moreAvailable"):
                break
        self._read_to, self._pending = cursor, pending
        return updates

    async def acknowledge(self, outcome: PollOutcome) -> None:
        """Move the cursor past what the store settled, up to the first update it did not take."""
        unsettled = [seq for event_id, seq in self._pending.items() if not outcome.settled(event_id)]
        self.cursor = max(min(unsettled) - 1, 0) if unsettled else self._read_to
        self._pending = {}

    async def check(self) -> CheckResult:
        return await self.transport.check()
