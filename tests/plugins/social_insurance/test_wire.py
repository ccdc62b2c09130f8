"""BHXH wire mapping: canonical dossier -> claim, webhook and look-up answers -> canonical; forms validated."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import Dossier, DossierStatus, Gender
from contracts.calendar import VN_TZ
from gateway.errors import MalformedAnswer
from plugins.social_insurance import wire
from plugins.social_insurance.demo import demo_dossiers
from plugins.social_insurance.forms import (
    CHILD_HEALTH_CARD,
    FUNERAL_ALLOWANCE,
    ChildHealthCardForm,
    FuneralAllowanceForm,
    InsuranceNumberAnswer,
    InsuranceNumberQuery,
)

DID = uuid.UUID("5e1f3a2b-7c4d-4e8f-9a0b-1c2d3e4f5a6b")
KEY = f"{DID}:submit"
CALLBACK = "http://127.0.0.1:9/v1/callbacks/social_insurance"


def sample(code: str) -> dict[str, Any]:
    return next(d for d in demo_dossiers(42, 20) if d["procedure_code"] == code)


def dossier(submission: dict[str, Any], **changes: Any) -> Dossier:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    return Dossier(
        id=DID,
        code="000.00.01.H26-261120-0011",
        procedure_code=submission["procedure_code"],
        procedure_name="BHXH",
        receiving_unit="000.00.01.H26",
        client_id="centre-hanoi",
        agency="social_insurance",
        endpoint="national",
        status=DossierStatus.RECEIVED,
        received_at=now,
        due_at=now + timedelta(days=5),
        updated_at=now,
        submission=submission,
        **changes,
    )


def without_child_id(sub: dict[str, Any]) -> dict[str, Any]:
    child = {k: v for k, v in sub["form"]["child"].items() if k != "personal_id"}
    return {**sub, "form": {**sub["form"], "child": child}}


# -- claims ------------------------------------------------------------------------------------------


def test_child_card_claim() -> None:
    sub = sample(CHILD_HEALTH_CARD)
    child = sub["form"]["child"]
    claim = wire.submission(dossier(sub), KEY, CALLBACK)
    assert claim["maGiaoDich"] == KEY
    assert (claim["maHoSo"], claim["maThuTuc"], claim["loaiHoSo"]) == (
        "000.00.01.H26-261120-0011",
        CHILD_HEALTH_CARD,
        "CAP_THE_BHYT_TE",
    )
    assert claim["ngayTiepNhan"] == "20261120090000"  # Vietnam time
    assert claim["nguoiKeKhai"]["soDinhDanh"] == sub["applicant"]["personal_id"]
    data = claim["duLieu"]
    assert data["soDinhDanh"] == child["personal_id"]
    assert data["ngaySinh"] == child["date_of_birth"].replace("-", "")
    assert data["gioiTinh"] == (1 if child["gender"] == "male" else 0)
    assert (data["maTinhCuTru"], data["maXaCuTru"]) == (
        sub["form"]["residence"]["province"],
        sub["form"]["residence"]["commune"],
    )
    assert claim["urlCallback"] == CALLBACK


def test_child_id_from_the_birth_step() -> None:
    full = sample(CHILD_HEALTH_CARD)
    pid = full["form"]["child"]["personal_id"]
    sub = without_child_id(full)
    claim = wire.submission(dossier(sub), KEY, CALLBACK, {"child_personal_id": pid})
    assert claim["duLieu"]["soDinhDanh"] == pid
    with pytest.raises(ValueError, match="no earlier step provided child_personal_id"):
        wire.submission(dossier(sub), KEY, CALLBACK, {})
    other_gender = pid[:3] + str(int(pid[3]) ^ 1) + pid[4:]
    with pytest.raises(ValueError, match="digit 4"):
        wire.submission(dossier(sub), KEY, CALLBACK, {"child_personal_id": other_gender})


def test_funeral_claim() -> None:
    sub = sample(FUNERAL_ALLOWANCE)
    form = sub["form"]
    claim = wire.submission(dossier(sub), KEY, CALLBACK)
    data = claim["duLieu"]
    assert claim["loaiHoSo"] == "TRO_CAP_MAI_TANG"
    assert data["soDinhDanhNguoiChet"] == form["deceased_personal_id"]
    assert data["ngayChet"] == form["date_of_death"].replace("-", "")
    assert data["soTrichLucKhaiTu"] == form["death_certificate_number"]
    assert data["taiKhoan"]["soTaiKhoan"] == form["bank_account"]["account_number"]
    assert data["nguoiHuong"]["soDinhDanh"] == form["beneficiary"]["personal_id"]


def test_death_certificate_from_the_death_step() -> None:
    sub = sample(FUNERAL_ALLOWANCE)
    sub = {**sub, "form": {k: v for k, v in sub["form"].items() if k != "death_certificate_number"}}
    claim = wire.submission(dossier(sub), KEY, CALLBACK, {"death_register_number": "17"})
    assert claim["duLieu"]["soTrichLucKhaiTu"] == "17"
    with pytest.raises(ValueError, match="death_register_number"):
        wire.submission(dossier(sub), KEY, CALLBACK)


def test_unmappable_dossiers() -> None:
    sub = sample(CHILD_HEALTH_CARD)
    org = {"kind": "organisation", "name": "Công ty TNHH Thử", "tax_code": "0101234567"}
    with pytest.raises(ValueError, match="declared by a person"):
        wire.submission(dossier({**sub, "applicant": org}), KEY, CALLBACK)
    with pytest.raises(ValueError, match="not handled by social insurance"):
        wire.submission(dossier({**sub, "procedure_code": "1.004194"}), KEY, CALLBACK)
    with pytest.raises(ValidationError):
        wire.submission(dossier({**sub, "form": {"child": {}}}), KEY, CALLBACK)


# -- forms -------------------------------------------------------------------------------------------


def test_child_form_checks_age_and_id() -> None:
    form = sample(CHILD_HEALTH_CARD)["form"]
    ChildHealthCardForm.model_validate(form)
    today = datetime.now(VN_TZ).date()
    old = {**form["child"], "date_of_birth": date(today.year - 7, 1, 1).isoformat(), "personal_id": None}
    with pytest.raises(ValidationError, match="under 6"):
        ChildHealthCardForm.model_validate({**form, "child": old})
    future = {**form["child"], "date_of_birth": (today + timedelta(days=2)).isoformat(), "personal_id": None}
    with pytest.raises(ValidationError, match="in the future"):
        ChildHealthCardForm.model_validate({**form, "child": future})
    flipped = {**form["child"], "gender": "female" if form["child"]["gender"] == "male" else "male"}
    with pytest.raises(ValidationError, match="digit 4"):
        ChildHealthCardForm.model_validate({**form, "child": flipped})


def test_funeral_form_checks() -> None:
    form = sample(FUNERAL_ALLOWANCE)["form"]
    FuneralAllowanceForm.model_validate(form)
    with pytest.raises(ValidationError, match="12 digits"):
        FuneralAllowanceForm.model_validate({**form, "deceased_personal_id": "12345"})
    with pytest.raises(ValidationError, match="bank_code"):
        FuneralAllowanceForm.model_validate({**form, "bank_account": {**form["bank_account"], "bank_code": "VCB"}})
    tomorrow = (datetime.now(VN_TZ).date() + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError, match="in the future"):
        FuneralAllowanceForm.model_validate({**form, "date_of_death": tomorrow})


def test_demo_dossiers_are_valid_and_mixed() -> None:
    subs = demo_dossiers(3, 40)
    assert {s["procedure_code"] for s in subs} == {CHILD_HEALTH_CARD, FUNERAL_ALLOWANCE}
    for s in subs:
        model = ChildHealthCardForm if s["procedure_code"] == CHILD_HEALTH_CARD else FuneralAllowanceForm
        model.model_validate(s["form"])
        dossier(s)
    assert demo_dossiers(3, 40) != demo_dossiers(4, 40)


# -- answers -----------------------------------------------------------------------------------------

CARD_EVENT: dict[str, Any] = {
    "maSuKien": "BHXH-0000001-KQ",
    "maHoSo": "000.00.01.H26-261120-0011",
    "maTiepNhan": "BHXH-0000001",
    "trangThai": "HOAN_THANH",
    "thoiGian": "20261120093000",
    "ghiChu": "Đã cấp thẻ BHYT",
    "ketQua": {
        "tenGiayTo": "Thẻ bảo hiểm y tế",
        "maThanhPhan": "KQ_BHYT",
        "soGiayTo": "TE1010112345678",
        "loaiTep": "application/pdf",
        "kichThuoc": 10,
        "sha256": "a" * 64,
    },
    "theBHYT": {"maThe": "TE1010112345678", "maSoBHXH": "0112345678", "giaTriTu": "20261101", "giaTriDen": "20321031"},
}


def test_card_issued_callback() -> None:
    update = wire.callback_update(CARD_EVENT)
    assert (update.event_id, update.status, update.agency_ref) == (
        "BHXH-0000001-KQ",
        DossierStatus.FINISHED,
        "BHXH-0000001",
    )
    assert update.at == datetime(2026, 11, 20, 9, 30, tzinfo=VN_TZ)
    assert update.outputs == {"bhyt_card_number": "TE1010112345678", "social_insurance_number": "0112345678"}
    assert update.data == {"card_valid_from": "2026-11-01", "card_valid_to": "2032-10-31"}
    [doc] = update.results
    assert (doc.name, doc.result_code, doc.size) == ("Thẻ bảo hiểm y tế", "TE1010112345678", 10)


def test_funeral_and_refusal_callbacks() -> None:
    paid = {**CARD_EVENT, "chiTra": {"soTien": 23_400_000, "ngayChiTra": "20261125"}}
    del paid["theBHYT"]
    update = wire.callback_update(paid)
    assert update.outputs == {}
    assert update.data == {"allowance_vnd": 23_400_000, "paid_on": "2026-11-25"}
    refused = {k: v for k, v in CARD_EVENT.items() if k not in ("ketQua", "theBHYT")} | {"trangThai": "TU_CHOI"}
    stopped = wire.callback_update(refused)
    assert (stopped.status, stopped.results, stopped.outputs) == (DossierStatus.STOPPED, [], {})


@pytest.mark.parametrize(
    "change",
    [{"trangThai": "DA_HUY"}, {"thoiGian": "2026-11-20"}, {"maSuKien": None, "maHoSo": None}, {"theBHYT": {}}],
)
def test_broken_callbacks(change: dict[str, Any]) -> None:
    body = {k: v for k, v in {**CARD_EVENT, **change}.items() if v is not None}
    if change.get("theBHYT") == {}:
        body["theBHYT"] = {"maThe": "TE1"}
    with pytest.raises(MalformedAnswer, match="social insurance callback"):
        wire.callback_update(body)


def test_number_lookup_mapping() -> None:
    assert wire.number_request(InsuranceNumberQuery(personal_id="001159075954")) == {
        "soDinhDanh": "001159075954",
        "hoTen": None,
    }
    found = {"timThay": True, "maSoBHXH": "0112345678", "hoTen": "Võ Thị Linh", "ngaySinh": "19590721", "gioiTinh": 0}
    assert wire.number_answer(found) == InsuranceNumberAnswer(
        found=True,
        social_insurance_number="0112345678",
        full_name="Võ Thị Linh",
        date_of_birth=date(1959, 7, 21),
        gender=Gender.FEMALE,
    )
    assert wire.number_answer({"timThay": False}) == InsuranceNumberAnswer(found=False)
    with pytest.raises(MalformedAnswer):
        wire.number_answer({"timThay": True})
    with pytest.raises(MalformedAnswer):
        wire.number_answer([])


def test_receipt() -> None:
    assert wire.receipt({"maTiepNhan": "BHXH-1"}) == "BHXH-1"
    with pytest.raises(MalformedAnswer):
        wire.receipt({"trangThai": "DA_TIEP_NHAN"})
