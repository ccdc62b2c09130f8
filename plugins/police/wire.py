"""Pure mapping between the canonical contract and the police REST wire format (no I/O)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from contracts import Address, Attachment, Dossier, DossierStatus, PersonApplicant, ResultDocument
from contracts.calendar import VN_TZ
from contracts.dossier import TRUSTED
from gateway.sdk import AgencyUpdate, MalformedAnswer
from plugins.police.forms import IdentityAnswer, IdentityQuery

STATUS_FROM_WIRE: dict[str, DossierStatus] = {
    "DANG_XU_LY": DossierStatus.PROCESSING,
    "YEU_CAU_BO_SUNG": DossierStatus.SUPPLEMENT_REQUESTED,
    "HOAN_THANH": DossierStatus.FINISHED,
    "TU_CHOI": DossierStatus.STOPPED,
}
GENDER_TO_WIRE = {"male": 1, "female": 2}


_SHORT_STEPS = {"supplement": "bs", "withdraw": "rut"}  # bổ sung, rút hồ sơ


def request_id(idempotency_key: str) -> str:
    """The agency's request id is at most 40 characters: the dossier UUID without dashes (32) and the step.

    Steps are shortened without losing what tells them apart: supplement-12 -> bs12, withdraw -> rut.
    """
    did, _, step = idempotency_key.partition(":")
    kind, _, number = step.partition("-")
    short = _SHORT_STEPS[kind] + number if kind in _SHORT_STEPS else step
    rid = did.replace("-", "") + "-" + short
    if len(rid) > 40:
        raise ValueError(f"step {step!r} does not fit the agency's 40-character request id")
    return rid


def _address(a: Address | None) -> dict[str, str] | None:
    return None if a is None else {"maTinh": a.province, "maXa": a.commune, "chiTiet": a.line}


def documents(attachments: Sequence[Attachment], contents: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """taiLieu: each document with its declared type, size and sha256, and its content in base64.
    `contents` holds the documents' bytes by sha256 (read from the gateway's document store)."""
    out = []
    for a in attachments:
        if a.content_base64 is not None:
            content = a.content_base64
        elif a.sha256 in contents:
            content = base64.b64encode(contents[a.sha256]).decode()
        else:
            raise ValueError(f"document {a.component_code} ({a.name}) was not read")
        out.append(
            {
                "maThanhPhan": a.component_code,
                "tenTaiLieu": a.name,
                "loaiTep": a.media_type,
                "kichThuoc": a.size,
                "sha256": a.sha256,
                "noiDungBase64": content,
            }
        )
    return out


def registrant(dossier: Dossier, inputs: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(personal id, name, yyyyMMdd birth date, gender) of the person registered."""
    form = dossier.submission.form
    reg = form.get("registrant")
    if reg:
        pid = reg.get("personal_id") or inputs.get("child_personal_id")
        if not pid:
            raise ValueError("the registrant has no personal id and no earlier step provided child_personal_id")
        dob = reg["date_of_birth"].replace("-", "")
        return str(pid), reg["full_name"], dob, reg["gender"]
    person = dossier.submission.applicant
    if not isinstance(person, PersonApplicant):
        raise ValueError("residence registration is for a person")
    return person.personal_id, person.full_name, person.date_of_birth.strftime("%Y%m%d"), person.gender.value


