"""Pure mapping between the canonical contract and the BHXH REST wire format (no I/O). Dates are yyyyMMdd."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from contracts import Dossier, DossierStatus, Gender, PersonApplicant, ResultDocument
from contracts.calendar import VN_TZ
from contracts.identifiers import check_personal_id
from gateway.sdk import AgencyUpdate, MalformedAnswer
from plugins.social_insurance.forms import (
    CHILD_HEALTH_CARD,
    FUNERAL_ALLOWANCE,
    ChildHealthCardForm,
    FuneralAllowanceForm,
    InsuranceNumberAnswer,
    InsuranceNumberQuery,
)

STATUS_FROM_WIRE: dict[str, DossierStatus] = {
    "DANG_XU_LY": DossierStatus.PROCESSING,
    "YEU_CAU_BO_SUNG": DossierStatus.SUPPLEMENT_REQUESTED,
    "HOAN_THANH": DossierStatus.FINISHED,
    "TU_CHOI": DossierStatus.STOPPED,
}
GENDER_TO_WIRE = {"male": 1, "female": 0}  # BHXH systems code gioiTinh 1 male, 0 female
GENDER_FROM_WIRE = {v: k for k, v in GENDER_TO_WIRE.items()}
KIND_OF = {CHILD_HEALTH_CARD: "CAP_THE_BHYT_TE", FUNERAL_ALLOWANCE: "TRO_CAP_MAI_TANG"}


def ymd(d: date) -> str:
    return d.strftime("%Y%m%d")


def parse_ymd(value: str) -> date:
    return datetime.strptime(value, "%Y%m%d").date()


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)


def _declarant(dossier: Dossier) -> dict[str, Any]:
    person = dossier.submission.applicant
    if not isinstance(person, PersonApplicant):
        raise ValueError("social insurance claims are declared by a person")
    return {"hoTen": person.full_name, "soDinhDanh": person.personal_id, "dienThoai": person.phone}


def child_card_data(form: ChildHealthCardForm, inputs: Mapping[str, Any]) -> dict[str, Any]:
    child = form.child
    pid = child.personal_id or inputs.get("child_personal_id")
    if not pid:
        raise ValueError("the child has no personal id and no earlier step provided child_personal_id")
    # An id from the birth step must still be this child's: same birth year and gender.
    check_personal_id(str(pid), date_of_birth=child.date_of_birth, gender=child.gender)
    return {
        "soDinhDanh": str(pid),
        "hoTen": child.full_name,
        "ngaySinh": ymd(child.date_of_birth),
        "gioiTinh": GENDER_TO_WIRE[child.gender.value],
        "maTinhCuTru": form.residence.province,
        "maXaCuTru": form.residence.commune,
        "diaChiCuTru": form.residence.line,
        "maNoiKCB": form.healthcare_facility,
    }


def funeral_data(form: FuneralAllowanceForm, inputs: Mapping[str, Any]) -> dict[str, Any]:
    certificate = form.death_certificate_number or inputs.get("death_register_number")
    if not certificate:
        raise ValueError("no death certificate number, and no earlier step provided death_register_number")
    return {
        "soDinhDanhNguoiChet": form.deceased_personal_id,
        "hoTenNguoiChet": form.deceased_full_name,
        "ngayChet": ymd(form.date_of_death),
        "soTrichLucKhaiTu": str(certificate),
        "nguoiHuong": {
            "hoTen": form.beneficiary.full_name,
            "soDinhDanh": form.beneficiary.personal_id,
            "quanHe": form.beneficiary.relationship,
        },
        "taiKhoan": {
            "maNganHang": form.bank_account.bank_code,
            "soTaiKhoan": form.bank_account.account_number,
            "chuTaiKhoan": form.bank_account.account_holder,
        },
    }


def submission(
    dossier: Dossier, idempotency_key: str, callback_url: str, inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The claim for one dossier; ValueError (pydantic's included) when it cannot be mapped."""
    inputs = inputs or {}
    form = dossier.submission.form
    if dossier.procedure_code == CHILD_HEALTH_CARD:
        data = child_card_data(ChildHealthCardForm.model_validate(form), inputs)
    elif dossier.procedure_code == FUNERAL_ALLOWANCE:
        data = funeral_data(FuneralAllowanceForm.model_validate(form), inputs)
    else:
        raise ValueError(f"procedure {dossier.procedure_code} is not handled by social insurance")
    return {
        "maGiaoDich": idempotency_key,
        "maHoSo": dossier.code,
        "maThuTuc": dossier.procedure_code,
        "loaiHoSo": KIND_OF[dossier.procedure_code],
        "noiTiepNhan": dossier.receiving_unit,
        "ngayTiepNhan": dossier.received_at.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S"),
        "nguoiKeKhai": _declarant(dossier),
        "duLieu": data,
        "urlCallback": callback_url,
        "tepDinhKem": declared_files(dossier),
    }


