"""The simulator's books: amounts, due dates, de-duplication, payments, overdue notices, the event log."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts.calendar import VN_TZ
from plugins.tax.ledger import Ledger, LedgerFault, Rates
from plugins.tax.register import Taxpayer

CODE = "000.00.01.H26-261120-0001"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=VN_TZ)

    def __call__(self) -> datetime:
        return self.now


def request(rid: str = "r-1", code: str = CODE, price: int = 2_345_678_901, **extra: Any) -> dict[str, Any]:
    return {
        "requestId": rid,
        "dossierCode": code,
        "procedureCode": "1.010912",
        "receivingUnit": "000.00.01.H26",
        "transferor": {"personalId": "048190001234", "fullName": "Trần Thị Hồng", "taxCode": None},
        "transferee": {"personalId": "079085004321", "fullName": "Đỗ Văn Hải", "taxCode": None},
        "parcel": {
            "provinceCode": "01",
            "communeCode": "00070",
            "mapSheetNo": "12",
            "parcelNo": "345",
            "areaM2": Decimal("85.50"),
            "address": "Số 1 Tràng Tiền",
        },
        "declaredPrice": price,
        "contractDate": None,
        "pitExemption": None,
    } | extra


COMPANY = Taxpayer("0101234567", "Công ty TNHH Địa ốc Bảo 1", "ORGANISATION", "01", status="CLOSED")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock: Clock) -> Ledger:
    return Ledger([COMPANY], clock=clock)


def test_amounts_are_rounded_half_up_and_due_in_ten_days(ledger: Ledger) -> None:
    d, new = ledger.declare(request())
    assert new
    answer = d.wire()
    assert [(n["kind"], n["amount"], n["rate"]) for n in answer["notice"]] == [
        ("LPTB", 11_728_395, Decimal("0.005")),  # 11,728,394.505
        ("TNCN", 46_913_578, Decimal("0.02")),  # 46,913,578.02
    ]
    assert answer["totalAmount"] == 11_728_395 + 46_913_578
    assert {n["dueDate"] - n["issuedDate"] for n in answer["notice"]} == {timedelta(days=10)}
    assert answer["taxOffice"] == {"code": "T01", "name": "Thuế Thành phố Hà Nội"}


def test_rates_are_settings(clock: Clock) -> None:
    ledger = Ledger([], Rates(Decimal("0.01"), Decimal("0.1"), 30), clock)
    d, _ = ledger.declare(request(price=1_000_000_000))
    assert [n.amount for n in d.notices] == [10_000_000, 100_000_000]
    assert d.notices[0].due == clock.now.date() + timedelta(days=30)


def test_declarations_are_deduplicated(ledger: Ledger) -> None:
    first, _ = ledger.declare(request())
    again, new = ledger.declare(request())
    assert (again is first, new) == (True, False)
    with pytest.raises(LedgerFault) as reused:
        ledger.declare(request(price=1))
    assert (reused.value.code, reused.value.subcode) == ("Client", "RequestIdReused")
    with pytest.raises(LedgerFault) as twice:
        ledger.declare(request("r-2"))
    assert twice.value.subcode == "DossierAlreadyDeclared"


@pytest.mark.parametrize(
    ("change", "subcode"),
    [
        ({"parcel": {**request()["parcel"], "provinceCode": "79"}}, "InvalidParcel"),
        ({"transferee": request()["transferor"]}, "InvalidDeclaration"),
    ],
)
def test_semantic_checks(ledger: Ledger, change: dict[str, Any], subcode: str) -> None:
    with pytest.raises(LedgerFault) as err:
        ledger.declare(request(**change))
    assert (err.value.code, err.value.subcode) == ("Client", subcode)


def test_paying_every_notice_settles(ledger: Ledger, clock: Clock) -> None:
    d, _ = ledger.declare(request())
    fee, tax = (n.number for n in d.notices)
    clock.now += timedelta(days=2)
    assert [e.type for e in ledger.pay(fee)] == ["PAID"]
    assert ledger.pay(fee) == []  # paying twice changes nothing
    assert not d.settled
    assert [e.type for e in ledger.pay_dossier(CODE)] == ["PAID", "SETTLED"]
    assert d.settled
    page = ledger.updates(0)
    settled = page["event"][-1]
    assert [p["status"] for p in settled["payment"]] == ["PAID", "PAID"]
    assert settled["payment"][1]["paidDate"] == clock.now.date()
    assert settled["payment"][1]["receiptNumber"].startswith("BL-26-")
    assert settled["confirmation"]["content"].startswith(b"%PDF-1.4")
    assert (settled["eventId"], page["lastSequence"], page["moreAvailable"]) == (f"{d.id}-SETTLED", 3, False)
    assert ledger.payment(tax)["payment"]["status"] == "PAID"


def test_overdue_notices_are_reported_once(ledger: Ledger, clock: Clock) -> None:
    d, _ = ledger.declare(request(pitExemption="FAMILY"))
    [fee] = d.notices
    clock.now += timedelta(days=10)
    assert ledger.updates(0)["event"] == []  # due today: not yet overdue
    clock.now += timedelta(days=1)
    [event] = ledger.updates(0)["event"]
    assert (event["eventType"], event["eventId"], event["payment"][0]["status"]) == (
        "OVERDUE",
        f"{fee.number}-OVERDUE",
        "OVERDUE",
    )
    assert len(ledger.updates(0)["event"]) == 1
    assert ledger.payment(fee.number)["payment"]["status"] == "OVERDUE"
    assert [e.type for e in ledger.pay(fee.number)] == ["PAID", "SETTLED"]  # late payment still settles


def test_update_pages_and_a_reset_log(ledger: Ledger) -> None:
    for i in range(3):
        ledger.declare(request(f"r-{i}", f"000.00.01.H26-261120-000{i + 1}"))
        ledger.pay_dossier(f"000.00.01.H26-261120-000{i + 1}")
    first = ledger.updates(0, 4)
    assert ([e["sequence"] for e in first["event"]], first["lastSequence"], first["moreAvailable"]) == (
        [1, 2, 3, 4],
        4,
        True,
    )
    rest = ledger.updates(4, 100)
    assert ([e["sequence"] for e in rest["event"]], rest["lastSequence"], rest["moreAvailable"]) == (
        [5, 6, 7, 8, 9],
        9,
        False,
    )
    assert ledger.updates(9) == {"event": [], "lastSequence": 9, "moreAvailable": False}
    # A caller ahead of the log (the service was reset): told the newest sequence, to start over.
    assert ledger.updates(500) == {"event": [], "lastSequence": 9, "moreAvailable": False}


def test_taxpayers(ledger: Ledger) -> None:
    company = ledger.taxpayer({"taxCode": "0101234567", "personalId": None})
    assert (company["status"], company["taxpayerType"], "personalId" in company) == ("CLOSED", "ORGANISATION", False)
    with pytest.raises(LedgerFault) as err:
        ledger.taxpayer({"taxCode": None, "personalId": "079085004321"})
    assert err.value.subcode == "TaxpayerNotFound"
    ledger.declare(request())  # both parties are enrolled by their first declaration
    person = ledger.taxpayer({"taxCode": None, "personalId": "079085004321"})
    assert (person["name"], person["taxCode"], person["taxOffice"]["code"]) == ("Đỗ Văn Hải", "079085004321", "T01")
