"""Pure mapping between the canonical contract and the civil-status XML carried in the envelope (no I/O).

Requests are built with lxml; answers arrive as untrusted bytes and are read with adapters.xml.parse_xml.
Dates are xs:date (yyyy-MM-dd), times xs:dateTime with their offset.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from lxml import etree

from adapters.xml import parse_xml
from contracts import Address, Dossier, DossierStatus, Gender, PersonApplicant, ResultDocument
from contracts.identifiers import check_personal_id
from gateway.sdk import AgencyUpdate, MalformedAnswer
from plugins.justice.forms import (
    BIRTH_REGISTRATION,
    DEATH_REGISTRATION,
    BirthRegistrationForm,
    DeathRegistrationForm,
    Parent,
)

SERVICES = {BIRTH_REGISTRATION: "DangKyKhaiSinh", DEATH_REGISTRATION: "DangKyKhaiTu"}
STATUS_FROM_WIRE: dict[str, DossierStatus] = {
    "DANG_XU_LY": DossierStatus.PROCESSING,
    "YEU_CAU_BO_SUNG": DossierStatus.SUPPLEMENT_REQUESTED,
    "HOAN_THANH": DossierStatus.FINISHED,
    "TU_CHOI": DossierStatus.STOPPED,
}
GENDER_TO_WIRE = {Gender.MALE: "1", Gender.FEMALE: "2"}
GENDER_FROM_WIRE = {v: k for k, v in GENDER_TO_WIRE.items()}
RELATIONSHIP_TO_WIRE = {
    "mother": "Mẹ",
    "father": "Cha",
    "grandparent": "Ông/Bà",
    "relative": "Người thân",
    "other": "Khác",
}


def _add(parent: etree._Element, tag: str, value: object = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if value is not None:
        el.text = value.isoformat() if isinstance(value, date) else str(value)
    return el


def _address(parent: etree._Element, tag: str, a: Address) -> None:
    el = _add(parent, tag)
    _add(el, "MaTinh", a.province)
    _add(el, "MaXa", a.commune)
    _add(el, "ChiTiet", a.line)


def _person(parent: etree._Element, tag: str, p: Parent) -> None:
    el = _add(parent, tag)
    for name, value in (
        ("HoTen", p.full_name),
        ("SoDinhDanh", p.personal_id),
        ("NgaySinh", p.date_of_birth),
        ("DanToc", p.ethnicity),
        ("QuocTich", p.nationality),
    ):
        _add(el, name, value)


def _head(root: etree._Element, dossier: Dossier, relationship: str) -> None:
    applicant = dossier.submission.applicant
    if not isinstance(applicant, PersonApplicant):
        raise ValueError("civil status is declared by a person")
    _add(root, "MaHoSo", dossier.code)
    _add(root, "MaTTHC", dossier.procedure_code)
    where = _add(root, "NoiDangKy")
    _add(where, "MaDonVi", dossier.receiving_unit)
    _add(where, "MaTinh", dossier.submission.jurisdiction.province)
    if dossier.submission.jurisdiction.commune:
        _add(where, "MaXa", dossier.submission.jurisdiction.commune)
    who = _add(root, "NguoiYeuCau")
    _add(who, "HoTen", applicant.full_name)
    _add(who, "SoDinhDanh", applicant.personal_id)
    _add(who, "QuanHe", relationship)


def birth_request(dossier: Dossier) -> etree._Element:
    form = BirthRegistrationForm.model_validate(dossier.submission.form)
    root = etree.Element("HoSoDangKyKhaiSinh")
    _head(root, dossier, RELATIONSHIP_TO_WIRE[form.relationship])
    child = _add(root, "TreEm")
    _add(child, "HoTen", form.child.full_name)
    _add(child, "GioiTinh", GENDER_TO_WIRE[form.child.gender])
    _add(child, "NgaySinh", form.child.date_of_birth)
    _address(child, "NoiSinh", form.child.place_of_birth)
    _add(child, "DanToc", form.child.ethnicity)
    _add(child, "QuocTich", form.child.nationality)
    if form.child.hometown:
        _add(child, "QueQuan", form.child.hometown)
    if form.mother:
        _person(root, "Me", form.mother)
    if form.father:
        _person(root, "Cha", form.father)
    return root


def death_request(dossier: Dossier) -> etree._Element:
    form = DeathRegistrationForm.model_validate(dossier.submission.form)
    root = etree.Element("HoSoDangKyKhaiTu")
    _head(root, dossier, form.relationship)
    d = form.deceased
    dead = _add(root, "NguoiChet")
    _add(dead, "HoTen", d.full_name)
    _add(dead, "SoDinhDanh", d.personal_id)
    _add(dead, "NgaySinh", d.date_of_birth)
    _add(dead, "GioiTinh", GENDER_TO_WIRE[d.gender])
    _add(dead, "NgayChet", d.date_of_death)
    _address(dead, "NoiChet", d.place_of_death)
    if d.cause:
        _add(dead, "NguyenNhan", d.cause)
    notice = _add(root, "GiayBaoTu")
    _add(notice, "So", form.death_notice.number)
    _add(notice, "NoiCap", form.death_notice.issued_by)
    _add(notice, "NgayCap", form.death_notice.issued_on)
    return root


def documents(root: etree._Element, dossier: Dossier, contents: Mapping[str, bytes]) -> None:
    """DanhSachTaiLieu: each document with its declared type, size and sha256, and its content in base64.
    `contents` holds the documents' bytes by sha256 (read from the gateway's document store)."""
    listing = _add(root, "DanhSachTaiLieu")
    for a in dossier.submission.attachments:
        if a.content_base64 is not None:
            content = a.content_base64
        elif a.sha256 in contents:
            content = base64.b64encode(contents[a.sha256]).decode()
        else:
            raise ValueError(f"document {a.component_code} ({a.name}) was not read")
        doc = _add(listing, "TaiLieu")
        for tag, value in (
            ("MaThanhPhan", a.component_code),
            ("TenTaiLieu", a.name),
            ("LoaiTep", a.media_type),
            ("KichThuoc", a.size),
            ("Sha256", a.sha256),
            ("NoiDung", content),
        ):
            _add(doc, tag, value)


def request_xml(dossier: Dossier, contents: Mapping[str, bytes] | None = None) -> tuple[str, str]:
    """(service name, XML text) for a dossier; ValueError (pydantic's included) when it cannot be mapped."""
    builders = {BIRTH_REGISTRATION: birth_request, DEATH_REGISTRATION: death_request}
    build = builders.get(dossier.procedure_code)
    if build is None:
        raise ValueError(f"procedure {dossier.procedure_code} is not a civil status registration")
    root = build(dossier)
    documents(root, dossier, contents or {})
    return SERVICES[dossier.procedure_code], etree.tostring(root, encoding="unicode")


# -- answers -----------------------------------------------------------------------------------------


def _text(el: etree._Element, path: str) -> str:
    value = el.findtext(path)
    if value is None or not value.strip():
        raise MalformedAnswer(f"justice: answer lacks {path}")
    return value.strip()


def _opt(el: etree._Element, path: str) -> str | None:
    value = el.findtext(path)
    return value.strip() if value and value.strip() else None


def receipt(data: bytes, *, max_bytes: int, agency: str = "justice") -> str:
    root = parse_xml(data, max_bytes=max_bytes, agency=agency)
    if root.tag != "TiepNhan":
        raise MalformedAnswer(f"{agency}: expected a TiepNhan receipt, got {root.tag!r}", agency=agency)
    return _text(root, "MaTiepNhan")


def _document(el: etree._Element) -> ResultDocument:
    return ResultDocument(
        name=_text(el, "TenGiayTo"),
        component_code=_opt(el, "MaThanhPhan") or "KQ",
        result_code=_opt(el, "SoGiayTo"),
        media_type=_opt(el, "LoaiTep") or "application/pdf",
        size=int(_text(el, "KichThuoc")),
        sha256=_text(el, "Sha256"),
        content_base64=_opt(el, "NoiDung"),
    )


def _new_citizen(root: etree._Element) -> str:
    """The child's new personal id, checked against what the agency says about the child."""
    citizen = root.find("CongDan")
    if citizen is None:
        raise MalformedAnswer("justice: a finished birth registration carries the child (CongDan)")
    pid = _text(citizen, "SoDinhDanh")
    born, gender, province = _opt(citizen, "NgaySinh"), _opt(citizen, "GioiTinh"), _opt(citizen, "MaTinhDangKy")
    try:
        check_personal_id(
            pid,
            date_of_birth=date.fromisoformat(born) if born else None,
            gender=GENDER_FROM_WIRE[gender] if gender else None,
        )
        if len(pid) != 12:
            raise ValueError("a new personal id has 12 digits")
        if province and pid[:3] != "0" + province:
            raise ValueError(f"digits 1-3 ({pid[:3]}) are not the registering province {province}")
    except (ValueError, KeyError) as exc:
        raise MalformedAnswer(f"justice: the child's new personal id is invalid: {exc}") from exc
    return pid


def _registration(root: etree._Element, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = root.find("DangKy")
    if entry is None:
        raise MalformedAnswer("justice: a finished registration carries its register entry (DangKy)")
    number = _text(entry, "So")
    data = {
        "register_number": number,
        "register_book": _text(entry, "Quyen"),
        "register_page": _text(entry, "Trang"),
        "registered_on": date.fromisoformat(_text(entry, "NgayDangKy")).isoformat(),
    }
    if kind == "KHAI_SINH":
        return {"child_personal_id": _new_citizen(root), "birth_register_number": number}, data
    return {"death_register_number": number}, data


def _aware(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"ThoiGian {value!r} has no UTC offset")
    return at


def result_update(data: bytes, *, max_bytes: int, agency: str = "justice") -> AgencyUpdate:
    """A processing result (KetQuaHoTich) as a canonical update; MalformedAnswer/UnsafeAnswer otherwise."""
    root = parse_xml(data, max_bytes=max_bytes, agency=agency)
    if root.tag != "KetQuaHoTich":
        raise MalformedAnswer(f"{agency}: expected KetQuaHoTich, got {root.tag!r}", agency=agency)
    try:
        status = STATUS_FROM_WIRE[_text(root, "TrangThai")]
        kind = _text(root, "LoaiViec")
        if kind not in ("KHAI_SINH", "KHAI_TU"):
            raise MalformedAnswer(f"justice: unknown LoaiViec {kind!r}")
        outputs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if status is DossierStatus.FINISHED:
            outputs, extra = _registration(root, kind)
        return AgencyUpdate(
            event_id=_text(root, "MaSuKien"),
            dossier_code=_text(root, "MaHoSo"),
            status=status,
            note=_opt(root, "GhiChu") or "",
            at=_aware(_text(root, "ThoiGian")),
            agency_ref=_opt(root, "MaTiepNhan"),
            data=extra,
            results=[_document(el) for el in root.iterfind("GiayTo")],
            outputs=outputs,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"{agency}: result is missing or has an invalid {exc}", agency=agency) from exc
