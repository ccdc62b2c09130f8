"""Tax wire mapping: canonical dossier -> declaration request; answers and events -> canonical updates."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import DossierStatus
from gateway.errors import MalformedAnswer
from plugins.tax import wire
from plugins.tax.forms import LandTransferTaxForm, TaxpayerQuery
from tests.plugins.tax.conftest import CODE, DID, HEX, make_dossier

ICT = timezone(timedelta(hours=7))
RECEIVED = datetime(2026, 11, 20, 9, 30, tzinfo=ICT)
PDF = b"%PDF-1.4 xac nhan"


def notice(number: str, kind: str, amount: int, role: str = "TRANSFEREE") -> dict[str, Any]:
    return {
        "noticeNumber": number,
        "kind": kind,
        "payerRole": role,
        "payerName": "Đỗ Văn Hải",
        "baseAmount": 3_000_000_000,
        "rate": Decimal("0.005") if kind == "LPTB" else Decimal("0.02"),
        "amount": amount,
        "issuedDate": date(2026, 11, 20),
        "dueDate": date(2026, 11, 30),
    }


ANSWER: dict[str, Any] = {
    "declarationId": "TK-26-000001",
    "dossierCode": CODE,
    "receivedAt": RECEIVED,
    "taxOffice": {"code": "T01", "name": "Thuế Thành phố Hà Nội"},
    "notice": [
        notice("LPTB-26-0000002", "LPTB", 15_000_000),
        notice("TNCN-26-0000003", "TNCN", 60_000_000, "TRANSFEROR"),
    ],
    "totalAmount": 75_000_000,
}


def payment(number: str, kind: str, amount: int, status: str = "PAID") -> dict[str, Any]:
    out = {"noticeNumber": number, "kind": kind, "amount": amount, "dueDate": date(2026, 11, 30), "status": status}
    if status == "PAID":
        out |= {"paidDate": date(2026, 11, 24), "receiptNumber": f"BL-{number}"}
    return out


SETTLED: dict[str, Any] = {
    "sequence": 3,
    "eventId": "TK-26-000001-SETTLED",
    "eventType": "SETTLED",
    "eventTime": datetime(2026, 11, 24, 10, 0, tzinfo=ICT),
    "declarationId": "TK-26-000001",
    "dossierCode": CODE,
    "payment": [payment("LPTB-26-0000002", "LPTB", 15_000_000), payment("TNCN-26-0000003", "TNCN", 60_000_000)],
    "confirmation": {
        "documentNumber": "XN-TK-26-000001",
        "title": "Xác nhận hoàn thành nghĩa vụ tài chính về đất đai",
        "mediaType": "application/pdf",
        "content": PDF,
    },
}


def test_request_id_fits_40_characters() -> None:
    assert wire.request_id(f"{DID}:submit") == f"{HEX}-submit"
    long = wire.request_id(f"{DID}:supplement-12")
    assert len(long) == 40 and long.startswith(HEX)
    assert long != wire.request_id(f"{DID}:supplement-13")


def test_declaration_request(sub: dict[str, Any]) -> None:
    params = wire.declaration_request(make_dossier(sub), f"{DID}:submit")
    form = sub["form"]
    assert params == {
        "requestId": f"{HEX}-submit",
        "dossierCode": CODE,
        "procedureCode": "1.010912",
        "receivingUnit": "000.00.01.H26",
        "transferor": {"personalId": form["transferor"]["personal_id"], "fullName": form["transferor"]["full_name"]},
        "transferee": {"personalId": form["transferee"]["personal_id"], "fullName": form["transferee"]["full_name"]},
        "parcel": {
            "provinceCode": form["parcel"]["province"],
            "communeCode": form["parcel"]["commune"],
            "mapSheetNo": form["parcel"]["map_sheet_no"],
            "parcelNo": form["parcel"]["parcel_no"],
            "areaM2": Decimal(str(form["parcel"]["area_m2"])),
            "address": form["parcel"]["address"],
        },
        "declaredPrice": form["declared_price_vnd"],
        "document": [
            {
                "componentCode": a["component_code"],
                "title": a["name"],
                "mediaType": a["media_type"],
                "size": a["size"],
                "sha256": a["sha256"],
                "content": base64.b64decode(a["content_base64"]),
            }
            for a in sub["attachments"]
        ],
    }
    assert [d["componentCode"] for d in params["document"]] == ["TK01LPTB", "TK03TNCN", "HDCN"]


def test_optional_fields_of_the_request(sub: dict[str, Any]) -> None:
    form = {
        **sub["form"],
        "contract_date": "2026-11-02",
        "pit_exemption": "sole_residence",
        "transferor": {**sub["form"]["transferor"], "tax_code": "8012345678"},
    }
    params = wire.declaration_request(make_dossier({**sub, "form": form}), f"{DID}:submit")
    assert (params["contractDate"], params["pitExemption"]) == (date(2026, 11, 2), "SOLE_RESIDENCE")
    assert params["transferor"]["taxCode"] == "8012345678"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"declared_price_vnd": 0}, "greater than 0"),
        ({"parcel": {"province": "79", "commune": "00070"}}, "commune 00070"),
        ({"parcel": {"area_m2": "85.123"}}, "decimal places"),
        ({"transferee": {"personal_id": "12345"}}, "12 digits"),
    ],
)
def test_form_is_checked(sub: dict[str, Any], change: dict[str, Any], message: str) -> None:
    form = {k: ({**sub["form"][k], **v} if isinstance(v, dict) else v) for k, v in change.items()}
    with pytest.raises(ValidationError, match=message):
        LandTransferTaxForm.model_validate({**sub["form"], **form})


def test_notices_update() -> None:
    u = wire.notices_update(ANSWER)
    assert (u.event_id, u.dossier_code, u.status, u.at, u.agency_ref) == (
        "TK-26-000001-notices",
        CODE,
        DossierStatus.FINANCIAL_OBLIGATION,
        RECEIVED,
        "TK-26-000001",
    )
    assert u.note == "Cơ quan thuế đã ra 2 thông báo nộp tiền, tổng 75.000.000 đồng, hạn nộp 2026-11-30"
    assert u.data["notices"][1] == {
        "notice_number": "TNCN-26-0000003",
        "kind": "personal_income_tax",
        "name": "Thuế thu nhập cá nhân từ chuyển nhượng bất động sản",
        "payer": "transferor",
        "payer_name": "Đỗ Văn Hải",
        "base_vnd": 3_000_000_000,
        "rate": "0.02",
        "amount_vnd": 60_000_000,
        "issued_date": "2026-11-20",
        "due_date": "2026-11-30",
    }
    assert (u.data["total_vnd"], u.data["due_date"], u.data["tax_office"]["code"]) == (75_000_000, "2026-11-30", "T01")
    assert u.outputs == {"notice_numbers": ["LPTB-26-0000002", "TNCN-26-0000003"], "total_vnd": 75_000_000}


@pytest.mark.parametrize(
    "broken",
    [
        {**ANSWER, "notice": []},
        {**ANSWER, "receivedAt": datetime(2026, 11, 20, 9, 30)},
        {**ANSWER, "notice": [{**ANSWER["notice"][0], "kind": "VAT"}]},
        {k: v for k, v in ANSWER.items() if k != "taxOffice"},
    ],
)
def test_unusable_declaration_answer(broken: dict[str, Any]) -> None:
    with pytest.raises(MalformedAnswer, match="tax: declaration answer"):
        wire.notices_update(broken)


def test_settled_update() -> None:
    u = wire.settled_update(SETTLED)
    assert (u.event_id, u.status, u.agency_ref) == ("TK-26-000001-SETTLED", DossierStatus.FINISHED, "TK-26-000001")
    assert u.outputs["tax_receipts"] == [
        {
            "notice_number": "LPTB-26-0000002",
            "kind": "registration_fee",
            "amount_vnd": 15_000_000,
            "paid_date": "2026-11-24",
            "receipt_number": "BL-LPTB-26-0000002",
        },
        {
            "notice_number": "TNCN-26-0000003",
            "kind": "personal_income_tax",
            "amount_vnd": 60_000_000,
            "paid_date": "2026-11-24",
            "receipt_number": "BL-TNCN-26-0000003",
        },
    ]
    assert u.data["total_paid_vnd"] == 75_000_000
    [doc] = u.results
    assert (doc.name, doc.result_code, doc.size, doc.sha256) == (
        "Xác nhận hoàn thành nghĩa vụ tài chính về đất đai",
        "XN-TK-26-000001",
        len(PDF),
        hashlib.sha256(PDF).hexdigest(),
    )
    assert base64.b64decode(doc.content_base64 or "") == PDF
    assert wire.settled_update({k: v for k, v in SETTLED.items() if k != "confirmation"}).results == []


def test_poll_updates_keep_settled_events_and_report_broken_ones() -> None:
    paid = {**SETTLED, "sequence": 1, "eventType": "PAID", "payment": SETTLED["payment"][:1]}
    unpaid = [payment("LPTB-26-0000005", "LPTB", 1, "UNPAID")]
    broken = {**SETTLED, "sequence": 4, "eventId": "TK-26-000004-SETTLED", "payment": unpaid}
    updates, problems = wire.poll_updates([paid, SETTLED, broken])
    assert [u.event_id for u in updates] == ["TK-26-000001-SETTLED"]
    assert problems == [
        "event 4: tax: SETTLED event is missing or has an invalid notice LPTB-26-0000005 is UNPAID in a SETTLED event"
    ]


def test_taxpayer_mapping() -> None:
    assert wire.taxpayer_request(TaxpayerQuery(tax_code="0101234567")) == {"taxCode": "0101234567"}
    assert wire.taxpayer_request(TaxpayerQuery(personal_id="001154075954")) == {"personalId": "001154075954"}
    with pytest.raises(ValidationError, match="either tax_code or personal_id"):
        TaxpayerQuery(tax_code="0101234567", personal_id="001154075954")
    answer = wire.taxpayer_answer(
        {
            "taxCode": "0101234567",
            "name": "Công ty TNHH Địa ốc Bảo 1",
            "taxpayerType": "ORGANISATION",
            "status": "CLOSED",
            "taxOffice": {"code": "T01", "name": "Thuế Thành phố Hà Nội"},
        }
    )
    assert (answer.kind, answer.status, answer.tax_office, answer.personal_id) == (
        "organisation",
        "closed",
        "Thuế Thành phố Hà Nội",
        None,
    )
    with pytest.raises(MalformedAnswer):
        wire.taxpayer_answer({"taxCode": "0101234567", "name": "X", "taxpayerType": "ORGANISATION", "status": "GONE"})


def test_notice_mapping() -> None:
    body = {"dossierCode": CODE, "payment": payment("LPTB-26-0000002", "LPTB", 15_000_000, "OVERDUE")}
    answer = wire.notice_answer(body)
    assert (answer.status, answer.kind, answer.due_date, answer.paid_date) == (
        "overdue",
        "registration_fee",
        date(2026, 11, 30),
        None,
    )
    with pytest.raises(MalformedAnswer):
        wire.notice_answer({"dossierCode": CODE})
