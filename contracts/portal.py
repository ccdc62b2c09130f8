"""The national public service portal's view of a dossier (DongBoHoSoMC) and of one step of its progress.

Field names are the portal's own; dates are `yyyyMMddHHmmss` in Asia/Ho_Chi_Minh. A record is built
from the canonical dossier and its status events: the dates of finishing, returning and refusing are
those of the first event that reached that status, so a record never contradicts the event log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from contracts.base import Model
from contracts.calendar import VN_TZ
from contracts.dossier import Dossier, PersonApplicant, StatusEvent
from contracts.identifiers import IdKind
from contracts.status import DossierStatus

PORTAL_DATE = "%Y%m%d%H%M%S"


def portal_date(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(VN_TZ).strftime(PORTAL_DATE)


class PortalIdentity(Model):
    LoaiDinhDanh: Literal[1, 2, 3] = Field(description="1: 12-digit personal id, 2: 9-digit card, 3: tax code")
    SoDinhDanh: str


class PortalDocument(Model):
    TenTepDinhKem: str
    MaThanhPhanHoSo: str
    DuongDanTaiTepTin: str | None = None
    DuocSoHoa: Literal[0, 1] = 0
    DuocTaiSuDung: Literal[0, 1] = 0


class PortalFee(Model):
    TenPhiLePhi: str
    MaPhiLePhi: str
    Gia: int
    LoaiPhiLePhi: Literal[1, 2, 3] = Field(description="1 fee, 2 charge, 3 tax")


class PortalSupplement(Model):
    NguoiYeuCauBoSung: str
    NoiDungBoSung: str
    NgayBoSung: str
    NgayHenTraTruoc: str | None = None
    NgayHenTraMoi: str | None = None
    NgayTiepNhanBoSung: str | None = None
    TrangThaiBoSung: Literal[1, 2] = Field(description="1 waiting for the applicant, 2 answered")


class PortalResult(Model):
    TenGiayTo: str
    MaThanhPhanHoSo: str
    GiayToId: str | None = None


class PortalDossier(Model):
    """One dossier as the portal keeps it (DongBoHoSoMC); the portal upserts by MaHoSo."""

    MaHoSo: str
    MaTTHC: str
    TenTTHC: str
    MaLinhVuc: str
    KenhThucHien: Literal[1, 2, 3]
    ChuHoSo: str
    LoaiDoiTuong: Literal[1, 2, 3, 4]
    SoGiayToChuHoSo: str
    DinhDanhCHS: list[PortalIdentity]
    SoDienThoaiChuHoSo: str | None = None
    EmailChuHoSo: str | None = None
    TaiKhoanDuocXacThucVoiVNeID: Literal[0, 1]
    TrichYeuHoSo: str
    NgayNopHoSo: str
    NgayTiepNhan: str
    NgayHenTra: str
    NgayKetThucXuLy: str | None = None
    NgayTra: str | None = None
    NgayTuChoi: str | None = None
    TrangThaiHoSo: int
    DonViXuLy: str
    NoiNopHoSo: str
    HinhThuc: Literal[0, 1]
    TaiLieuNop: list[PortalDocument]
    DanhSachLePhi: list[PortalFee]
    DuocThanhToanTrucTuyen: Literal[0, 1]
    DanhSachHoSoBoSung: list[PortalSupplement]
    DanhSachGiayToKetQua: list[PortalResult]


class PortalProgress(Model):
    """One step of a dossier's progress (CapNhatTienDoHoSoMC): who did what, when, with which status."""

    MaHoSo: str
    NguoiXuLy: str
    NoiDungXuLy: str
    ThoiDiemXuLy: str
    TrangThai: int
    NgayHenTra: str


_FEE_KIND: dict[str, Literal[1, 2, 3]] = {"fee": 1, "charge": 2, "tax": 3}
_ID_KIND: dict[IdKind, Literal[1, 2]] = {IdKind.PERSONAL_ID: 1, IdKind.OLD_ID_CARD: 2}


def _first(events: list[StatusEvent], status: DossierStatus) -> datetime | None:
    return next((e.at for e in events if e.status == status), None)


