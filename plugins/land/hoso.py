"""Dossiers -> HoSoXml requests for a land office (xsd/ho-so.xsd); pure, no I/O.

A request's bytes depend only on the dossier and the delivery, so a retried send rewrites the same file.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree
from pydantic import ValidationError

from contracts import Address, Dossier, OrganisationApplicant, PersonApplicant
from plugins.land.forms import FirstCertificateForm, LandTransferForm, Parcel, Party, Phase
from plugins.land.procedures import FIRST_CERTIFICATE, WIRE_KIND
from plugins.land.wire import wire_time

VERSION = "1.0"
PHASE_TO_WIRE: dict[Phase, str] = {"full": "TRON_GOI", "declaration": "KE_KHAI", "registration": "DANG_KY"}
# Tax receipts as the tax step reports them -> the obligation codes land offices use.
RECEIPT_KIND_TO_WIRE = {"registration_fee": "LPTB", "personal_income_tax": "TNCN", "land_use_fee": "TSDD"}


class UnmappableDossier(ValueError):
    """The dossier cannot become a HoSoXml (missing inputs, parcels outside the jurisdiction ...)."""


def _el(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    e = etree.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def _address(parent: etree._Element, a: Address) -> None:
    e = _el(parent, "DiaChi")
    _el(e, "MaTinh", a.province)
    _el(e, "MaXa", a.commune)
    _el(e, "ChiTiet", a.line)


def _person_id(e: etree._Element, pid: str) -> None:
    _el(e, "LoaiDinhDanh", 1 if len(pid) == 12 else 2)
    _el(e, "SoDinhDanh", pid)


def _applicant(parent: etree._Element, dossier: Dossier) -> None:
    e = _el(parent, "NguoiNop")
    e.set("VaiTro", "NGUOI_NOP")
    a = dossier.submission.applicant
    if isinstance(a, PersonApplicant):
        _el(e, "LoaiDoiTuong", 1)
        _el(e, "HoTen", a.full_name)
        _person_id(e, a.personal_id)
        _el(e, "NgaySinh", a.date_of_birth.isoformat())
        _el(e, "GioiTinh", 1 if a.gender.value == "male" else 2)
    else:
        assert isinstance(a, OrganisationApplicant)
        _el(e, "LoaiDoiTuong", a.organisation_type)
        _el(e, "HoTen", a.name)
        _el(e, "MaSoThue", a.tax_code)
    if a.phone:
        _el(e, "SoDienThoai", a.phone)
    if a.address is not None:
        _address(e, a.address)


def _party(parent: etree._Element, p: Party, role: str) -> None:
    e = _el(parent, "ChuThe")
    e.set("VaiTro", role)
    _el(e, "LoaiDoiTuong", 1 if p.personal_id else 2)
    _el(e, "HoTen", p.full_name)
    if p.personal_id:
        _person_id(e, p.personal_id)
    else:
        _el(e, "MaSoThue", p.tax_code)


def _parcel(parent: etree._Element, p: Parcel) -> None:
    e = _el(parent, "ThuaDat")
    _el(e, "SoToBanDo", p.map_sheet)
    _el(e, "SoThua", p.parcel_no)
    _el(e, "DienTich", f"{p.area_m2:.2f}")
    if p.land_use:
        _el(e, "MucDichSuDung", p.land_use)
    _address(e, p.address)
    if p.certificate_serial:
        _el(e, "SoPhatHanhGCN", p.certificate_serial)


def _receipt(parent: etree._Element, r: object) -> None:
    e = _el(parent, "BienLai")
    if not isinstance(r, Mapping):
        _el(e, "SoBienLai", r)
        return
    number = r.get("receipt_number") or r.get("number")
    if not number:
        raise UnmappableDossier(f"a tax receipt without a receipt number: {dict(r)!r}")
    _el(e, "SoBienLai", number)
    if r.get("kind") in RECEIPT_KIND_TO_WIRE:
        _el(e, "MaKhoan", RECEIPT_KIND_TO_WIRE[r["kind"]])
    if r.get("amount_vnd") is not None:
        _el(e, "SoTien", int(r["amount_vnd"]))
    if r.get("paid_date"):
        _el(e, "NgayNop", r["paid_date"])


def _attachments(parent: etree._Element, dossier: Dossier, contents: Mapping[str, bytes]) -> None:
    """Each document with its declared type, size and sha256, and its content in base64; `contents` holds
    the documents' bytes by sha256 (read from the gateway's document store)."""
    e = _el(parent, "DanhSachTaiLieu")
    for a in dossier.submission.attachments:
        if a.content_base64 is not None:
            content = a.content_base64
        elif a.sha256 in contents:
            content = base64.b64encode(contents[a.sha256]).decode()
        else:
            raise UnmappableDossier(f"document {a.component_code} ({a.name}) was not read")
        t = _el(e, "TaiLieu")
        _el(t, "MaThanhPhan", a.component_code)
        _el(t, "TenTaiLieu", a.name)
        _el(t, "LoaiTep", a.media_type)
        _el(t, "KichThuoc", a.size)
        _el(t, "Sha256", a.sha256)
        _el(t, "NoiDung", content)


class _Content:
    """What differs between procedures and phases: parcels, parties, price, receipts."""

    def __init__(self, dossier: Dossier, inputs: Mapping[str, Any]) -> None:
        form = dossier.submission.form
        self.transferors: list[Party] = []
        self.transferees: list[Party] = []
        self.price: int | None = None
        self.original_ref: str | None = None
        self.receipts: Sequence[object] = ()
        try:
            if dossier.procedure_code == FIRST_CERTIFICATE:
                self.phase: Phase = "full"
                self.parcels = list(FirstCertificateForm.model_validate(form).parcels)
                return
            t = LandTransferForm.model_validate(form)
            self.phase = t.phase
            self.parcels, self.price = list(t.parcels), t.declared_price_vnd
            self.transferors, self.transferees = list(t.transferors), list(t.transferees)
            if t.phase == "registration":
                self._registration(inputs)
        except ValidationError as exc:
            raise UnmappableDossier(f"the form does not fit: {exc}") from exc

    def _registration(self, inputs: Mapping[str, Any]) -> None:
        receipts, ref = inputs.get("tax_receipts"), inputs.get("land_ref")
        if not receipts or not isinstance(receipts, list):
            raise UnmappableDossier("registration needs tax_receipts from the tax step")
        if not ref:
            raise UnmappableDossier("registration needs land_ref from the declaration step")
        self.receipts, self.original_ref = receipts, str(ref)
        if inputs.get("parcels"):
            self.parcels = [Parcel.model_validate(p) for p in inputs["parcels"]]
        for name in ("transferors", "transferees"):
            if inputs.get(name):
                setattr(self, name, [Party.model_validate(p) for p in inputs[name]])
        if inputs.get("declared_price_vnd") is not None and self.price is None:
            self.price = int(inputs["declared_price_vnd"])


def request_xml(
    dossier: Dossier,
    correlation: str,
    inputs: Mapping[str, Any] | None = None,
    contents: Mapping[str, bytes] | None = None,
) -> bytes:
    """The HoSoXml for a dossier; UnmappableDossier when it cannot be built."""
    if dossier.procedure_code not in WIRE_KIND:
        raise UnmappableDossier(f"procedure {dossier.procedure_code} is not a land procedure")
    c = _Content(dossier, inputs or {})
    if not c.parcels:
        raise UnmappableDossier("no parcel: the declaration step did not provide parcels")
    province = dossier.submission.jurisdiction.province
    outside = [f"{p.map_sheet}/{p.parcel_no}" for p in c.parcels if p.address.province != province]
    if outside:
        raise UnmappableDossier(f"parcels {', '.join(outside)} are not in province {province} of the dossier")
    root = etree.Element("HoSoXml", PhienBan=VERSION)
    _el(root, "MaYeuCau", correlation)
    _el(root, "SoBienNhan", dossier.code)
    _el(root, "MaTTHC", dossier.procedure_code)
    _el(root, "LoaiThuTuc", WIRE_KIND[dossier.procedure_code])
    _el(root, "GiaiDoan", PHASE_TO_WIRE[c.phase])
    if c.original_ref:
        _el(root, "MaHoSoDatDaiGoc", c.original_ref)
    _el(root, "NgayTiepNhan", wire_time(dossier.received_at))
    _el(root, "DonViTiepNhan", dossier.receiving_unit)
    _el(root, "KenhNop", int(dossier.submission.channel))
    area = _el(root, "DiaBan")
    _el(area, "MaTinh", province)
    if dossier.submission.jurisdiction.commune:
        _el(area, "MaXa", dossier.submission.jurisdiction.commune)
    _el(root, "TrichYeu", dossier.submission.summary)
    _applicant(root, dossier)
    if c.transferors or c.transferees:
        parties = _el(root, "DanhSachChuThe")
        for party in c.transferors:
            _party(parties, party, "BEN_CHUYEN_NHUONG")
        for party in c.transferees:
            _party(parties, party, "BEN_NHAN_CHUYEN_NHUONG")
    parcels = _el(root, "DanhSachThuaDat")
    for p in c.parcels:
        _parcel(parcels, p)
    if c.price is not None:
        _el(root, "GiaKeKhai", c.price)
    if c.receipts:
        receipts = _el(root, "DanhSachBienLai")
        for r in c.receipts:
            _receipt(receipts, r)
    _attachments(root, dossier, contents or {})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
