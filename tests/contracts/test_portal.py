"""The national portal's records (DongBoHoSoMC, CapNhatTienDoHoSoMC) built from a dossier and its events,
compared field by field with a record written from two public implementations (fixtures/dvcqg/)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from contracts import Dossier, DossierStatus, StatusEvent
from contracts.dossier import TRUSTED
from contracts.portal import (
    PortalAnswer,
    PortalDatabase,
    PortalDocument,
    PortalDossier,
    PortalFee,
    PortalIdentity,
    PortalOtherDocument,
    PortalProgress,
    PortalRequest,
    PortalResult,
    PortalSupplement,
    RecordContext,
    portal_date,
    portal_dossier,
    portal_progress,
)
from contracts.schema import DEFAULT_DEST
from tests.contracts.test_dossier import organisation, submission

FIXTURES = Path(__file__).parent / "fixtures" / "dvcqg"
DATE_FIELDS = re.compile(r"^Ngay|^ThoiDiem")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_context(raw: dict[str, Any]) -> RecordContext:
    base = raw["results_base"]
    return RecordContext(
        sector=raw["sector"],
        sector_code=raw["sector_code"],
        handled_by=raw["handled_by"],
        names=raw["names"],
        databases=raw["databases"],
        result_link=lambda d, i: f"{base}/v1/dossiers/{d.code}/results/{i}",
    )


@pytest.fixture(scope="module")
def whole() -> tuple[Dossier, list[StatusEvent], RecordContext]:
    raw = load("dossier.json")
    dossier = Dossier.model_validate(raw["dossier"], context={TRUSTED: True})
    events = [StatusEvent.model_validate(e) for e in raw["events"]]
    return dossier, events, fixture_context(raw["context"])


# --- the whole dossier against the sources ----------------------------------------------------------


def test_the_dossier_record_matches_the_sources_field_by_field(
    whole: tuple[Dossier, list[StatusEvent], RecordContext],
) -> None:
    dossier, events, ctx = whole
    expected = load("expected.json")["DongBoHoSoMC"]
    built = json.loads(portal_dossier(dossier, events, ctx).model_dump_json())
    assert list(built) == list(expected)  # the same fields, in the sources' order
    for name, value in expected.items():
        assert built[name] == value, name


def test_the_progress_records_match_the_sources_field_by_field(
    whole: tuple[Dossier, list[StatusEvent], RecordContext],
) -> None:
    dossier, events, ctx = whole
    expected = load("expected.json")["CapNhatTienDoHoSoMC"]
    assert len(expected) == len(events)
    for event, want in zip(events, expected, strict=True):
        built = json.loads(portal_progress(dossier, event, ctx).model_dump_json())
        assert list(built) == list(want)
        for name, value in want.items():
            assert built[name] == value, (event.seq, name)


def _scalars(value: Any, at: str = "$") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _scalars(v, f"{at}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _scalars(v, f"{at}[{i}]")]
    return [(at, value)]


def test_the_fixture_sends_strings_and_the_portals_dates() -> None:
    """As both sources do: every value a string, absent dates "", dates yyyyMMddHHmmss (Hà Nội time)."""
    expected = load("expected.json")
    for at, value in _scalars(expected):
        assert isinstance(value, str), at
        if DATE_FIELDS.match(at.rsplit(".", 1)[-1]):
            assert value == "" or re.fullmatch(r"20[0-9]{12}", value), at
    assert expected["DongBoHoSoMC"]["NgayTiepNhan"] == portal_date(datetime(2026, 11, 20, 1, 30, tzinfo=UTC))


def test_the_fixture_fits_the_committed_schemas() -> None:
    import jsonschema

    expected = load("expected.json")
    for name, records in (
        ("PortalDossier", [expected["DongBoHoSoMC"]]),
        ("PortalProgress", expected["CapNhatTienDoHoSoMC"]),
    ):
        schema = json.loads((DEFAULT_DEST / f"{name}.json").read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        for record in records:
            assert list(validator.iter_errors(record)) == []
        wrong = dict(records[0], MaHoSo=42)
        assert [e.path[0] for e in validator.iter_errors(wrong)] == ["MaHoSo"]


RECORDS: dict[str, type[BaseModel]] = {
    "DongBoHoSoMC": PortalDossier,
    "TaiLieuNop": PortalDocument,
    "DanhSachLePhi": PortalFee,
    "DanhSachTepDinhKemKhac": PortalOtherDocument,
    "DanhSachHoSoBoSung": PortalSupplement,
    "DanhSachGiayToKetQua": PortalResult,
    "DinhDanhCHS": PortalIdentity,
    "DSKetNoiCSDL": PortalDatabase,
    "CapNhatTienDoHoSoMC": PortalProgress,
}


def test_every_field_has_its_sources_written_down() -> None:
    """fields.json says what each source sends for every field, and marks where they disagree."""
    fields = load("fields.json")
    assert set(fields) == {*RECORDS, "envelope"}
    for record, model in RECORDS.items():
        assert set(fields[record]) == set(model.model_fields), record
        for name, row in fields[record].items():
            assert {"opencps", "huanvu", "gateway", "disagree"} <= set(row), (record, name)
            assert ("chosen" in row) is row["disagree"], (record, name)
    disagreements = [(r, n) for r, group in fields.items() for n, row in group.items() if row["disagree"]]
    assert len(disagreements) == 30


# --- record rules, one at a time --------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 00:30 on 1 December in Hà Nội
CTX = RecordContext(sector="Hộ tịch", sector_code="HOTICH", handled_by="Bộ Tư pháp")


def dossier(status: DossierStatus = DossierStatus.FINISHED, **over: Any) -> Dossier:
    data: dict[str, Any] = {
        "id": uuid.uuid4(),
        "code": "000.00.01.H58-261201-0007",
        "procedure_code": "1.001193",
        "procedure_name": "Đăng ký khai sinh",
        "receiving_unit": "000.00.01.H58",
        "client_id": "centre-hcm",
        "agency": "justice",
        "endpoint": "national",
        "status": status,
        "received_at": RECEIVED,
        "due_at": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        "updated_at": RECEIVED,
        "submission": submission(),
        "results": [
            {
                "name": "Giấy khai sinh",
                "component_code": "GKS",
                "result_code": "KS-17/2026",
                "size": 9,
                "sha256": "b" * 64,
            }
        ],
    }
    data.update(over)
    return Dossier.model_validate(data)


def event(seq: int, status: DossierStatus, at: datetime, note: str = "", actor: str = "agency:justice") -> StatusEvent:
    return StatusEvent(seq=seq, status=status, at=at, actor=actor, note=note)


HISTORY = [
    event(1, DossierStatus.RECEIVED, RECEIVED, "received at the centre", "centre-hcm"),
    event(2, DossierStatus.PROCESSING, datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
    event(3, DossierStatus.FINISHED, datetime(2026, 12, 1, 8, 15, 30, tzinfo=UTC), "đã cấp giấy khai sinh"),
    event(4, DossierStatus.FINISHED, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),  # a later repeat changes nothing
]


def test_dates_are_the_portals_format_in_vietnam_time() -> None:
    assert portal_date(RECEIVED) == "20261201003000"
    assert portal_date(None) == ""


def test_a_citizens_finished_dossier() -> None:
    r = portal_dossier(dossier(), HISTORY, CTX)
    assert (r.KenhThucHien, r.LoaiDoiTuong, r.HinhThuc, r.TaiKhoanDuocXacThucVoiVNeID) == ("1", "1", "1", "1")
    assert (r.NgayNopHoSo, r.NgayTiepNhan, r.NgayHenTra) == ("20261201003000", "20261201003000", "20261202170000")
    assert r.NgayKetThucXuLy == "20261201151530"  # the first event that finished it
    assert (r.NgayTra, r.NgayTuChoi, r.TrangThaiHoSo, r.NoiNopHoSo) == ("", "", "9", "2")
    # Only documents with a link are listed, as both sources do: TP01 was sent inline.
    assert [(d.MaThanhPhanHoSo, d.DuocTaiSuDung, d.DuocSoHoa) for d in r.TaiLieuNop] == [("TP02", "1", "0")]
    assert r.HoSoCoThanhPhanSoHoa == "0"
    assert [(f.MaPhiLePhi, f.Gia, f.LoaiPhiLePhi, f.HinhThucThu) for f in r.DanhSachLePhi] == [
        ("LP01", "8000", "1", "1")
    ]
    assert r.DuocThanhToanTrucTuyen == "3"  # a fee not paid online
    # A result held inline has no link without the gateway's address: not listed.
    assert r.DanhSachGiayToKetQua == []
    linked = portal_dossier(
        dossier(), HISTORY, RecordContext("Hộ tịch", "HOTICH", "x", result_link=lambda d, i: f"https://gw/{i}")
    )
    [result] = linked.DanhSachGiayToKetQua
    assert (result.MaGiayToKetQua, result.GiayToId, result.DuongDanTepTinKetQua) == (
        "KS-17/2026",
        "b" * 64,
        "https://gw/0",
    )
    # With the gateway's link to its copy of each document, every stored one is listed, in order.
    served = portal_dossier(
        dossier(), HISTORY, RecordContext("Hộ tịch", "HOTICH", "x", document_link=lambda d, i: f"https://gw/a/{i}")
    )
    assert [(d.MaThanhPhanHoSo, d.DuongDanTaiTepTin) for d in served.TaiLieuNop] == [
        ("TP01", "https://gw/a/0"),
        ("TP02", "https://gw/a/1"),
    ]


@pytest.mark.parametrize(
    ("fees", "paid"),
    [
        ([], "0"),
        ([{"code": "A", "name": "a", "amount": 1, "paid_online": True}], "1"),
        ([{"code": "A", "name": "a", "amount": 1, "paid_online": True, "payment_portal": "local"}], "2"),
        (
            [
                {"code": "A", "name": "a", "amount": 1, "paid_online": True},
                {"code": "B", "name": "b", "amount": 0},
            ],
            "3",
        ),
    ],
)
def test_paid_online(fees: list[dict[str, Any]], paid: str) -> None:
    r = portal_dossier(dossier(submission=submission(fees=fees)), HISTORY, CTX)
    assert r.DuocThanhToanTrucTuyen == paid


def test_an_organisations_dossier_refused_at_intake() -> None:
    d = dossier(DossierStatus.REJECTED, submission=submission(applicant=organisation(organisation_type=3)), results=[])
    rejected = event(2, DossierStatus.REJECTED, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    r = portal_dossier(d, [HISTORY[0], rejected], CTX)
    assert (r.ChuHoSo, r.LoaiDoiTuong, r.SoGiayToChuHoSo, r.TaiKhoanDuocXacThucVoiVNeID) == (
        "Công ty TNHH Sao Mai",
        "3",
        "0100109106",
        "0",
    )
    assert [(i.LoaiDinhDanh, i.SoDinhDanh) for i in r.DinhDanhCHS] == [("3", "0100109106")]
    # Refusing ends processing too (the portal's rule: refused, stopped, withdrawn, finished, returned).
    assert (r.NgayTuChoi, r.NgayKetThucXuLy, r.TrangThaiHoSo) == ("20261201090000", "20261201090000", "3")


@pytest.mark.parametrize("status", [DossierStatus.WITHDRAWN, DossierStatus.STOPPED])
def test_withdrawing_and_stopping_end_processing(status: DossierStatus) -> None:
    ended = event(3, status, datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    r = portal_dossier(dossier(status, results=[]), [*HISTORY[:2], ended], CTX)
    assert (r.NgayKetThucXuLy, r.TrangThaiHoSo, r.NgayTra) == ("20261201110000", str(int(status)), "")


def test_a_returned_dossier_ends_when_it_finished_not_when_returned() -> None:
    returned = event(5, DossierStatus.RETURNED, datetime(2026, 12, 2, 3, 0, tzinfo=UTC), actor="centre-hcm")
    r = portal_dossier(dossier(DossierStatus.RETURNED), [*HISTORY, returned], CTX)
    assert (r.NgayKetThucXuLy, r.NgayTra) == ("20261201151530", "20261202100000")


def test_progress_records() -> None:
    ctx = RecordContext("Hộ tịch", "HOTICH", "Bộ Tư pháp", names={"agency:justice": "Bộ Tư pháp"})
    p = portal_progress(dossier(), HISTORY[2], ctx)
    assert (p.MaHoSo, p.NguoiXuLy, p.NoiDungXuLy, p.ThoiDiemXuLy, p.TrangThai) == (
        "000.00.01.H58-261201-0007",
        "Bộ Tư pháp",  # a name, not the gateway's id of the agency
        "đã cấp giấy khai sinh",
        "20261201151530",
        "9",
    )
    assert (p.ChucDanh, p.PhongBanXuLy, p.NgayBatDau, p.NgayKetThucTheoQuyDinh) == ("", "", "", "")
    assert "NgayHenTra" not in p.model_dump()
    # No note from the agency, or a note of the gateway's own: the status, in Vietnamese.
    assert portal_progress(dossier(), HISTORY[1], ctx).NoiDungXuLy == "Đang xử lý"
    received = portal_progress(dossier(), HISTORY[0], ctx)
    assert (received.NoiDungXuLy, received.NguoiXuLy) == ("Đã tiếp nhận hồ sơ", "centre-hcm")
    assert portal_progress(dossier(), HISTORY[1], CTX).NguoiXuLy == "justice"  # no name configured


@pytest.mark.parametrize(
    ("field", "value"),
    [("TrangThaiHoSo", 9), ("NgayHenTra", "2026-12-02"), ("KenhThucHien", 1), ("DuocThanhToanTrucTuyen", "5")],
)
def test_the_record_is_strict_about_types_and_formats(field: str, value: Any) -> None:
    good = json.loads(portal_dossier(dossier(), HISTORY, CTX).model_dump_json())
    with pytest.raises(ValidationError) as exc:
        PortalDossier.model_validate(dict(good, **{field: value}))
    assert exc.value.errors()[0]["loc"] == (field,)


def test_the_envelope_and_the_answer() -> None:
    good = json.loads(portal_dossier(dossier(), HISTORY, CTX).model_dump_json())
    req = PortalRequest.model_validate(
        {"session": "s", "madonvi": "000.00.01.H58", "service": "DongBoHoSoMC", "isUpdating": "False", "data": [good]}
    )
    assert req.data is not None and isinstance(req.data[0], PortalDossier)
    with pytest.raises(ValidationError):
        PortalRequest.model_validate({"session": "s", "madonvi": "x", "service": "XoaHoSo", "data": []})
    assert PortalAnswer.model_validate({"error_code": 0, "message": "Thành công"}).ok
    assert PortalAnswer.model_validate({"error_code": "0"}).ok
    assert not PortalAnswer.model_validate({"error_code": 1, "message": "Sai dữ liệu"}).ok
    assert not PortalAnswer.model_validate({"error_code": "-3", "message": "Hồ sơ đã tồn tại"}).ok