def portal_dossier(dossier: Dossier, events: list[StatusEvent], *, sector: str, handled_by: str) -> PortalDossier:
    """The portal record of a dossier; `events` is its whole log, oldest first."""
    sub = dossier.submission
    applicant = sub.applicant
    if isinstance(applicant, PersonApplicant):
        owner, kind, number = applicant.full_name, 1, applicant.personal_id
        ids = [PortalIdentity(LoaiDinhDanh=_ID_KIND[applicant.id_kind], SoDinhDanh=number)]
        vneid: Literal[0, 1] = 1 if applicant.vneid_level >= 1 else 0
    else:
        owner, kind, number = applicant.name, applicant.organisation_type, applicant.tax_code
        ids = [PortalIdentity(LoaiDinhDanh=3, SoDinhDanh=number)]
        vneid = 0
    received = portal_date(dossier.received_at)
    assert received is not None
    return PortalDossier(
        MaHoSo=dossier.code,
        MaTTHC=dossier.procedure_code,
        TenTTHC=dossier.procedure_name,
        MaLinhVuc=sector,
        KenhThucHien=int(sub.channel),
        ChuHoSo=owner,
        LoaiDoiTuong=kind,
        SoGiayToChuHoSo=number,
        DinhDanhCHS=ids,
        SoDienThoaiChuHoSo=applicant.phone,
        EmailChuHoSo=applicant.email,
        TaiKhoanDuocXacThucVoiVNeID=vneid,
        TrichYeuHoSo=sub.summary,
        NgayNopHoSo=received,
        NgayTiepNhan=received,
        NgayHenTra=portal_date(dossier.due_at) or received,
        NgayKetThucXuLy=portal_date(_first(events, DossierStatus.FINISHED)),
        NgayTra=portal_date(_first(events, DossierStatus.RETURNED)),
        NgayTuChoi=portal_date(_first(events, DossierStatus.REJECTED)),
        TrangThaiHoSo=int(dossier.status),
        DonViXuLy=handled_by,
        NoiNopHoSo=dossier.receiving_unit,
        HinhThuc=int(sub.return_method),
        TaiLieuNop=[
            PortalDocument(
                TenTepDinhKem=a.name,
                MaThanhPhanHoSo=a.component_code,
                DuongDanTaiTepTin=a.url,
                DuocSoHoa=1 if a.digitised else 0,
                DuocTaiSuDung=1 if a.reused else 0,
            )
            for a in sub.attachments
        ],
        DanhSachLePhi=[
            PortalFee(TenPhiLePhi=f.name, MaPhiLePhi=f.code, Gia=f.amount, LoaiPhiLePhi=_FEE_KIND[f.kind])
            for f in sub.fees
        ],
        DuocThanhToanTrucTuyen=1 if sub.fees and all(f.paid_online for f in sub.fees) else 0,
        DanhSachHoSoBoSung=[
            PortalSupplement(
                NguoiYeuCauBoSung=s.requested_by,
                NoiDungBoSung="; ".join(s.items) + (f" ({s.note})" if s.note else ""),
                NgayBoSung=portal_date(s.requested_at) or received,
                NgayHenTraTruoc=portal_date(s.dossier_due_before),
                NgayHenTraMoi=portal_date(s.dossier_due_after),
                NgayTiepNhanBoSung=portal_date(s.answered_at),
                TrangThaiBoSung=2 if s.answered_at else 1,
            )
            for s in dossier.supplements
        ],
        DanhSachGiayToKetQua=[
            PortalResult(TenGiayTo=r.name, MaThanhPhanHoSo=r.component_code, GiayToId=r.result_code)
            for r in dossier.results
        ],
    )


def portal_progress(dossier: Dossier, event: StatusEvent) -> PortalProgress:
    return PortalProgress(
        MaHoSo=dossier.code,
        NguoiXuLy=event.actor,
        NoiDungXuLy=event.note or DossierStatus(event.status).label,
        ThoiDiemXuLy=portal_date(event.at) or "",
        TrangThai=int(event.status),
        NgayHenTra=portal_date(dossier.due_at) or "",
    )
