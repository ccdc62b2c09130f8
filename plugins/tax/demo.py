"""Realistic land-transfer tax declarations for the demo and the benchmark, from the synthetic register."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from contracts.admin_units import communes
from contracts.samples import attachment, pdf_attachment, tax_declaration_xml
from gateway.sdk import RunningSimulator, SimulatorBinding
from plugins.tax.register import Person, people

# The demo centres' provinces (Hà Nội, TP Hồ Chí Minh, Đà Nẵng): parcels lie there.
PARCEL_PROVINCES = ["01", "79", "48"]
PRICE_PER_M2 = {"01": (60, 250), "79": (50, 220), "48": (25, 90)}  # million VND, a plausible range
STREETS = ["Nguyễn Trãi", "Lê Lợi", "Trần Phú", "Hai Bà Trưng", "Lý Thường Kiệt", "Phan Chu Trinh"]


def declarations(
    seller: tuple[str, str], buyer: tuple[str, str], sheet: str, parcel: str, price: int
) -> list[dict[str, Any]]:
    """What the tax office requires (plugins/tax: TK01LPTB, TK03TNCN, HDCN): the two declarations as the
    e-tax forms export them (XML), and the notarised contract, scanned."""
    where = {"soToBanDo": sheet, "soThua": parcel, "giaTriChuyenNhuong": price}
    fee = tax_declaration_xml("01/LPTB", "TỜ KHAI LỆ PHÍ TRƯỚC BẠ NHÀ, ĐẤT", *buyer, where)
    pit = tax_declaration_xml("03/BĐS-TNCN", "TỜ KHAI THUẾ THU NHẬP CÁ NHÂN", *seller, where)
    contract = f"Ben A: {seller[0]}; ben B: {buyer[0]}; thua {parcel}, to ban do {sheet}"
    return [
        attachment("TK01LPTB", "Tờ khai lệ phí trước bạ nhà, đất (01/LPTB)", fee, "application/xml"),
        attachment("TK03TNCN", "Tờ khai thuế thu nhập cá nhân (03/BĐS-TNCN)", pit, "application/xml"),
        pdf_attachment("HDCN", "Hợp đồng chuyển nhượng quyền sử dụng đất", contract, scan=(480, 640)),
    ]


def _party(p: Person) -> dict[str, str]:
    return {"full_name": p.full_name, "personal_id": p.personal_id}


def demo_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    register = people(7)  # the simulator's register (seed 7): look-ups of these people succeed
    by_province = {p: [c.code for c in communes().values() if c.province_code == p] for p in PARCEL_PROVINCES}
    out = []
    for i in range(count):
        seller, buyer = register[(2 * i) % len(register)], register[(2 * i + 1) % len(register)]
        province = rng.choice(PARCEL_PROVINCES)
        commune = rng.choice(by_province[province])
        area = rng.randint(3_000, 25_000) / 100
        low, high = PRICE_PER_M2[province]
        price = round(area * rng.randint(low, high)) * 1_000_000
        sheet, parcel = str(rng.randint(1, 80)), str(rng.randint(1, 900))
        exemption = {"pit_exemption": "family"} if rng.random() < 0.1 else {}
        out.append(
            {
                "procedure_code": "1.010912",
                "channel": rng.choice([1, 2]),
                "applicant": {
                    "kind": "person",
                    "full_name": seller.full_name,
                    "personal_id": seller.personal_id,
                    "date_of_birth": seller.date_of_birth.isoformat(),
                    "gender": seller.gender,
                    "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
                    "vneid_level": 2,
                },
                "jurisdiction": {"province": province, "commune": commune},
                "summary": f"Khai nghĩa vụ tài chính chuyển nhượng thửa đất số {parcel}, tờ bản đồ số {sheet}",
                "form": {
                    "transferor": _party(seller),
                    "transferee": _party(buyer),
                    "parcel": {
                        "province": province,
                        "commune": commune,
                        "map_sheet_no": sheet,
                        "parcel_no": parcel,
                        "area_m2": area,
                        "address": f"Số {rng.randint(1, 300)} {rng.choice(STREETS)}",
                    },
                    "declared_price_vnd": price,
                    **exemption,
                },
                "attachments": declarations(
                    (seller.full_name, seller.personal_id), (buyer.full_name, buyer.personal_id), sheet, parcel, price
                ),
            }
        )
    return out


def taxpayer_example() -> dict[str, Any]:
    """A taxpayer the simulator's register holds."""
    return {"personal_id": demo_dossiers(1, 1)[0]["applicant"]["personal_id"]}


def notice_example() -> dict[str, Any]:
    """A notice number the tax authority never issued: answered "not found", a valid answer all the same."""
    return {"notice_number": "TB-0000000000"}


def bind_endpoint(sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """The SOAP service's address at the simulator (the WSDL is the bundled one)."""
    return {**configured, "url": f"{sim.url}/ws", "appointments": {"url": sim.url, "secret": sim.secret}}


# Notices are paid a second after they are issued, so the demo's land transfers go on.
BINDING = SimulatorBinding(settings=lambda workdir: {"auto_pay_after": 1.0}, endpoint=bind_endpoint)
