"""Pure mapping between the canonical contract and the tax service's SOAP messages (no I/O).

Answers arrive as plain dicts (zeep.helpers.serialize_object), so this module never sees zeep.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from contracts import Dossier, DossierStatus, ResultDocument
from gateway.sdk import AgencyUpdate, MalformedAnswer
from plugins.tax.forms import LandTransferTaxForm, NoticeAnswer, Party, TaxpayerAnswer, TaxpayerQuery

KIND_FROM_WIRE = {"LPTB": "registration_fee", "TNCN": "personal_income_tax"}
KIND_NAMES = {"LPTB": "Lệ phí trước bạ nhà, đất", "TNCN": "Thuế thu nhập cá nhân từ chuyển nhượng bất động sản"}
EXEMPTION_TO_WIRE = {"family": "FAMILY", "sole_residence": "SOLE_RESIDENCE"}
RESULT_COMPONENT = "KQ_NVTC"  # the confirmation that the financial obligation is fulfilled


def request_id(idempotency_key: str) -> str:
    """At most 40 characters, the same on every attempt: the dossier UUID without dashes plus the step."""
    did, _, step = idempotency_key.partition(":")
    rid = f"{did.replace('-', '')}-{step}"
    if len(rid) <= 40:
        return rid
    return f"{did.replace('-', '')[:32]}-{hashlib.sha256(step.encode()).hexdigest()[:7]}"


def _party(p: Party) -> dict[str, Any]:
    out: dict[str, Any] = {"personalId": p.personal_id, "fullName": p.full_name}
    if p.tax_code:
        out["taxCode"] = p.tax_code
    return out


def documents(dossier: Dossier, contents: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """The AttachedDocument elements: each document with what is declared of it, and its content (zeep writes
    it as base64Binary). `contents` holds the documents' bytes by sha256 (from the gateway's document store)."""
    out = []
    for a in dossier.submission.attachments:
        if a.content_base64 is not None:
            content = base64.b64decode(a.content_base64)
        elif a.sha256 in contents:
            content = contents[a.sha256]
        else:
            raise ValueError(f"document {a.component_code} ({a.name}) was not read")
        out.append(
            {
                "componentCode": a.component_code,
                "title": a.name,
                "mediaType": a.media_type,
                "size": a.size,
                "sha256": a.sha256,
                "content": content,
            }
        )
    return out


def declaration_request(
    dossier: Dossier, idempotency_key: str, contents: Mapping[str, bytes] | None = None
) -> dict[str, Any]:
    """SubmitLandTransferDeclaration's parameters. ValueError (pydantic's included) if the form does not fit."""
    form = LandTransferTaxForm.model_validate(dossier.submission.form)
    parcel = form.parcel
    params: dict[str, Any] = {
        "requestId": request_id(idempotency_key),
        "dossierCode": dossier.code,
        "procedureCode": dossier.procedure_code,
        "receivingUnit": dossier.receiving_unit,
        "transferor": _party(form.transferor),
        "transferee": _party(form.transferee),
        "parcel": {
            "provinceCode": parcel.province,
            "communeCode": parcel.commune,
            "mapSheetNo": parcel.map_sheet_no,
            "parcelNo": parcel.parcel_no,
            "areaM2": parcel.area_m2,
            "address": parcel.address,
        },
        "declaredPrice": form.declared_price_vnd,
    }
    if form.contract_date is not None:
        params["contractDate"] = form.contract_date
    if form.pit_exemption is not None:
        params["pitExemption"] = EXEMPTION_TO_WIRE[form.pit_exemption]
    if dossier.submission.attachments:
        params["document"] = documents(dossier, contents or {})
    return params


def _day(value: Any) -> str:
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {value!r}")
    return value.isoformat()


def _notice(n: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "notice_number": str(n["noticeNumber"]),
        "kind": KIND_FROM_WIRE[n["kind"]],
        "name": KIND_NAMES[n["kind"]],
        "payer": "transferor" if n["payerRole"] == "TRANSFEROR" else "transferee",
        "payer_name": str(n["payerName"]),
        "base_vnd": int(n["baseAmount"]),
        "rate": str(n["rate"]),
        "amount_vnd": int(n["amount"]),
        "issued_date": _day(n["issuedDate"]),
        "due_date": _day(n["dueDate"]),
    }


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


def notices_update(answer: Mapping[str, Any]) -> AgencyUpdate:
    """The declaration's answer -> status 6 (financial obligation) with the notices to pay."""
    try:
        decl = str(answer["declarationId"])
        notices = [_notice(n) for n in answer["notice"]]
        if not notices:
            raise ValueError("no notice")
        total = int(answer["totalAmount"])
        due = min(n["due_date"] for n in notices)
        office = answer["taxOffice"]
        received = answer["receivedAt"]
        if not isinstance(received, datetime) or received.tzinfo is None:
            raise ValueError(f"receivedAt {received!r} has no UTC offset")
        return AgencyUpdate(
            event_id=f"{decl}-notices",
            dossier_code=str(answer["dossierCode"]),
            status=DossierStatus.FINANCIAL_OBLIGATION,
            note=f"Cơ quan thuế đã ra {len(notices)} thông báo nộp tiền, tổng {_vnd(total)}, hạn nộp {due}",
            at=received,
            agency_ref=decl,
            data={
                "declaration_id": decl,
                "tax_office": {"code": str(office["code"]), "name": str(office["name"])},
                "notices": notices,
                "total_vnd": total,
                "due_date": due,
            },
            outputs={"notice_numbers": [n["notice_number"] for n in notices], "total_vnd": total},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"tax: declaration answer is missing or has an invalid {exc}") from exc


