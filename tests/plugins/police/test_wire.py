"""Police wire mapping: canonical dossier -> registration request, wire answers and callbacks -> canonical."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import Dossier, DossierStatus
from contracts.calendar import VN_TZ
from contracts.dossier import TRUSTED
from gateway.errors import MalformedAnswer
from plugins.police import wire
from plugins.police.demo import demo_dossiers
from plugins.police.forms import IdentityQuery

DID = uuid.UUID("0b5c8f7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")
HEX = "0b5c8f7e1d2a4c3b9e8f7a6b5c4d3e2f"


@pytest.fixture(scope="module")
def sub() -> dict[str, Any]:
    return demo_dossiers(42, 1)[0]


def dossier(submission: dict[str, Any], **changes: Any) -> Dossier:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    return Dossier.model_validate(
        dict(
            id=DID,
            code="000.00.01.H26-261120-0007",
            procedure_code=submission["procedure_code"],
            procedure_name="Đăng ký tạm trú",
            receiving_unit="000.00.01.H26",
            client_id="centre-hanoi",
            agency="police",
            endpoint="national",
            status=DossierStatus.RECEIVED,
            received_at=now,
            due_at=now + timedelta(days=3),
            updated_at=now,
            submission=submission,
            **changes,
        ),
        context={TRUSTED: True},  # as the store reads it back: attachments are references
    )


# -- request ids -------------------------------------------------------------------------------------


def test_request_id_fits_40_characters() -> None:
    rid = wire.request_id(f"{DID}:submit")
    assert rid == f"{HEX}-submit"
    assert len(rid) <= 40
    assert wire.request_id(f"{DID}:submit") == rid  # stable across attempts


def test_request_ids_differ_per_step() -> None:
    steps = ["submit", "supplement-1", "supplement-2"]
    ids = {wire.request_id(f"{DID}:{s}") for s in steps}
    assert len(ids) == len(steps)
    assert all(len(i) <= 40 for i in ids)


# -- registration ------------------------------------------------------------------------------------


def test_registration_request(sub: dict[str, Any]) -> None:
    body = wire.registration_request(dossier(sub), f"{DID}:submit", "https://gw.example/v1/callbacks/police")
    a, f = sub["applicant"], sub["form"]
    assert body == {
        "maYeuCau": f"{HEX}-submit",
        "maHoSo": "000.00.01.H26-261120-0007",
        "maTTHC": sub["procedure_code"],
        "soDinhDanh": a["personal_id"],
        "hoTen": a["full_name"],
        "ngaySinh": a["date_of_birth"].replace("-", ""),
        "gioiTinh": 2 if a["gender"] == "female" else 1,
        "diaChiMoi": {
            "maTinh": f["new_address"]["province"],
            "maXa": f["new_address"]["commune"],
            "chiTiet": f["new_address"]["line"],
        },
        "coSoPhapLy": f["legal_basis"],
        "soDinhDanhChuHo": None,
        "quanHeChuHo": None,
        "noiTiepNhan": "000.00.01.H26",
        "urlCallback": "https://gw.example/v1/callbacks/police",
        "taiLieu": [
            {
                "maThanhPhan": "TK01",
                "tenTaiLieu": sub["attachments"][0]["name"],
                "loaiTep": "application/pdf",
                "kichThuoc": sub["attachments"][0]["size"],
                "sha256": sub["attachments"][0]["sha256"],
                "noiDungBase64": sub["attachments"][0]["content_base64"],
            }
        ],
    }


def test_documents_come_from_the_store_by_sha256(sub: dict[str, Any]) -> None:
    att = sub["attachments"][0]
    stored = {**sub, "attachments": [{k: v for k, v in att.items() if k != "content_base64"}]}
    content = base64.b64decode(att["content_base64"])
    body = wire.registration_request(dossier(stored), f"{DID}:submit", "u", None, {att["sha256"]: content})
    assert body["taiLieu"][0]["noiDungBase64"] == att["content_base64"]
    with pytest.raises(ValueError, match=r"document TK01 .* was not read"):
        wire.registration_request(dossier(stored), f"{DID}:submit", "u", None, {})


def test_registrant_other_than_the_applicant(sub: dict[str, Any]) -> None:
    child = {"full_name": "Võ Minh An", "date_of_birth": "2026-10-01", "gender": "male"}
    d = dossier({**sub, "form": {**sub["form"], "registrant": child}})
    body = wire.registration_request(d, f"{DID}:submit", "u", {"child_personal_id": "001226000123"})
    assert (body["soDinhDanh"], body["hoTen"], body["ngaySinh"], body["gioiTinh"]) == (
        "001226000123",
        "Võ Minh An",
        "20261001",
        1,
    )
    with pytest.raises(ValueError, match="no earlier step provided child_personal_id"):
        wire.registration_request(d, f"{DID}:submit", "u", {})


def test_organisation_applicant_cannot_register_residence(sub: dict[str, Any]) -> None:
    org = {"kind": "organisation", "name": "Công ty TNHH Thử", "tax_code": "0101234567"}
    with pytest.raises(ValueError, match="residence registration is for a person"):
        wire.registration_request(dossier({**sub, "applicant": org}), f"{DID}:submit", "u")


def test_supplement_request(sub: dict[str, Any]) -> None:
    # As the gateway stores an answer: references to its document store, the content read by sha256.
    answer = {
        "note": "Bổ sung hợp đồng",
        "attachments": [
            {"component_code": "HD01", "name": "Hợp đồng thuê nhà", "media_type": "application/pdf", "size": 1,
             "sha256": "a" * 64}
        ],
    }  # fmt: skip
    body = wire.supplement_request(
        dossier(sub, agency_ref="CA-0000009"), f"{DID}:supplement-1", answer, {"a" * 64: b"a"}
    )
    assert body == {
        "maYeuCau": f"{HEX}-bs1",
        "maHoSo": "000.00.01.H26-261120-0007",
        "maTiepNhan": "CA-0000009",
        "ghiChu": "Bổ sung hợp đồng",
        "taiLieu": [
            {"maThanhPhan": "HD01", "tenTaiLieu": "Hợp đồng thuê nhà", "loaiTep": "application/pdf", "kichThuoc": 1,
             "sha256": "a" * 64, "noiDungBase64": "YQ=="}
        ],
    }  # fmt: skip


# -- identity look-up --------------------------------------------------------------------------------


def test_identity_request() -> None:
    q = IdentityQuery(personal_id="001159075954", full_name=" Võ Thị Linh ", date_of_birth="1959-07-21")
    assert wire.identity_request(q) == {"soDinhDanh": "001159075954", "hoTen": "Võ Thị Linh", "ngaySinh": "19590721"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"ketQua": "KHOP", "mucDoDinhDanh": 2, "truongKhongKhop": []}, (True, True, 2, [])),
        (
            {"ketQua": "KHONG_KHOP", "mucDoDinhDanh": "1", "truongKhongKhop": ["ngaySinh"]},
            (True, False, 1, ["ngaySinh"]),
        ),
        ({"ketQua": "KHONG_TIM_THAY"}, (False, False, 0, [])),
    ],
)
def test_identity_answer(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    a = wire.identity_answer(body)
    assert (a.found, a.match, a.vneid_level, a.mismatched) == expected


@pytest.mark.parametrize("body", [{}, [], None, {"ketQua": "KHOP", "mucDoDinhDanh": "hai"}])
def test_identity_answer_malformed(body: Any) -> None:
    with pytest.raises(MalformedAnswer, match="police: identity answer lacks"):
        wire.identity_answer(body)


# -- callbacks ---------------------------------------------------------------------------------------


def test_parse_time_is_vietnam_local() -> None:
    assert wire.parse_time("20261120093000") == datetime(2026, 11, 20, 9, 30, tzinfo=VN_TZ)
    assert wire.parse_time("20261120093000").astimezone(UTC).hour == 2


def test_finished_callback_with_result() -> None:
    upd = wire.callback_update(
        {
            "maSuKien": "CA-1-HT",
            "maHoSo": "000.00.01.H26-261120-0007",
            "maTiepNhan": "CA-1",
            "trangThai": "HOAN_THANH",
            "ghiChu": "Đã đăng ký",
            "thoiGian": "20261120093000",
            "ketQua": {"tenGiayTo": "Thông báo kết quả", "soGiayTo": "CA-1", "kichThuoc": "12", "sha256": "b" * 64},
        }
    )
    assert (upd.event_id, upd.dossier_code, upd.status, upd.agency_ref, upd.note) == (
        "CA-1-HT",
        "000.00.01.H26-261120-0007",
        DossierStatus.FINISHED,
        "CA-1",
        "Đã đăng ký",
    )
    assert upd.at == datetime(2026, 11, 20, 9, 30, tzinfo=VN_TZ)
    [r] = upd.results
    assert (r.name, r.component_code, r.result_code, r.media_type, r.size) == (
        "Thông báo kết quả",
        "KQ",
        "CA-1",
        "application/pdf",
        12,
    )
    assert upd.data == {}


def test_supplement_callback() -> None:
    upd = wire.callback_update(
        {
            "maSuKien": 7,
            "maHoSo": "000.00.01.H26-261120-0007",
            "trangThai": "YEU_CAU_BO_SUNG",
            "thoiGian": "20261120093000",
            "yeuCauBoSung": ["Giấy tờ chỗ ở"],
            "hanBoSung": "20261201170000",
        }
    )
    assert (upd.event_id, upd.status, upd.note) == ("7", DossierStatus.SUPPLEMENT_REQUESTED, "")
    assert upd.data == {"items": ["Giấy tờ chỗ ở"], "due_at": "2026-12-01T17:00:00+07:00"}


@pytest.mark.parametrize(("status", "expected"), sorted(wire.STATUS_FROM_WIRE.items()))
def test_every_wire_status(status: str, expected: DossierStatus) -> None:
    upd = wire.callback_update(
        {"maSuKien": "e", "maHoSo": "000.00.01.H26-261120-0007", "trangThai": status, "thoiGian": "20261120093000"}
    )
    assert upd.status == expected


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"maHoSo": "000.00.01.H26-261120-0007", "trangThai": "HOAN_THANH", "thoiGian": "20261120093000"}, "maSuKien"),
        ({"maSuKien": "e", "maHoSo": "x", "trangThai": "DA_HUY", "thoiGian": "20261120093000"}, "DA_HUY"),
        ({"maSuKien": "e", "maHoSo": "x", "trangThai": "HOAN_THANH", "thoiGian": "20-11-2026"}, "20-11-2026"),
        (
            {
                "maSuKien": "e",
                "maHoSo": "x",
                "trangThai": "HOAN_THANH",
                "thoiGian": "20261120093000",
                "ketQua": {"tenGiayTo": "x"},
            },
            "kichThuoc",
        ),
    ],
)
def test_malformed_callback(body: dict[str, Any], missing: str) -> None:
    with pytest.raises(MalformedAnswer, match="police callback is missing or has an invalid") as err:
        wire.callback_update(body)
    assert missing in str(err.value)
