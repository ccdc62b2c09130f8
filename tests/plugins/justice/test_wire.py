"""Justice wire mapping (pure): dossier -> XML request, envelope error codes, result XML -> canonical update."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from lxml import etree
from pydantic import ValidationError

from contracts import Dossier, DossierStatus
from contracts.calendar import VN_TZ
from gateway.errors import AgencyRejected, AgencyTimeout, AgencyUnavailable, MalformedAnswer, UnsafeAnswer
from plugins.justice import envelope, wire
from plugins.justice.demo import demo_dossiers
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION, BirthRegistrationForm, DeathRegistrationForm

DID = uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
KEY = f"{DID}:submit"
MAX = 1024 * 1024


def sample(code: str) -> dict[str, Any]:
    return next(d for d in demo_dossiers(42, 20) if d["procedure_code"] == code)


def dossier(submission: dict[str, Any], **changes: Any) -> Dossier:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    return Dossier(
        id=DID,
        code="000.00.01.H26-261120-0021",
        procedure_code=submission["procedure_code"],
        procedure_name="Hộ tịch",
        receiving_unit="000.00.01.H26",
        client_id="centre-hanoi",
        agency="justice",
        endpoint="national",
        status=DossierStatus.RECEIVED,
        received_at=now,
        due_at=now + timedelta(days=1),
        updated_at=now,
        submission=submission,
        **changes,
    )


def xml_of(code: str) -> etree._Element:
    service, text = wire.request_xml(dossier(sample(code)))
    assert service == wire.SERVICES[code]
    return etree.fromstring(text)


# -- requests ----------------------------------------------------------------------------------------


def test_birth_request_xml() -> None:
    sub = sample(BIRTH_REGISTRATION)
    form = sub["form"]
    root = xml_of(BIRTH_REGISTRATION)
    assert root.tag == "HoSoDangKyKhaiSinh"
    assert (root.findtext("MaHoSo"), root.findtext("MaTTHC")) == ("000.00.01.H26-261120-0021", "1.001193")
    assert root.findtext("NoiDangKy/MaTinh") == sub["jurisdiction"]["province"]
    assert root.findtext("NguoiYeuCau/QuanHe") == "Mẹ"
    assert root.findtext("TreEm/HoTen") == form["child"]["full_name"]
    assert root.findtext("TreEm/NgaySinh") == form["child"]["date_of_birth"]
    assert root.findtext("TreEm/GioiTinh") == ("1" if form["child"]["gender"] == "male" else "2")
    assert root.findtext("TreEm/NoiSinh/MaXa") == form["child"]["place_of_birth"]["commune"]
    assert root.findtext("Me/SoDinhDanh") == form["mother"]["personal_id"]
    assert root.findtext("Cha/SoDinhDanh") == form["father"]["personal_id"]
    assert root.find("TreEm/QueQuan") is None


def test_death_request_xml() -> None:
    form = sample(DEATH_REGISTRATION)["form"]
    root = xml_of(DEATH_REGISTRATION)
    assert root.tag == "HoSoDangKyKhaiTu"
    assert root.findtext("NguoiChet/SoDinhDanh") == form["deceased"]["personal_id"]
    assert root.findtext("NguoiChet/NgayChet") == form["deceased"]["date_of_death"]
    assert root.findtext("GiayBaoTu/So") == form["death_notice"]["number"]
    assert root.find("NguoiChet/NguyenNhan") is None


def test_text_is_escaped_not_injected() -> None:
    sub = sample(BIRTH_REGISTRATION)
    child = {**sub["form"]["child"], "full_name": "An</HoTen><SoDinhDanh>1</SoDinhDanh> & <b>"}
    _, text = wire.request_xml(dossier({**sub, "form": {**sub["form"], "child": child}}))
    root = etree.fromstring(text)
    assert root.findtext("TreEm/HoTen") == child["full_name"]
    assert root.find("TreEm/SoDinhDanh") is None


def test_unmappable_dossiers() -> None:
    sub = sample(BIRTH_REGISTRATION)
    org = {"kind": "organisation", "name": "Công ty TNHH Thử", "tax_code": "0101234567"}
    with pytest.raises(ValueError, match="declared by a person"):
        wire.request_xml(dossier({**sub, "applicant": org}))
    with pytest.raises(ValueError, match="not a civil status registration"):
        wire.request_xml(dossier({**sub, "procedure_code": "1.004194"}))
    with pytest.raises(ValidationError):
        wire.request_xml(dossier({**sub, "form": {}}))


# -- forms -------------------------------------------------------------------------------------------


def test_birth_form_rules() -> None:
    form = sample(BIRTH_REGISTRATION)["form"]
    BirthRegistrationForm.model_validate(form)
    with pytest.raises(ValidationError, match="names the mother, the father or both"):
        BirthRegistrationForm.model_validate({**form, "mother": None, "father": None})
    late = {**form["child"], "date_of_birth": "1950-01-01"}
    with pytest.raises(ValidationError, match="born after the child"):
        BirthRegistrationForm.model_validate({**form, "child": late})
    wrong_year = {**form["mother"], "date_of_birth": "1970-01-01"}
    with pytest.raises(ValidationError, match="digits 4-6"):
        BirthRegistrationForm.model_validate({**form, "mother": wrong_year})
    tomorrow = (datetime.now(VN_TZ).date() + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError, match="in the future"):
        BirthRegistrationForm.model_validate({**form, "child": {**form["child"], "date_of_birth": tomorrow}})


def test_death_form_rules() -> None:
    form = sample(DEATH_REGISTRATION)["form"]
    DeathRegistrationForm.model_validate(form)
    d = form["deceased"]
    with pytest.raises(ValidationError, match="before the date of birth"):
        DeathRegistrationForm.model_validate({**form, "deceased": {**d, "date_of_death": "1900-01-01"}})
    flipped = {**d, "gender": "female" if d["gender"] == "male" else "male"}
    with pytest.raises(ValidationError, match="digit 4"):
        DeathRegistrationForm.model_validate({**form, "deceased": flipped})
    early = {**form["death_notice"], "issued_on": "2000-01-01"}
    with pytest.raises(ValidationError, match="dated before the death"):
        DeathRegistrationForm.model_validate({**form, "death_notice": early})


def test_demo_dossiers_mix_births_and_deaths() -> None:
    subs = demo_dossiers(5, 30)
    assert {s["procedure_code"] for s in subs} == {BIRTH_REGISTRATION, DEATH_REGISTRATION}
    for s in subs:
        wire.request_xml(dossier(s))


# -- the envelope ------------------------------------------------------------------------------------


def env(code: str, data: str = "<TiepNhan><MaTiepNhan>HT-1</MaTiepNhan></TiepNhan>", message: str = "m") -> bytes:
    return orjson.dumps(envelope.reply(code, message, data))


def test_envelope_request_and_ok_answer() -> None:
    assert envelope.request("k", "DangKyKhaiSinh", "http://cb", "<x/>") == {
        "requestId": "k",
        "service": "DangKyKhaiSinh",
        "callbackUrl": "http://cb",
        "data": "<x/>",
    }
    data = envelope.open_answer(200, env("0"), "justice")
    assert wire.receipt(data, max_bytes=MAX) == "HT-1"


@pytest.mark.parametrize(
    ("code", "status", "what"),
    [("100", 401, "authentication refused"), ("100", 200, "authentication refused"), ("201", 200, "not found")],
)
def test_refusal_codes(code: str, status: int, what: str) -> None:
    with pytest.raises(AgencyRejected, match=f"justice: {what} \\(error {code}\\): m") as err:
        envelope.open_answer(status, env(code), "justice")
    assert (err.value.code, err.value.status, err.value.retryable) == (code, status, False)


def test_data_error_is_a_refusal() -> None:
    with pytest.raises(AgencyRejected, match="invalid data") as err:
        envelope.open_answer(200, env("500"), "justice")
    assert err.value.code == "500"


@pytest.mark.parametrize("code", ["1", "300", "999", "ERR"])
def test_other_codes_are_transient(code: str) -> None:
    with pytest.raises(AgencyUnavailable, match=f"agency error {code}") as err:
        envelope.open_answer(200, env(code), "justice")
    assert (err.value.code, err.value.retryable) == (code, True)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_transient_whatever_the_envelope_says(status: int) -> None:
    with pytest.raises(AgencyUnavailable) as err:
        envelope.open_answer(status, env("500"), "justice")
    assert err.value.status == status


def test_statuses_without_an_envelope() -> None:
    with pytest.raises(AgencyRejected) as rejected:
        envelope.open_answer(404, b"<html>no such page</html>", "justice")
    assert rejected.value.status == 404
    with pytest.raises(AgencyTimeout):
        envelope.open_answer(408, b"", "justice")
    with pytest.raises(AgencyRejected):
        envelope.open_answer(403, env("0"), "justice")  # a refusal even when the code says fine


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"status": "success"}', env("0", data=""), orjson.dumps({"errorCode": 0, "data": 5})],
)
def test_malformed_envelopes(body: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        envelope.open_answer(200, body, "justice")


def test_numeric_error_code_is_read_as_text() -> None:
    with pytest.raises(AgencyRejected, match="not found"):
        envelope.open_answer(200, orjson.dumps({"errorCode": 201, "message": "x"}), "justice")
    data = envelope.open_answer(200, orjson.dumps({"errorCode": 0, "data": "<TiepNhan/>"}), "justice")
    assert data == b"<TiepNhan/>"


# -- answers -----------------------------------------------------------------------------------------

PID = "001326004512"  # registered in Hà Nội (001), female born 2026 (3, 26)


def result(kind: str = "KHAI_SINH", status: str = "HOAN_THANH", **citizen: str) -> bytes:
    person = {"SoDinhDanh": PID, "NgaySinh": "2026-11-01", "GioiTinh": "2", "MaTinhDangKy": "01"} | citizen
    person_xml = "".join(f"<{k}>{v}</{k}>" for k, v in person.items() if v)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<KetQuaHoTich>
  <MaSuKien>HT-0000001-HT</MaSuKien><LoaiViec>{kind}</LoaiViec><MaHoSo>000.00.01.H26-261120-0021</MaHoSo>
  <MaTiepNhan>HT-0000001</MaTiepNhan><TrangThai>{status}</TrangThai><ThoiGian>2026-11-20T09:30:00+07:00</ThoiGian>
  <GhiChu>Đã đăng ký</GhiChu>
  <DangKy><So>125</So><Quyen>01/2026</Quyen><Trang>63</Trang><NgayDangKy>2026-11-20</NgayDangKy></DangKy>
  <CongDan>{person_xml}</CongDan>
  <GiayTo><TenGiayTo>Giấy khai sinh</TenGiayTo><MaThanhPhan>KQ_KS</MaThanhPhan><SoGiayTo>125/01/2026</SoGiayTo>
    <KichThuoc>12</KichThuoc><Sha256>{"b" * 64}</Sha256></GiayTo>
</KetQuaHoTich>""".encode()


