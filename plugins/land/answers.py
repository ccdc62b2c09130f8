"""PhanHoiXml answers as a land office writes them (used by the simulator and the tests; no I/O)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from contracts.calendar import VN_TZ

VERSION = "1.0"


@dataclass(frozen=True)
class Document:
    name: str
    component: str
    content: bytes
    number: str | None = None
    media_type: str = "application/pdf"


@dataclass(frozen=True)
class Obligation:
    assessed_price: int
    items: Sequence[tuple[str, str, int]] = ()  # (code, name, amount)
    due: datetime | None = None


@dataclass(frozen=True)
class Answer:
    event_id: str
    correlation: str
    dossier_code: str
    office_ref: str
    status: str  # DA_TIEP_NHAN | YEU_CAU_NVTC | HOAN_THANH | TU_CHOI
    at: datetime
    note: str = ""
    obligation: Obligation | None = None
    cadastral: etree._Element | None = None  # a DuLieuDiaChinh element, copied in as is
    documents: Sequence[Document] = field(default_factory=tuple)
    reason: str | None = None


def _el(parent: etree._Element, tag: str, text: object) -> etree._Element:
    e = etree.SubElement(parent, tag)
    e.text = str(text)
    return e


def _time(at: datetime) -> str:
    return at.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def pdf(text: str) -> bytes:
    """A tiny stand-in PDF; ASCII only, so any reader shows it."""
    safe = text.encode("ascii", "replace").decode()
    return f"%PDF-1.4\n% {safe}\n%%EOF\n".encode()


def answer_xml(a: Answer) -> bytes:
    root = etree.Element("PhanHoiXml", PhienBan=VERSION)
    _el(root, "MaSuKien", a.event_id)
    _el(root, "MaYeuCau", a.correlation)
    _el(root, "SoBienNhan", a.dossier_code)
    _el(root, "MaHoSoDatDai", a.office_ref)
    _el(root, "TrangThai", a.status)
    _el(root, "ThoiGian", _time(a.at))
    if a.note:
        _el(root, "GhiChu", a.note)
    if a.obligation is not None:
        nv = etree.SubElement(root, "NghiaVuTaiChinh")
        _el(nv, "GiaTinhThue", a.obligation.assessed_price)
        for code, name, amount in a.obligation.items:
            k = etree.SubElement(nv, "KhoanNop")
            _el(k, "MaKhoan", code)
            _el(k, "TenKhoan", name)
            _el(k, "SoTien", amount)
        if a.obligation.due is not None:
            _el(nv, "HanNop", _time(a.obligation.due))
    if a.cadastral is not None:
        root.append(a.cadastral)
    if a.documents:
        results = etree.SubElement(root, "DanhSachKetQua")
        for d in a.documents:
            g = etree.SubElement(results, "GiayTo")
            _el(g, "MaThanhPhan", d.component)
            _el(g, "TenTaiLieu", d.name)
            if d.number:
                _el(g, "SoGiayTo", d.number)
            _el(g, "LoaiTep", d.media_type)
            _el(g, "KichThuoc", len(d.content))
            _el(g, "Sha256", hashlib.sha256(d.content).hexdigest())
            _el(g, "NoiDung", base64.b64encode(d.content).decode())
    if a.reason:
        _el(root, "LyDo", a.reason)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
