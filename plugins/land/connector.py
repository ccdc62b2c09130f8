"""The land connector: HoSoXml requests dropped on the office's SFTP server, PhanHoiXml answers polled back.

Correlation ids: `<dossier uuid>.<job step>` (wire.correlation_id). They are stable across retries, so
a re-sent request rewrites the same file name and the office sees one dossier; and the connector,
which has no store, recognises its own ids by that format: anything else is UnknownCorrelation.

Answers are handed to the gateway, and leave the inbox only once the gateway has acknowledged them
(see poll()): none is lost if the process dies or the store fails, and none is applied twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path
from typing import Any

import structlog
from lxml import etree

from adapters.file import DuplicateAnswer, FileExchange, OutboundFile, PollReport, UnknownCorrelation
from adapters.file.model import AnswerRejected
from adapters.xml import InvalidDocument, load_schema, validate
from contracts import Dossier
from gateway.sdk import (
    AgencyRejected,
    AgencyUpdate,
    CheckResult,
    Connector,
    ConnectorContext,
    Delivery,
    PollOutcome,
    SubmitReceipt,
    document_bytes,
)
from gateway.sdk.appointments import AppointmentDesk, AppointmentsAtDesk
from plugins.land import hoso, wire
from plugins.land.settings import LandSettings

log = structlog.get_logger("lienthong.plugins.land")

XSD = Path(__file__).resolve().parent / "xsd"
REQUEST_XSD, ANSWER_XSD = XSD / "ho-so.xsd", XSD / "phan-hoi.xsd"
MEMORY = 10_000  # answers remembered for de-duplication; older duplicates are caught by the store


class InvalidAnswerContent(AnswerRejected):
    reason = "invalid-answer"


class RefusedByGateway(AnswerRejected):
    """The gateway could not apply this answer and never will (e.g. an illegal transition)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AwaitingApply(Exception):
    """Raised by the poll handler on a first sight: the file stays in the inbox until acknowledged."""