def _receipt(p: Mapping[str, Any]) -> dict[str, Any]:
    if p["status"] != "PAID" or not p.get("receiptNumber"):
        raise ValueError(f"notice {p['noticeNumber']} is {p['status']} in a SETTLED event")
    return {
        "notice_number": str(p["noticeNumber"]),
        "kind": KIND_FROM_WIRE[p["kind"]],
        "amount_vnd": int(p["amount"]),
        "paid_date": _day(p["paidDate"]),
        "receipt_number": str(p["receiptNumber"]),
    }


def _confirmation(doc: Mapping[str, Any] | None) -> list[ResultDocument]:
    if not doc:
        return []
    content = doc["content"]
    if not isinstance(content, bytes):
        raise TypeError("confirmation content is not base64Binary")
    return [
        ResultDocument(
            name=str(doc["title"]),
            component_code=RESULT_COMPONENT,
            result_code=str(doc["documentNumber"]),
            media_type=str(doc["mediaType"]),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            content_base64=base64.b64encode(content).decode(),
        )
    ]


def settled_update(event: Mapping[str, Any]) -> AgencyUpdate:
    """A SETTLED event (every notice of the declaration paid) -> status 9 with the receipts."""
    try:
        receipts = [_receipt(p) for p in event["payment"]]
        if not receipts:
            raise ValueError("no payment")
        paid = sum(r["amount_vnd"] for r in receipts)
        at = event["eventTime"]
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValueError(f"eventTime {at!r} has no UTC offset")
        return AgencyUpdate(
            event_id=str(event["eventId"]),
            dossier_code=str(event["dossierCode"]),
            status=DossierStatus.FINISHED,
            note=f"Đã hoàn thành nghĩa vụ tài chính: {len(receipts)} khoản, {_vnd(paid)}",
            at=at,
            agency_ref=str(event["declarationId"]),
            data={"declaration_id": str(event["declarationId"]), "receipts": receipts, "total_paid_vnd": paid},
            results=_confirmation(event.get("confirmation")),
            outputs={"tax_receipts": receipts},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"tax: SETTLED event is missing or has an invalid {exc}") from exc


def poll_updates(events: Sequence[Mapping[str, Any]]) -> tuple[list[AgencyUpdate], list[str]]:
    """Updates for SETTLED events; PAID and OVERDUE leave the status at 6. Also the unreadable events."""
    updates: list[AgencyUpdate] = []
    problems: list[str] = []
    for event in events:
        if event.get("eventType") != "SETTLED":
            continue
        try:
            updates.append(settled_update(event))
        except MalformedAnswer as exc:
            problems.append(f"event {event.get('sequence')}: {exc}")
    return updates, problems


def taxpayer_request(q: TaxpayerQuery) -> dict[str, str]:
    return {"taxCode": q.tax_code} if q.tax_code else {"personalId": str(q.personal_id)}


def taxpayer_answer(body: Mapping[str, Any]) -> TaxpayerAnswer:
    try:
        return TaxpayerAnswer(
            found=True,
            tax_code=str(body["taxCode"]),
            personal_id=body.get("personalId"),
            name=str(body["name"]),
            kind="individual" if body["taxpayerType"] == "INDIVIDUAL" else "organisation",
            status=str(body["status"]).lower(),
            tax_office=str(body["taxOffice"]["name"]),
            address=body.get("address"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"tax: taxpayer answer is missing or has an invalid {exc}") from exc


def notice_answer(body: Mapping[str, Any]) -> NoticeAnswer:
    try:
        p = body["payment"]
        return NoticeAnswer(
            found=True,
            notice_number=str(p["noticeNumber"]),
            dossier_code=str(body["dossierCode"]),
            kind=KIND_FROM_WIRE[p["kind"]],
            amount_vnd=int(p["amount"]),
            due_date=p["dueDate"],
            status=str(p["status"]).lower(),
            paid_date=p.get("paidDate"),
            receipt_number=p.get("receiptNumber"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"tax: notice answer is missing or has an invalid {exc}") from exc
