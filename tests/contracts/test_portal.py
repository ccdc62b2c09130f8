"""The national portal's records (DongBoHoSoMC, CapNhatTienDoHoSoMC) built from a dossier and its events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts import Dossier, DossierStatus, StatusEvent, SupplementRequest
from contracts.portal import portal_date, portal_dossier, portal_progress
from tests.contracts.test_dossier import organisation, submission

RECEIVED = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 00:30 on 1 December in Hà Nội


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


def event(seq: int, status: DossierStatus, at: datetime, note: str = "") -> StatusEvent:
    return StatusEvent(seq=seq, status=status, at=at, actor="agency:justice", note=note)


HISTORY = [
    event(1, DossierStatus.RECEIVED, RECEIVED),
    event(2, DossierStatus.PROCESSING, datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
    event(3, DossierStatus.FINISHED, datetime(2026, 12, 1, 8, 15, 30, tzinfo=UTC), "đã cấp giấy khai sinh"),
    event(4, DossierStatus.FINISHED, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),  # a later repeat changes nothing
]


def test_dates_are_the_portals_format_in_vietnam_time() -> None:
    assert portal_date(RECEIVED) == "20261201003000"
    assert portal_date(None) is None


def test_a_citizens_finished_dossier() -> None:
    r = portal_dossier(dossier(), HISTORY, sector="Hộ tịch", handled_by="Bộ Tư pháp")
    assert (r.MaHoSo, r.MaTTHC, r.TenTTHC, r.MaLinhVuc) == (
        "000.00.01.H58-261201-0007",
        "1.001193",
        "Đăng ký khai sinh",
        "Hộ tịch",
    )
    assert (r.ChuHoSo, r.LoaiDoiTuong, r.SoGiayToChuHoSo) == ("Nguyễn Văn An", 1, "079090001234")
    assert [(i.LoaiDinhDanh, i.SoDinhDanh) for i in r.DinhDanhCHS] == [(1, "079090001234")]
    assert (r.TaiKhoanDuocXacThucVoiVNeID, r.KenhThucHien, r.HinhThuc) == (1, 1, 1)
    assert (r.NgayNopHoSo, r.NgayTiepNhan, r.NgayHenTra) == ("20261201003000", "20261201003000", "20261202170000")
    assert r.NgayKetThucXuLy == "20261201151530"  # the first event that finished it
    assert (r.NgayTra, r.NgayTuChoi) == (None, None)
    assert (r.TrangThaiHoSo, r.DonViXuLy, r.NoiNopHoSo) == (9, "Bộ Tư pháp", "000.00.01.H58")
    assert [(d.MaThanhPhanHoSo, d.DuongDanTaiTepTin, d.DuocTaiSuDung) for d in r.TaiLieuNop] == [
        ("TP01", None, 0),
        ("TP02", "https://files.example.vn/tp02.jpg", 1),
    ]
    assert [(f.MaPhiLePhi, f.Gia, f.LoaiPhiLePhi) for f in r.DanhSachLePhi] == [("LP01", 8000, 1)]
    assert r.DuocThanhToanTrucTuyen == 0
    assert [(g.TenGiayTo, g.MaThanhPhanHoSo, g.GiayToId) for g in r.DanhSachGiayToKetQua] == [
        ("Giấy khai sinh", "GKS", "KS-17/2026")
    ]


def test_an_organisations_dossier_refused_at_intake() -> None:
    d = dossier(DossierStatus.REJECTED, submission=submission(applicant=organisation()), results=[])
    rejected = event(2, DossierStatus.REJECTED, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    r = portal_dossier(d, [HISTORY[0], rejected], sector="Hộ tịch", handled_by="justice")
    assert (r.ChuHoSo, r.LoaiDoiTuong, r.SoGiayToChuHoSo, r.TaiKhoanDuocXacThucVoiVNeID) == (
        "Công ty TNHH Sao Mai",
        2,
        "0100109106",
        0,
    )
    assert [(i.LoaiDinhDanh, i.SoDinhDanh) for i in r.DinhDanhCHS] == [(3, "0100109106")]
    assert (r.NgayTuChoi, r.NgayKetThucXuLy, r.TrangThaiHoSo) == ("20261201090000", None, 3)


def test_supplements_and_the_due_dates_they_moved() -> None:
    asked = SupplementRequest(
        requested_by="agency:police",
        items=["Giấy xác nhận chỗ ở hợp pháp"],
        note="bản sao có chứng thực",
        requested_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        due_at=datetime(2026, 12, 10, 10, 0, tzinfo=UTC),
        answered_at=datetime(2026, 12, 3, 3, 0, tzinfo=UTC),
        dossier_due_before=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        dossier_due_after=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
    )
    waiting = asked.model_copy(update={"answered_at": None, "dossier_due_after": None})
    r = portal_dossier(dossier(supplements=[asked, waiting]), HISTORY, sector="Hộ tịch", handled_by="x")
    first, second = r.DanhSachHoSoBoSung
    assert first.NoiDungBoSung == "Giấy xác nhận chỗ ở hợp pháp (bản sao có chứng thực)"
    assert (first.NgayBoSung, first.NgayTiepNhanBoSung, first.TrangThaiBoSung) == (
        "20261201100000",
        "20261203100000",
        2,
    )
    assert (first.NgayHenTraTruoc, first.NgayHenTraMoi) == ("20261202170000", "20261204170000")
    assert (second.TrangThaiBoSung, second.NgayTiepNhanBoSung, second.NgayHenTraMoi) == (1, None, None)


def test_progress_record_of_one_event() -> None:
    p = portal_progress(dossier(), HISTORY[2])
    assert (p.MaHoSo, p.NguoiXuLy, p.NoiDungXuLy, p.ThoiDiemXuLy, p.TrangThai, p.NgayHenTra) == (
        "000.00.01.H58-261201-0007",
        "agency:justice",
        "đã cấp giấy khai sinh",
        "20261201151530",
        9,
        "20261202170000",
    )
    assert portal_progress(dossier(), HISTORY[1]).NoiDungXuLy == DossierStatus.PROCESSING.label