def test_birth_result() -> None:
    update = wire.result_update(result(), max_bytes=MAX)
    assert (update.event_id, update.dossier_code, update.agency_ref, update.status) == (
        "HT-0000001-HT",
        "000.00.01.H26-261120-0021",
        "HT-0000001",
        DossierStatus.FINISHED,
    )
    assert update.at == datetime(2026, 11, 20, 9, 30, tzinfo=VN_TZ)
    assert update.outputs == {"child_personal_id": PID, "birth_register_number": "125"}
    assert update.data == {
        "register_number": "125",
        "register_book": "01/2026",
        "register_page": "63",
        "registered_on": "2026-11-20",
    }
    [doc] = update.results
    assert (doc.name, doc.component_code, doc.result_code, doc.size) == ("Giấy khai sinh", "KQ_KS", "125/01/2026", 12)


def test_death_result_and_processing_note() -> None:
    update = wire.result_update(result("KHAI_TU"), max_bytes=MAX)
    assert update.outputs == {"death_register_number": "125"}
    processing = wire.result_update(result(status="DANG_XU_LY"), max_bytes=MAX)
    assert (processing.status, processing.outputs, processing.data) == (DossierStatus.PROCESSING, {}, {})


@pytest.mark.parametrize(
    ("citizen", "message"),
    [
        ({"SoDinhDanh": "00132600451"}, "12 digits"),
        ({"SoDinhDanh": "001326"}, "12 digits"),
        ({"SoDinhDanh": "003326004512"}, "not a province code"),
        ({"NgaySinh": "2025-11-01"}, "born in 2026"),
        ({"GioiTinh": "1"}, "says female"),
        ({"MaTinhDangKy": "79"}, "not the registering province 79"),
        ({"GioiTinh": "X"}, "invalid"),
        ({"SoDinhDanh": "001159075"}, "12 digits"),  # an old 9-digit card number is no new personal id
    ],
)
def test_child_personal_id_is_checked(citizen: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedAnswer, match=message):
        wire.result_update(result(**citizen), max_bytes=MAX)


