"""Land office answers (PhanHoiXml, xsd/phan-hoi.xsd) -> canonical updates, and the correlation ids (no I/O).

Requests (HoSoXml) are built in `hoso`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lxml import etree
from pydantic import ValidationError

from contracts import DossierStatus, ResultDocument
from contracts.calendar import VN_TZ
from gateway.sdk import AgencyUpdate

STATUS_FROM_WIRE = {
    "DA_TIEP_NHAN": DossierStatus.PROCESSING,
    "YEU_CAU_NVTC": DossierStatus.FINANCIAL_OBLIGATION,
    "HOAN_THANH": DossierStatus.FINISHED,
    "TU_CHOI": DossierStatus.STOPPED,  # the dossier is already at the office: "processing stopped"
}
FINAL = frozenset({DossierStatus.FINISHED, DossierStatus.STOPPED})
CERTIFICATE_COMPONENT = "GCN"  # uncertain: the component code of the certificate among the results

# Correlation id: the dossier id and the job step ("submit", "supplement-1"): stable across retries,
# recognisable without a store, and a safe file name.
_CORRELATION = re.compile(
    r"(?P<did>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(?P<step>[a-z0-9][a-z0-9-]{0,23})"
)
_STEP_CHARS = re.compile(r"[^a-z0-9-]")


class InvalidAnswer(ValueError):
    """A schema-valid answer whose content does not hold together (a result's checksum ...)."""


def correlation_id(dossier_id: UUID, idempotency_key: str) -> str:
    step = _STEP_CHARS.sub("-", idempotency_key.partition(":")[2].lower()).strip("-")[:24] or "submit"
    return f"{dossier_id}.{step}"


def dossier_id_of(correlation: str) -> UUID | None:
    """The dossier a correlation id names, or None if this gateway never makes such an id."""
    m = _CORRELATION.fullmatch(correlation)
    return UUID(m.group("did")) if m else None


def wire_time(at: datetime) -> str:
    return at.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)


def _text(e: etree._Element, path: str) -> str | None:
    found = e.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _req(e: etree._Element, path: str) -> str:
    value = _text(e, path)
    if value is None:
        raise InvalidAnswer(f"no {path}")
    return value


def _parcel_out(e: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {
        "map_sheet": _req(e, "SoToBanDo"),
        "parcel_no": _req(e, "SoThua"),
        "area_m2": str(Decimal(_req(e, "DienTich")).quantize(Decimal("0.01"))),
        "address": {
            "province": _req(e, "DiaChi/MaTinh"),
            "commune": _req(e, "DiaChi/MaXa"),
            "line": _req(e, "DiaChi/ChiTiet"),
        },
    }
    for key, tag in (("land_use", "MucDichSuDung"), ("certificate_serial", "SoPhatHanhGCN")):
        if _text(e, tag):
            out[key] = _text(e, tag)
    return out


def _party_out(e: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {"full_name": _req(e, "HoTen")}
    if _text(e, "SoDinhDanh"):
        out["personal_id"] = _text(e, "SoDinhDanh")
    else:
        out["tax_code"] = _req(e, "MaSoThue")
    return out


def _result(e: etree._Element) -> ResultDocument:
    content = _text(e, "NoiDung")
    raw = b""
    if content is not None:
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidAnswer(f"result {_text(e, 'TenTaiLieu')!r} is not valid base64") from exc
        if len(raw) != int(_req(e, "KichThuoc")) or hashlib.sha256(raw).hexdigest() != _req(e, "Sha256"):
            raise InvalidAnswer(f"result {_text(e, 'TenTaiLieu')!r} does not match its size and sha256")
    return ResultDocument(
        name=_req(e, "TenTaiLieu"),
        component_code=_req(e, "MaThanhPhan"),
        result_code=_text(e, "SoGiayTo"),
        media_type=_req(e, "LoaiTep"),
        size=int(_req(e, "KichThuoc")),
        sha256=_req(e, "Sha256"),
        content_base64=content,
        url=_text(e, "DuongDan"),
    )


def _obligations(doc: etree._Element, data: dict[str, Any], outputs: dict[str, Any]) -> None:
    nv = doc.find("NghiaVuTaiChinh")
    if nv is None:
        return
    outputs["assessed_price_vnd"] = data["assessed_price_vnd"] = int(_req(nv, "GiaTinhThue"))
    data["obligations"] = [
        {"code": _req(k, "MaKhoan"), "name": _req(k, "TenKhoan"), "amount_vnd": int(_req(k, "SoTien"))}
        for k in nv.findall("KhoanNop")
    ]
    if _text(nv, "HanNop"):
        data["due_at"] = parse_time(_req(nv, "HanNop")).isoformat()


def _cadastral(doc: etree._Element, outputs: dict[str, Any]) -> None:
    dl = doc.find("DuLieuDiaChinh")
    if dl is None:
        return
    outputs["parcels"] = [_parcel_out(p) for p in dl.findall("DanhSachThuaDat/ThuaDat")]
    if _text(dl, "GiaKeKhai"):
        outputs["declared_price_vnd"] = int(_req(dl, "GiaKeKhai"))
    parties = dl.findall("DanhSachChuThe/ChuThe")
    for key, role in (("transferors", "BEN_CHUYEN_NHUONG"), ("transferees", "BEN_NHAN_CHUYEN_NHUONG")):
        chosen = [_party_out(p) for p in parties if p.get("VaiTro") == role]
        if chosen:
            outputs[key] = chosen


def answer_update(doc: etree._Element) -> AgencyUpdate:
    """A schema-valid PhanHoiXml -> the canonical update; InvalidAnswer when its content is inconsistent."""
    try:
        return _answer_update(doc)
    except InvalidAnswer:
        raise
    except (ValidationError, ValueError, KeyError) as exc:
        raise InvalidAnswer(f"{type(exc).__name__}: {exc}") from exc


def _answer_update(doc: etree._Element) -> AgencyUpdate:
    correlation = _req(doc, "MaYeuCau")
    did = dossier_id_of(correlation)
    if did is None:
        raise InvalidAnswer(f"MaYeuCau {correlation!r} is not a correlation id of this gateway")
    status = STATUS_FROM_WIRE[_req(doc, "TrangThai")]
    ref = _req(doc, "MaHoSoDatDai")
    data: dict[str, Any] = {}
    outputs: dict[str, Any] = {"land_ref": ref}
    _obligations(doc, data, outputs)
    _cadastral(doc, outputs)
    results = [_result(g) for g in doc.findall("DanhSachKetQua/GiayTo")]
    certificate = next((r for r in results if r.component_code == CERTIFICATE_COMPONENT), None)
    if certificate is not None and certificate.result_code:
        outputs["certificate_no"] = certificate.result_code
    note = _text(doc, "GhiChu") or ""
    if status == DossierStatus.STOPPED:
        reason = _text(doc, "LyDo") or "không nêu lý do"
        data["reason"] = reason
        note = f"{note} {reason}".strip() if note != reason else note
    return AgencyUpdate(
        event_id=_req(doc, "MaSuKien"),
        dossier_id=did,
        dossier_code=_req(doc, "SoBienNhan"),
        status=status,
        note=note,
        at=parse_time(_req(doc, "ThoiGian")),
        agency_ref=ref,
        data=data,
        results=results,
        outputs=outputs,
    )


def correlation_of(doc: etree._Element) -> str | None:
    return _text(doc, "MaYeuCau")