def registration_request(
    dossier: Dossier,
    idempotency_key: str,
    callback_url: str,
    inputs: Mapping[str, Any] | None = None,
    contents: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    form = dossier.submission.form
    pid, name, dob, gender = registrant(dossier, inputs or {})
    return {
        "maYeuCau": request_id(idempotency_key),
        "maHoSo": dossier.code,
        "maTTHC": dossier.procedure_code,
        "soDinhDanh": pid,
        "hoTen": name,
        "ngaySinh": dob,
        "gioiTinh": GENDER_TO_WIRE[gender],
        "diaChiMoi": {
            "maTinh": form["new_address"]["province"],
            "maXa": form["new_address"]["commune"],
            "chiTiet": form["new_address"]["line"],
        },
        "coSoPhapLy": form["legal_basis"],
        "soDinhDanhChuHo": form.get("household_head_id"),
        "quanHeChuHo": form.get("relationship_to_head"),
        "noiTiepNhan": dossier.receiving_unit,
        "urlCallback": callback_url,
        "taiLieu": documents(dossier.submission.attachments, contents or {}),
    }


def removal_request(
    dossier: Dossier,
    idempotency_key: str,
    callback_url: str,
    inputs: Mapping[str, Any] | None = None,
    contents: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    form = dossier.submission.form
    person = form["person"]
    return {
        "maYeuCau": request_id(idempotency_key),
        "maHoSo": dossier.code,
        "maTTHC": dossier.procedure_code,
        "soDinhDanh": person["personal_id"],
        "hoTen": person["full_name"],
        "lyDo": form.get("reason", "deceased"),
        "ngayMat": (form.get("date_of_death") or "").replace("-", "") or None,
        "soTrichLucKhaiTu": form.get("death_register_number") or (inputs or {}).get("death_register_number"),
        "noiTiepNhan": dossier.receiving_unit,
        "urlCallback": callback_url,
        "taiLieu": documents(dossier.submission.attachments, contents or {}),
    }


def supplement_attachments(answer: Mapping[str, Any]) -> list[Attachment]:
    """The documents of a supplement answer, as the gateway stored them (references)."""
    return [Attachment.model_validate(a, context={TRUSTED: True}) for a in answer.get("attachments", [])]


def supplement_request(
    dossier: Dossier, idempotency_key: str, answer: Mapping[str, Any], contents: Mapping[str, bytes] | None = None
) -> dict[str, Any]:
    return {
        "maYeuCau": request_id(idempotency_key),
        "maHoSo": dossier.code,
        "maTiepNhan": dossier.agency_ref,
        "ghiChu": answer.get("note", ""),
        "taiLieu": documents(supplement_attachments(answer), contents or {}),
    }


def withdrawal_request(dossier: Dossier, idempotency_key: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The centre refused the dossier (the documents asked for did not come in time): close the case."""
    if not dossier.agency_ref:
        raise ValueError("the dossier has no police reference (maTiepNhan) to withdraw")
    return {
        "maYeuCau": request_id(idempotency_key),
        "maHoSo": dossier.code,
        "maTiepNhan": dossier.agency_ref,
        "lyDo": str(inputs.get("reason") or "từ chối tại bộ phận một cửa"),
    }


def identity_request(q: IdentityQuery) -> dict[str, Any]:
    return {"soDinhDanh": q.personal_id, "hoTen": q.full_name, "ngaySinh": q.date_of_birth.strftime("%Y%m%d")}


def identity_answer(body: Any) -> IdentityAnswer:
    try:
        result = body["ketQua"]
        return IdentityAnswer(
            found=result != "KHONG_TIM_THAY",
            match=result == "KHOP",
            vneid_level=int(body.get("mucDoDinhDanh") or 0),
            mismatched=list(body.get("truongKhongKhop") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"police: identity answer lacks {exc}") from exc


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)


def _supplement_data(body: Any) -> dict[str, Any]:
    if not body.get("yeuCauBoSung"):
        return {}
    data: dict[str, Any] = {"items": list(body["yeuCauBoSung"])}
    if body.get("hanBoSung"):
        data["due_at"] = parse_time(body["hanBoSung"]).isoformat()
    return data


def callback_update(body: Any) -> AgencyUpdate:
    try:
        status = STATUS_FROM_WIRE[body["trangThai"]]
        results = []
        if body.get("ketQua"):
            r = body["ketQua"]
            results.append(
                ResultDocument(
                    name=r["tenGiayTo"],
                    component_code=r.get("maThanhPhan", "KQ"),
                    result_code=r.get("soGiayTo"),
                    media_type=r.get("loaiTep", "application/pdf"),
                    size=int(r["kichThuoc"]),
                    sha256=r["sha256"],
                    content_base64=r.get("noiDungBase64"),
                )
            )
        return AgencyUpdate(
            event_id=str(body["maSuKien"]),
            dossier_code=body["maHoSo"],
            status=status,
            note=body.get("ghiChu", ""),
            at=parse_time(body["thoiGian"]),
            agency_ref=body.get("maTiepNhan"),
            data=_supplement_data(body),
            results=results,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"police callback is missing or has an invalid {exc}") from exc