def test_only_the_id_is_needed_when_the_agency_says_nothing_more() -> None:
    update = wire.result_update(result(NgaySinh="", GioiTinh="", MaTinhDangKy=""), max_bytes=MAX)
    assert update.outputs["child_personal_id"] == PID


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b.replace(b"HOAN_THANH", b"DA_HUY"), "DA_HUY"),
        (lambda b: b.replace(b"KHAI_SINH", b"KET_HON"), "KET_HON"),
        (lambda b: b.replace(b"+07:00", b""), "no UTC offset"),
        (lambda b: b.replace(b"<So>125</So>", b""), "lacks So"),
        (lambda b: b.replace(b"KetQuaHoTich", b"Other"), "expected KetQuaHoTich"),
        (lambda b: b.replace(b"<CongDan>", b"<X>").replace(b"</CongDan>", b"</X>"), "CongDan"),
        (lambda b: b[:-20], "not well-formed"),
        (lambda b: b.replace(b"b" * 64, b"nothex"), "sha256"),
    ],
)
def test_broken_results(mangle: Any, message: str) -> None:
    with pytest.raises(MalformedAnswer, match=message):
        wire.result_update(mangle(result()), max_bytes=MAX)


def test_hostile_xml_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><KetQuaHoTich>&a;</KetQuaHoTich>'
    with pytest.raises(UnsafeAnswer, match="DOCTYPE"):
        wire.result_update(bomb, max_bytes=MAX)
    with pytest.raises(UnsafeAnswer, match="exceeds"):
        wire.result_update(result(), max_bytes=100)
    with pytest.raises(MalformedAnswer, match="expected a TiepNhan"):
        wire.receipt(b"<KetQuaHoTich/>", max_bytes=MAX)
