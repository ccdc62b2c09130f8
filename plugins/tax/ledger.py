"""The tax simulator's books: declarations, notices, payments and the event log. Pure and synchronous.

Requests and answers are the SOAP messages' values as plain dicts (element names as keys), so the
SOAP layer around this only parses, validates and serialises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from contracts.admin_units import communes
from contracts.calendar import VN_TZ
from plugins.tax.register import Taxpayer, office_name


class LedgerFault(Exception):
    """Answered as a SOAP Fault: code Client (the request is refused) or Server (our own trouble)."""

    def __init__(self, code: str, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason


@dataclass
class Notice:
    number: str
    kind: str  # LPTB | TNCN
    declaration_id: str
    dossier_code: str
    payer_role: str
    payer_name: str
    base: int
    rate: Decimal
    amount: int
    issued: date
    due: date
    paid_on: date | None = None
    receipt: str | None = None
    overdue_reported: bool = False

    def status(self, today: date) -> str:
        if self.paid_on is not None:
            return "PAID"
        return "OVERDUE" if today > self.due else "UNPAID"

    def wire(self) -> dict[str, Any]:
        return {
            "noticeNumber": self.number,
            "kind": self.kind,
            "payerRole": self.payer_role,
            "payerName": self.payer_name,
            "baseAmount": self.base,
            "rate": self.rate,
            "amount": self.amount,
            "issuedDate": self.issued,
            "dueDate": self.due,
        }

    def payment(self, today: date) -> dict[str, Any]:
        out: dict[str, Any] = {
            "noticeNumber": self.number,
            "kind": self.kind,
            "amount": self.amount,
            "dueDate": self.due,
            "status": self.status(today),
        }
        if self.paid_on is not None:
            out |= {"paidDate": self.paid_on, "receiptNumber": self.receipt}
        return out


@dataclass
class Declaration:
    id: str
    request_id: str
    fingerprint: str
    dossier_code: str
    received_at: datetime
    office: tuple[str, str]
    notices: list[Notice]
    settled: bool = False

    def wire(self) -> dict[str, Any]:
        return {
            "declarationId": self.id,
            "dossierCode": self.dossier_code,
            "receivedAt": self.received_at,
            "taxOffice": {"code": self.office[0], "name": self.office[1]},
            "notice": [n.wire() for n in self.notices],
            "totalAmount": sum(n.amount for n in self.notices),
        }


@dataclass
class Event:
    sequence: int
    type: str  # PAID | OVERDUE | SETTLED
    at: datetime
    declaration: Declaration
    notices: list[Notice]

    @property
    def event_id(self) -> str:
        if self.type == "SETTLED":
            return f"{self.declaration.id}-SETTLED"
        return f"{self.notices[0].number}-{self.type}"

    def wire(self, today: date) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sequence": self.sequence,
            "eventId": self.event_id,
            "eventType": self.type,
            "eventTime": self.at,
            "declarationId": self.declaration.id,
            "dossierCode": self.declaration.dossier_code,
            "payment": [n.payment(today) for n in self.notices],
        }
        if self.type == "SETTLED":
            out["confirmation"] = confirmation(self.declaration)
        return out


def confirmation(d: Declaration) -> dict[str, Any]:
    """Giấy xác nhận hoàn thành nghĩa vụ tài chính, as a small PDF."""
    lines = [f"{n.kind} {n.number}: {n.amount} VND, bien lai {n.receipt}" for n in d.notices]
    pdf = f"%PDF-1.4\n% xac nhan hoan thanh nghia vu tai chinh {d.dossier_code}\n% {'; '.join(lines)}\n".encode()
    return {
        "documentNumber": f"XN-{d.id}",
        "title": "Xác nhận hoàn thành nghĩa vụ tài chính về đất đai",
        "mediaType": "application/pdf",
        "content": pdf,
    }


@dataclass(frozen=True)
class Rates:
    registration_fee: Decimal = Decimal("0.005")
    income_tax: Decimal = Decimal("0.02")
    due_days: int = 10


def _now() -> datetime:
    return datetime.now(VN_TZ)


@dataclass
class Ledger:
    taxpayers: list[Taxpayer]
    rates: Rates = field(default_factory=Rates)
    clock: Callable[[], datetime] = _now
    declarations: dict[str, Declaration] = field(default_factory=dict)  # by request id
    by_dossier: dict[str, Declaration] = field(default_factory=dict)
    notices: dict[str, Notice] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    _register: dict[str, Taxpayer] = field(default_factory=dict)
    _serial: int = 0

    def __post_init__(self) -> None:
        for t in self.taxpayers:
            self._register[t.tax_code] = t
            if t.personal_id:
                self._register[t.personal_id] = t

    def _next(self, prefix: str, width: int = 7) -> str:
        self._serial += 1
        return f"{prefix}-{self.clock():%y}-{self._serial:0{width}d}"

    # -- taxpayers -------------------------------------------------------------------------------

    def taxpayer(self, query: Mapping[str, Any]) -> dict[str, Any]:
        key = query.get("taxCode") or query.get("personalId") or ""
        t = self._register.get(key)
        if t is None:
            raise LedgerFault("Client", "TaxpayerNotFound", f"no taxpayer {key}")
        out: dict[str, Any] = {
            "taxCode": t.tax_code,
            "name": t.name,
            "taxpayerType": t.kind,
            "status": t.status,
            "taxOffice": {"code": f"T{t.province}", "name": office_name(t.province)},
        }
        if t.personal_id:
            out["personalId"] = t.personal_id
        if t.address:
            out["address"] = t.address
        return out

    def _enrol(self, party: Mapping[str, Any], province: str) -> None:
        pid = party["personalId"]
        if pid not in self._register:
            self._register[pid] = Taxpayer(pid, party["fullName"], "INDIVIDUAL", province, personal_id=pid)

    # -- declarations ----------------------------------------------------------------------------

    def declare(self, req: Mapping[str, Any]) -> tuple[Declaration, bool]:
        """(the declaration, whether it is new). The same request id gets the same declaration back."""
        fingerprint = hashlib.sha256(repr({k: v for k, v in req.items() if k != "requestId"}).encode()).hexdigest()
        known = self.declarations.get(req["requestId"])
        if known is not None:
            if known.fingerprint != fingerprint:
                raise LedgerFault(
                    "Client", "RequestIdReused", f"request id {req['requestId']} was used for another declaration"
                )
            return known, False
        code = req["dossierCode"]
        if code in self.by_dossier:
            raise LedgerFault("Client", "DossierAlreadyDeclared", f"dossier {code} was declared by another request")
        parcel, transferor, transferee = req["parcel"], req["transferor"], req["transferee"]
        unit = communes().get(parcel["communeCode"])
        if unit is None or unit.province_code != parcel["provinceCode"]:
            raise LedgerFault(
                "Client",
                "InvalidParcel",
                f"commune {parcel['communeCode']} is not in province {parcel['provinceCode']}",
            )
        if transferor["personalId"] == transferee["personalId"]:
            raise LedgerFault("Client", "InvalidDeclaration", "the transferor and the transferee are the same person")
        now = self.clock()
        decl_id = self._next("TK", 6)
        price = int(req["declaredPrice"])
        plan = [("LPTB", "TRANSFEREE", transferee, self.rates.registration_fee)]
        if not req.get("pitExemption"):
            plan.append(("TNCN", "TRANSFEROR", transferor, self.rates.income_tax))
        notices = [
            Notice(
                number=self._next(kind),
                kind=kind,
                declaration_id=decl_id,
                dossier_code=code,
                payer_role=role,
                payer_name=party["fullName"],
                base=price,
                rate=rate,
                amount=int((Decimal(price) * rate).quantize(Decimal(1), ROUND_HALF_UP)),
                issued=now.date(),
                due=now.date() + timedelta(days=self.rates.due_days),
            )
            for kind, role, party, rate in plan
        ]
        province = parcel["provinceCode"]
        d = Declaration(
            decl_id, req["requestId"], fingerprint, code, now, (f"T{province}", office_name(province)), notices
        )
        self.declarations[d.request_id] = self.by_dossier[code] = d
        self.notices.update((n.number, n) for n in notices)
        self._enrol(transferor, province)
        self._enrol(transferee, province)
        return d, True

    # -- payments --------------------------------------------------------------------------------

    def notice(self, number: str) -> Notice:
        n = self.notices.get(number)
        if n is None:
            raise LedgerFault("Client", "NoticeNotFound", f"no notice {number}")
        return n

    def payment(self, number: str) -> dict[str, Any]:
        n = self.notice(number)
        return {"dossierCode": n.dossier_code, "payment": n.payment(self.clock().date())}

    def _event(self, kind: str, d: Declaration, notices: list[Notice]) -> Event:
        event = Event(len(self.events) + 1, kind, self.clock(), d, notices)
        self.events.append(event)
        return event

    def pay(self, number: str) -> list[Event]:
        """The applicant pays one notice: a PAID event, and SETTLED once the declaration has no debt."""
        n = self.notice(number)
        if n.paid_on is not None:
            return []
        n.paid_on, n.receipt = self.clock().date(), self._next("BL")
        d = self.by_dossier[n.dossier_code]
        out = [self._event("PAID", d, [n])]
        if all(x.paid_on is not None for x in d.notices):
            d.settled = True
            out.append(self._event("SETTLED", d, list(d.notices)))
        return out

    def pay_dossier(self, dossier_code: str) -> list[Event]:
        d = self.by_dossier.get(dossier_code)
        if d is None:
            raise LedgerFault("Client", "DeclarationNotFound", f"no declaration for dossier {dossier_code}")
        return [e for n in d.notices for e in self.pay(n.number)]

    def sweep_overdue(self) -> None:
        today = self.clock().date()
        for n in self.notices.values():
            if not n.overdue_reported and n.status(today) == "OVERDUE":
                n.overdue_reported = True
                self._event("OVERDUE", self.by_dossier[n.dossier_code], [n])

    def updates(self, since: int, limit: int = 100) -> dict[str, Any]:
        """GetNoticeUpdates' answer: events after `since`, oldest first."""
        self.sweep_overdue()
        today = self.clock().date()
        page = self.events[since : since + limit]
        newest = len(self.events)
        return {
            "event": [e.wire(today) for e in page],
            "lastSequence": page[-1].sequence if page else min(since, newest),
            "moreAvailable": since + len(page) < newest,
        }