class LandConnector(AppointmentsAtDesk, Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, LandSettings)
        self.settings = settings
        # The office's booking service: the endpoint names the office (hanoi, hcm ...) there too.
        self.desk = AppointmentDesk.of(self, settings.appointments, ctx.endpoint) if settings.appointments else None
        self.request_schema: etree.XMLSchema | None = None
        self.exchange: FileExchange | None = None
        self.last_report = PollReport()
        # file name -> event id, applied by the gateway (acknowledged) and not yet moved to processed/
        self._handed: dict[str, str] = {}
        self._offered: dict[str, str] = {}  # file name -> event id, returned by the last poll
        self._refused: OrderedDict[str, str] = OrderedDict()  # event id -> why the gateway refused it
        self._seen: OrderedDict[str, None] = OrderedDict()  # event ids handed out (applied by now)
        self._final: OrderedDict[str, str] = OrderedDict()  # correlation -> event id of its final answer

    async def start(self) -> None:
        request_schema, answer_schema = await asyncio.to_thread(
            lambda: (load_schema(REQUEST_XSD), load_schema(ANSWER_XSD))
        )
        self.request_schema = request_schema
        s = self.settings
        self.exchange = FileExchange(
            s.store(self.ctx.agency),
            agency=self.ctx.agency,
            correlation_of=wire.correlation_of,
            outbox=s.outbox,
            inbox=s.inbox,
            processed=s.processed,
            quarantine=s.quarantine,
            prefix="request",
            schema=answer_schema,
            max_bytes=s.max_answer_bytes,
            checksum_grace_polls=s.checksum_grace_polls,
        )

    def _ready(self) -> FileExchange:
        if self.exchange is None:
            raise RuntimeError("LandConnector.start() was not called")
        return self.exchange

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        exchange = self._ready()
        correlation = wire.correlation_id(dossier.id, delivery.idempotency_key)
        # The documents ride in base64 inside the HoSoXml, as the offices' XSD says.
        contents = {a.sha256: await document_bytes(self.ctx, a) for a in dossier.submission.attachments if a.sha256}
        body = await asyncio.to_thread(self._request, dossier, correlation, delivery, contents)
        await exchange.send(OutboundFile(correlation, body))
        # The office's own number comes with its first answer (DA_TIEP_NHAN).
        return SubmitReceipt()

    def _request(self, dossier: Dossier, correlation: str, delivery: Delivery, contents: dict[str, bytes]) -> bytes:
        assert self.request_schema is not None
        try:
            body = hoso.request_xml(dossier, correlation, delivery.inputs, contents)
            validate(etree.fromstring(body), self.request_schema, agency=self.ctx.agency)
        except (hoso.UnmappableDossier, InvalidDocument) as exc:
            raise AgencyRejected(f"land: cannot map dossier {dossier.code}: {exc}", agency=self.ctx.agency) from exc
        return body

    async def poll(self) -> list[AgencyUpdate]:
        """Answers in two steps: a first sight returns the update and leaves the file in the inbox
        (AwaitingApply); once `acknowledge` says the store has it, the next poll moves the file to
        processed/ (or to quarantine, if the gateway refused it). A crash or a store failure in between
        leaves the file where it was, and it is handed over again; the store drops a repeated update by
        its event id: at least once, applied once.
        """
        exchange = self._ready()
        batch: list[AgencyUpdate] = []
        in_batch: set[str] = set()
        handed_now: dict[str, str] = {}
        applied = set(self._handed.values())

        async def handler(correlation: str, doc: etree._Element, name: str) -> None:
            if wire.dossier_id_of(correlation) is None:
                raise UnknownCorrelation(f"{correlation!r} is not a correlation id this gateway makes")
            try:
                update = wire.answer_update(doc)
            except wire.InvalidAnswer as exc:
                raise InvalidAnswerContent(str(exc)) from exc
            eid = update.event_id
            if eid in applied or eid in self._seen:
                self._remember(eid)
                return  # applied after an earlier poll (or a copy of such an answer): it may leave the inbox
            refused = self._refused.get(eid)
            if refused == "unknown-dossier":
                raise UnknownCorrelation(f"{correlation}: no dossier {update.dossier_id} in this gateway")
            if refused is not None:
                raise RefusedByGateway(refused, f"{correlation}: the gateway refused {eid} ({refused})")
            if eid in in_batch:
                return  # the same answer twice in one poll (a re-sent copy)
            if update.status in wire.FINAL:
                # An earlier, non-final answer may still come after the final one (re-sent, or not yet
                # taken by the store): the state machine judges it. A second, different final conflicts.
                final = self._final.get(correlation)
                if final is not None and final != eid:
                    raise DuplicateAnswer(f"{correlation} already had its final answer {final}; {eid} conflicts")
                self._final[correlation] = eid
                _trim(self._final)
            batch.append(update)
            in_batch.add(eid)
            handed_now[name] = eid
            raise AwaitingApply("handed to the gateway; moved to processed/ once acknowledged")

        # A store failure raises before anything below: those updates were not returned, so not applied,
        # and their files are still in the inbox for the next poll.
        report = await exchange.poll(handler)
        still = set(report.failed) | set(report.waiting)  # processed, quarantined or gone: nothing to acknowledge
        self._handed = {n: e for n, e in self._handed.items() if n in still}
        self._offered = handed_now
        self.last_report = report
        return batch

    async def acknowledge(self, outcome: PollOutcome) -> None:
        """Files whose updates the store settled leave the inbox on the next poll; the others stay."""
        for name, eid in self._offered.items():
            if eid in outcome.applied:
                self._handed[name] = eid
            elif eid in outcome.refused:  # quarantined with this reason on the next poll
                self._refused[eid] = outcome.refused[eid]
                _trim(self._refused)
        self._offered = {}

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        _trim(self._seen)

    async def check(self) -> CheckResult:
        return await self._ready().check()

    async def aclose(self) -> None:
        if self.exchange is not None:
            await self.exchange.aclose()


def _trim(d: OrderedDict[str, Any]) -> None:
    while len(d) > MEMORY:
        d.popitem(last=False)