def part_name(index: int) -> str:
    return f"tep{index + 1}"


def declared_files(dossier: Dossier) -> list[dict[str, Any]]:
    """tepDinhKem: the file parts that follow the claim, each by its part name, as the sender declares them."""
    return [
        {
            "tenPhan": part_name(i),
            "maThanhPhan": a.component_code,
            "tenTaiLieu": a.name,
            "loaiTep": a.media_type,
            "kichThuoc": a.size,
            "sha256": a.sha256,
        }
        for i, a in enumerate(dossier.submission.attachments)
    ]


def receipt(body: Any) -> str:
    if not isinstance(body, dict) or not body.get("maTiepNhan"):
        raise MalformedAnswer("social insurance: answer has no maTiepNhan")
    return str(body["maTiepNhan"])


def number_request(q: InsuranceNumberQuery) -> dict[str, Any]:
    return {"soDinhDanh": q.personal_id, "hoTen": q.full_name}


def number_answer(body: Any) -> InsuranceNumberAnswer:
    try:
        if not body["timThay"]:
            return InsuranceNumberAnswer(found=False)
        return InsuranceNumberAnswer(
            found=True,
            social_insurance_number=str(body["maSoBHXH"]),
            full_name=body.get("hoTen"),
            date_of_birth=parse_ymd(body["ngaySinh"]) if body.get("ngaySinh") else None,
            gender=Gender(GENDER_FROM_WIRE[body["gioiTinh"]]) if body.get("gioiTinh") is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"social insurance: look-up answer lacks or has an invalid {exc}") from exc


def _result(r: Mapping[str, Any]) -> ResultDocument:
    return ResultDocument(
        name=r["tenGiayTo"],
        component_code=r.get("maThanhPhan", "KQ"),
        result_code=r.get("soGiayTo"),
        media_type=r.get("loaiTep", "application/pdf"),
        size=int(r["kichThuoc"]),
        sha256=r["sha256"],
        content_base64=r.get("noiDungBase64"),
    )


def _outputs_and_data(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    outputs: dict[str, Any] = {}
    data: dict[str, Any] = {}
    card = body.get("theBHYT")
    if card:
        outputs["bhyt_card_number"] = str(card["maThe"])
        outputs["social_insurance_number"] = str(card["maSoBHXH"])
        data["card_valid_from"] = parse_ymd(card["giaTriTu"]).isoformat()
        data["card_valid_to"] = parse_ymd(card["giaTriDen"]).isoformat()
    payment = body.get("chiTra")
    if payment:
        data["allowance_vnd"] = int(payment["soTien"])
        data["paid_on"] = parse_ymd(payment["ngayChiTra"]).isoformat()
    if body.get("yeuCauBoSung"):
        data["items"] = list(body["yeuCauBoSung"])
        if body.get("hanBoSung"):
            data["due_at"] = parse_time(body["hanBoSung"]).isoformat()
    return outputs, data


def callback_update(body: Any) -> AgencyUpdate:
    try:
        status = STATUS_FROM_WIRE[body["trangThai"]]
        outputs, data = _outputs_and_data(body)
        return AgencyUpdate(
            event_id=str(body["maSuKien"]),
            dossier_code=body["maHoSo"],
            status=status,
            note=body.get("ghiChu", ""),
            at=parse_time(body["thoiGian"]),
            agency_ref=body.get("maTiepNhan"),
            data=data,
            results=[_result(body["ketQua"])] if body.get("ketQua") else [],
            outputs=outputs,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedAnswer(f"social insurance callback is missing or has an invalid {exc}") from exc
