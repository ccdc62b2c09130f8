"""Land wire mapping: dossiers -> HoSoXml (valid against the project's XSD), PhanHoiXml -> canonical updates."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from lxml import etree

from adapters.xml import load_schema, validate
from contracts import DossierStatus
from plugins.land import hoso, wire
from plugins.land.answers import Answer, Document, answer_xml, pdf
from plugins.land.connector import ANSWER_XSD, REQUEST_XSD
from plugins.land.forms import Parcel, Party
from plugins.land.office import _cadastral
from tests.plugins.land.support import CODE, CORRELATION, DID, answer, dossier, first_certificate, obligation, transfer

RECEIPTS = [
    {
        "notice_number": "TB-1",
        "kind": "registration_fee",
        "amount_vnd": 10_000_000,
        "paid_date": "2026-11-25",
        "receipt_number": "BL-0001",
    },
    {
        "notice_number": "TB-2",
        "kind": "personal_income_tax",
        "amount_vnd": 40_000_000,
        "paid_date": "2026-11-25",
        "receipt_number": "BL-0002",
    },
]

PARCELS = transfer("declaration")["form"]["parcels"]


@pytest.fixture(scope="module")
def schemas() -> tuple[etree.XMLSchema, etree.XMLSchema]:
    return load_schema(REQUEST_XSD), load_schema(ANSWER_XSD)


def request(sub: dict[str, Any], schemas: Any, inputs: dict[str, Any] | None = None) -> etree._Element:
    body = hoso.request_xml(dossier(sub), CORRELATION, inputs)
    doc = etree.fromstring(body)
    validate(doc, schemas[0])
    return doc


# -- correlation ids ---------------------------------------------------------------------------------


def test_correlation_id_is_stable_per_job_and_names_the_dossier() -> None:
    cid = wire.correlation_id(DID, f"{DID}:submit")
    assert cid == f"{DID}.submit" == wire.correlation_id(DID, f"{DID}:submit")
    assert wire.correlation_id(DID, f"{DID}:supplement-2") == f"{DID}.supplement-2"
    assert wire.dossier_id_of(cid) == DID


@pytest.mark.parametrize(
    "cid",
    ["HS-404", f"{DID}", f"{DID}.", f"{DID}.Submit", f"{DID}.submit/..", str(uuid.uuid4()).upper() + ".submit", ""],
)
def test_foreign_correlation_ids_are_not_recognised(cid: str) -> None:
    assert wire.dossier_id_of(cid) is None


# -- requests ----------------------------------------------------------------------------------------


def test_first_certificate_request_carries_receipt_location_applicant_parcels_and_files(schemas: Any) -> None:
    sub = first_certificate()
    doc = request(sub, schemas)
    assert doc.get("PhienBan") == "1.0"
    assert doc.findtext("MaYeuCau") == CORRELATION
    assert doc.findtext("SoBienNhan") == CODE
    assert doc.findtext("MaTTHC") == "1.004269"
    assert (doc.findtext("LoaiThuTuc"), doc.findtext("GiaiDoan")) == ("CAP_GCN_LAN_DAU", "TRON_GOI")
    assert doc.findtext("NgayTiepNhan") == "20261120090000"  # received 02:00 UTC = 09:00 in Vietnam
    assert doc.findtext("DiaBan/MaTinh") == sub["jurisdiction"]["province"]
    assert doc.findtext("DiaBan/MaXa") == sub["jurisdiction"]["commune"]
    assert doc.findtext("NguoiNop/SoDinhDanh") == sub["applicant"]["personal_id"]
    assert doc.findtext("NguoiNop/LoaiDinhDanh") == "1"
    land = sub["form"]["parcels"][0]
    parcel = doc.find("DanhSachThuaDat/ThuaDat")
    assert parcel is not None
    assert parcel.findtext("SoToBanDo") == land["map_sheet"]
    assert parcel.findtext("SoThua") == land["parcel_no"]
    assert parcel.findtext("DienTich") == land["area_m2"]
    assert parcel.findtext("DiaChi/ChiTiet") == land["address"]["line"]
    att = sub["attachments"][0]
    assert doc.findtext("DanhSachTaiLieu/TaiLieu/Sha256") == att["sha256"]
    assert doc.findtext("DanhSachTaiLieu/TaiLieu/NoiDung") == att["content_base64"]


def test_request_bytes_are_the_same_on_every_attempt() -> None:
    sub = first_certificate(1)
    assert hoso.request_xml(dossier(sub), CORRELATION) == hoso.request_xml(dossier(sub), CORRELATION)


def test_transfer_declaration_names_both_parties_and_the_declared_price(schemas: Any) -> None:
    sub = transfer("declaration")
    doc = request(sub, schemas)
    assert (doc.findtext("LoaiThuTuc"), doc.findtext("GiaiDoan")) == ("CHUYEN_NHUONG", "KE_KHAI")
    roles = {c.get("VaiTro"): c.findtext("SoDinhDanh") for c in doc.iterfind("DanhSachChuThe/ChuThe")}
    form = sub["form"]
    assert roles == {
        "BEN_CHUYEN_NHUONG": form["transferors"][0]["personal_id"],
        "BEN_NHAN_CHUYEN_NHUONG": form["transferees"][0]["personal_id"],
    }
    assert doc.findtext("GiaKeKhai") == str(form["declared_price_vnd"])
    assert doc.findtext("DanhSachThuaDat/ThuaDat/SoPhatHanhGCN") == form["parcels"][0]["certificate_serial"]


def test_registration_takes_parcels_and_office_number_from_the_declaration_and_receipts_from_tax(
    schemas: Any,
) -> None:
    declared = transfer("declaration")
    inputs = {"tax_receipts": RECEIPTS, "land_ref": "VPDK01-26000001", "parcels": declared["form"]["parcels"]}
    doc = request(transfer("registration"), schemas, inputs)
    assert doc.findtext("GiaiDoan") == "DANG_KY"
    assert doc.findtext("MaHoSoDatDaiGoc") == "VPDK01-26000001"
    assert doc.findtext("DanhSachThuaDat/ThuaDat/SoThua") == declared["form"]["parcels"][0]["parcel_no"]
    receipts = [
        (b.findtext("SoBienLai"), b.findtext("MaKhoan"), b.findtext("SoTien")) for b in doc.iterfind(".//BienLai")
    ]
    assert receipts == [("BL-0001", "LPTB", "10000000"), ("BL-0002", "TNCN", "40000000")]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "tax_receipts"),
        ({"tax_receipts": RECEIPTS}, "land_ref"),
        ({"tax_receipts": RECEIPTS, "land_ref": "X"}, "no parcel"),
        ({"tax_receipts": [{"kind": "registration_fee"}], "land_ref": "X", "parcels": PARCELS}, "receipt number"),
    ],
)
def test_registration_without_what_earlier_steps_provide_is_unmappable(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(hoso.UnmappableDossier, match=message):
        hoso.request_xml(dossier(transfer("registration")), CORRELATION, inputs)


def test_a_parcel_outside_the_dossier_province_is_unmappable() -> None:
    sub = transfer("declaration", province="01")
    sub["jurisdiction"] = {"province": "79"}
    with pytest.raises(hoso.UnmappableDossier, match="not in province 79"):
        hoso.request_xml(dossier(sub), CORRELATION)


def test_a_form_that_does_not_fit_is_unmappable() -> None:
    sub = transfer("declaration")
    sub["form"] = {"phase": "declaration"}
    with pytest.raises(hoso.UnmappableDossier, match="form does not fit"):
        hoso.request_xml(dossier(sub), CORRELATION)


# -- answers -----------------------------------------------------------------------------------------


def parsed(data: bytes, schemas: Any) -> etree._Element:
    doc = etree.fromstring(data)
    validate(doc, schemas[1])
    return doc


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("DA_TIEP_NHAN", DossierStatus.PROCESSING),
        ("YEU_CAU_NVTC", DossierStatus.FINANCIAL_OBLIGATION),
        ("HOAN_THANH", DossierStatus.FINISHED),
        ("TU_CHOI", DossierStatus.STOPPED),
    ],
)
def test_answer_statuses_map_to_portal_statuses(status: str, expected: DossierStatus, schemas: Any) -> None:
    u = wire.answer_update(parsed(answer(status, reason="Sai thông tin" if status == "TU_CHOI" else None), schemas))
    assert u.status == expected
    assert (u.dossier_id, u.dossier_code, u.agency_ref) == (DID, CODE, "VPDK01-26000001")
    assert u.event_id == "VPDK01-26000001-01"
    assert u.at is not None and u.at.isoformat() == "2026-11-21T09:30:00+07:00"
    assert u.outputs["land_ref"] == "VPDK01-26000001"


def test_rejection_carries_its_reason(schemas: Any) -> None:
    u = wire.answer_update(parsed(answer("TU_CHOI", note="Không tiếp nhận", reason="Sai thửa"), schemas))
    assert u.data["reason"] == "Sai thửa" and "Sai thửa" in u.note


def test_finished_with_the_certificate_is_a_result_document_and_an_output(schemas: Any) -> None:
    u = wire.answer_update(parsed(answer("HOAN_THANH", certificate=True), schemas))
    [gcn] = u.results
    assert (gcn.component_code, gcn.result_code, gcn.media_type) == ("GCN", "AA 01000001", "application/pdf")
    assert gcn.content_base64 is not None and gcn.size == len(pdf("GCN AA 01000001"))
    assert u.outputs["certificate_no"] == "AA 01000001"


def test_declaration_finished_gives_later_steps_the_parcels_parties_and_assessed_price(schemas: Any) -> None:
    sub = transfer("declaration")
    req = etree.fromstring(hoso.request_xml(dossier(sub), CORRELATION))
    data = answer("HOAN_THANH", obligation=obligation(3_000_000_000), cadastral=_cadastral(req))
    u = wire.answer_update(parsed(data, schemas))
    assert u.outputs["assessed_price_vnd"] == 3_000_000_000
    assert u.data["obligations"] == [{"code": "LPTB", "name": "Lệ phí trước bạ", "amount_vnd": 15_000_000}]
    assert u.outputs["declared_price_vnd"] == sub["form"]["declared_price_vnd"]
    # the outputs are valid canonical data again: the registration step feeds them back as inputs
    assert [Parcel.model_validate(p) for p in u.outputs["parcels"]] == [
        Parcel.model_validate(p) for p in sub["form"]["parcels"]
    ]
    assert [Party.model_validate(p) for p in u.outputs["transferors"]] == [
        Party.model_validate(p) for p in sub["form"]["transferors"]
    ]
    inputs = {"tax_receipts": RECEIPTS, **u.outputs}
    registration = etree.fromstring(hoso.request_xml(dossier(transfer("registration")), CORRELATION, inputs))
    validate(registration, schemas[0])
    assert registration.findtext("GiaKeKhai") == str(sub["form"]["declared_price_vnd"])


def test_a_result_that_does_not_match_its_checksum_is_an_invalid_answer(schemas: Any) -> None:
    doc = parsed(answer("HOAN_THANH", certificate=True), schemas)
    sha = doc.find("DanhSachKetQua/GiayTo/Sha256")
    assert sha is not None
    sha.text = "0" * 64
    with pytest.raises(wire.InvalidAnswer, match="sha256"):
        wire.answer_update(doc)


def test_an_answer_for_a_foreign_correlation_id_is_invalid(schemas: Any) -> None:
    with pytest.raises(wire.InvalidAnswer, match="not a correlation id"):
        wire.answer_update(parsed(answer(correlation="HS-0001"), schemas))


def test_answers_the_simulator_writes_are_valid(schemas: Any) -> None:
    req = etree.fromstring(hoso.request_xml(dossier(transfer("declaration")), CORRELATION))
    full = Answer(
        "E-1",
        CORRELATION,
        CODE,
        "R-1",
        "HOAN_THANH",
        wire.parse_time("20261121093000"),
        note="ok",
        obligation=obligation(),
        cadastral=copy.deepcopy(_cadastral(req)),
        documents=(Document("Phiếu", "PCTT", pdf("x"), "R-1/PCTT"),),
    )
    parsed(answer_xml(full), schemas)
