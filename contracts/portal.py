"""The national public service portal's (DVCQG) records of a dossier, built field for field as two public
implementations build them, and the envelope they travel in.

Sources, read for every field (tests/contracts/fixtures/dvcqg/ holds a record written from them, with
their commits and licences):
- OpenCPS v2 (VietOpenCPS/opencps-v2), DVCQGIntegrationActionImpl.java: createSyncDossierBodyRequest
  (DongBoHoSoMC), createSyncDossierStatusBodyRequest (CapNhatTienDoHoSoMC), syncData (the envelope);
- a provincial one-stop system (HuanVu201/DichVuCong_KhoaLuan_PASETO), SyncLocalDataToDVCQG/*.cs (the
  record classes and how they are filled), SyncSLDService.cs (DuocTaiSuDung and MaKetQuaThayThe).
Where they disagree this module follows OpenCPS and says what the other does ("HuanVu: ...").

Both send every value as a string, absent dates as "" and dates as yyyyMMddHHmmss in Asia/Ho_Chi_Minh.
A record never contradicts the event log: the dates of ending, returning and refusing are those of the
first event that reached that status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from contracts.base import Model
from contracts.calendar import VN_TZ
from contracts.dossier import Attachment, Dossier, PersonApplicant, StatusEvent, SupplementRequest
from contracts.identifiers import IdKind
from contracts.status import DossierStatus

PORTAL_DATE = "%Y%m%d%H%M%S"

DateText = Annotated[str, Field(pattern=r"^([0-9]{14})?$", description="yyyyMMddHHmmss in Asia/Ho_Chi_Minh, or ''")]
Flag = Literal["0", "1"]


def portal_date(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(VN_TZ).strftime(PORTAL_DATE)


class _Record(Model):
    # Strict: the portal takes strings; a number where a string belongs is refused, not converted.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PortalIdentity(_Record):
    """DinhDanhCHS: the owner's identifiers (HuanVu only; OpenCPS sends none)."""

    LoaiDinhDanh: Literal["1", "2", "3"] = Field(
        description="1 12-digit personal id, 2 9-digit card; 3 a tax code (ours: HuanVu sends the placeholder"
        " 000000001 with 2 when the owner's paper is neither 9 nor 12 digits)"
    )
    SoDinhDanh: str


class PortalDocument(_Record):
    """TaiLieuNop: a submitted document. Both sources list only documents that have a file link."""

    TepDinhKemId: str = Field(description="the document's id (OpenCPS: its file id; HuanVu: '')")
    TenTepDinhKem: str
    IsDeleted: Literal["False", "True"] = "False"
    MaThanhPhanHoSo: str
    DuongDanTaiTepTin: str
    DuocSoHoa: Flag = "0"
    DuocTaiSuDung: Literal["0", "1", "2"] = Field(
        "0", description="1 reused, 2 replaced by an earlier result (MaKetQuaThayThe)"
    )
    DuocLayTuKhoDMQG: Flag = "0"
    MaKetQuaThayThe: str = ""


class PortalFee(_Record):
    """DanhSachLePhi (OpenCPS names the fields and sends an empty list; HuanVu fills them)."""

    TenPhiLePhi: str
    MaPhiLePhi: str
    HinhThucThu: str = Field(description="HuanVu sends 1, the only value either source uses")
    Gia: str = Field(pattern=r"^[0-9]+$")
    LoaiPhiLePhi: Literal["1", "2", "3"] = Field(description="1 fee, 2 charge, 3 tax")


class PortalOtherDocument(_Record):
    """DanhSachTepDinhKemKhac: other papers. Both sources send it empty; so does the gateway."""

    TenGiayTo: str
    SoLuong: str
    LoaiGiayTo: str


class PortalSupplement(_Record):
    """DanhSachHoSoBoSung: one supplement request. OpenCPS names these fields with string values; HuanVu
    types HoSoBoSungId as int, the dates as DateTime and TrangThaiBoSung as bool."""

    HoSoBoSungId: str
    NguoiYeuCauBoSung: str
    NoiDungBoSung: str
    NgayBoSung: DateText
    NguoiTiepNhanBoSung: str
    ThongTinTiepNhan: str
    NgayTiepNhanBoSung: DateText
    TrangThaiBoSung: Flag = Field(description="1 supplied, 0 still awaited (HuanVu's bool)")
    DanhSachGiayToBoSung: list[PortalDocument]
    DanhSachLePhiBoSung: list[PortalFee]
    NgayHenTraTruoc: DateText
    NgayHenTraMoi: DateText


class PortalResult(_Record):
    """DanhSachGiayToKetQua: a result. Both sources list only results that have a file link."""

    TenGiayTo: str
    MaThanhPhanHoSo: str = Field(description="the component code (OpenCPS: the part number; HuanVu: '')")
    GiayToId: str = Field(description="the result's id (OpenCPS: its file id; HuanVu: '')")
    DuongDanTepTinKetQua: str = Field(min_length=1)
    MaGiayToKetQua: str = Field(description="the result's code (HuanVu only: the procedure's main result code)")


class PortalDatabase(_Record):
    MaCSDL: str


class PortalDossier(_Record):
    """One dossier as the portal keeps it (DongBoHoSoMC); the portal upserts by MaHoSo."""

    MaHoSo: str
    MaTTHC: str
    TenTTHC: str
    MaLinhVuc: str
    TenLinhVuc: str
    KenhThucHien: Literal["1", "2", "3"]
    SoGiayToChuHoSo: str
    ChuHoSo: str
    LoaiDoiTuong: Literal["1", "2", "3", "4"]
    MaDoiTuong: str = Field(description="the owner's account id at the portal; '' when not known")
    ThongTinKhac: str
    Email: str
    Fax: str
    SoDienThoai: str
    TrichYeuHoSo: str = Field(max_length=1000)
    NgayTiepNhan: DateText
    NgayHenTra: DateText
    TrangThaiHoSo: str = Field(pattern=r"^([0-9]|10)$")
    NgayTra: DateText
    ThongTinTra: str
    HinhThuc: Literal["0", "1", "2"] = Field(description="0 at the desk, 1 by post, 2 to the VNeID wallet")
    NgayKetThucXuLy: DateText
    DonViXuLy: str
    GhiChu: str
    TaiLieuNop: list[PortalDocument]
    DanhSachLePhi: list[PortalFee]
    DanhSachTepDinhKemKhac: list[PortalOtherDocument]
    DanhSachHoSoBoSung: list[PortalSupplement]
    DanhSachGiayToKetQua: list[PortalResult]
    NoiNopHoSo: str
    HoSoCoThanhPhanSoHoa: Flag
    TaiKhoanDuocXacThucVoiVNeID: Flag
    DuocThanhToanTrucTuyen: Literal["0", "1", "2", "3"] = Field(
        description="0 no fee, 1 paid on the national portal, 2 paid through a provincial or ministry portal, "
        "3 not paid online"
    )
    NgayTuChoi: DateText
    DinhDanhCHS: list[PortalIdentity]
    NgayNopHoSo: DateText
    DSKetNoiCSDL: list[PortalDatabase]


class PortalProgress(_Record):
    """One step of a dossier's progress (CapNhatTienDoHoSoMC): who did what, when, with which status."""

    MaHoSo: str
    NguoiXuLy: str
    ChucDanh: str
    ThoiDiemXuLy: DateText
    PhongBanXuLy: str
    NoiDungXuLy: str
    TrangThai: str = Field(pattern=r"^([0-9]|10)$")
    NgayBatDau: DateText
    NgayKetThucTheoQuyDinh: DateText


# -- the envelope -------------------------------------------------------------------------------------

Service = Literal["DongBoHoSoMC", "CapNhatTienDoHoSoMC", "TraCuuHoSo"]


class PortalLogin(_Record):
    """The body of the login call; the portal answers {"session", "error_code": 0} (OpenCPS getAccessToken)."""

    username: str
    password: str


class PortalRequest(_Record):
    """What each call to the integration endpoint carries (OpenCPS syncData): the session, the unit, the
    service and its data. isUpdating ("True"/"False") only for DongBoHoSoMC: False creates, True updates."""

    session: str
    madonvi: str
    service: Service
    isUpdating: Literal["True", "False"] | None = None
    data: list[PortalDossier] | list[PortalProgress] | None = None
    mahoso: str | None = None  # TraCuuHoSo: which dossier to look up


class PortalAnswer(Model):
    """The portal's answer: error_code 0 acknowledges; anything else refuses, with a message."""

    model_config = ConfigDict(frozen=True, extra="allow")

    error_code: int | str
    message: str = ""

    @property
    def ok(self) -> bool:
        return str(self.error_code).strip() == "0"


# -- building the records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordContext:
    """What the records need beyond the dossier: names and codes the gateway's configuration holds."""

    sector: str  # TenLinhVuc
    sector_code: str  # MaLinhVuc
    handled_by: str  # DonViXuLy: the handling agency's name
    names: Mapping[str, str] = field(default_factory=dict)  # actor -> the name the portal shows
    databases: Sequence[str] = ()  # DSKetNoiCSDL
    result_link: Callable[[Dossier, int], str | None] = lambda dossier, index: None  # a result held inline
    # A submitted document the gateway serves (from its document store); None: only one named by URL is listed.
    document_link: Callable[[Dossier, int], str | None] = lambda dossier, index: None

    def name_of(self, actor: str) -> str:
        return self.names.get(actor) or actor.removeprefix("agency:")


_FEE_KIND: dict[str, Literal["1", "2", "3"]] = {"fee": "1", "charge": "2", "tax": "3"}
_CHANNEL: dict[int, Literal["1", "2", "3"]] = {1: "1", 2: "2", 3: "3"}
# 2: an electronic result, returned to the applicant's VNeID wallet.
_RETURN: dict[int, Literal["0", "1", "2"]] = {0: "0", 1: "1", 2: "2"}
_OWNER: dict[int, Literal["1", "2", "3", "4"]] = {1: "1", 2: "2", 3: "3", 4: "4"}
_ID_KIND: dict[IdKind, Literal["1", "2"]] = {IdKind.PERSONAL_ID: "1", IdKind.OLD_ID_CARD: "2"}
# Ending processing (NgayKetThucXuLy): refused, withdrawn, stopped, finished; returned only when no
# finishing came first (the portal's rule: finished wins over returned).
_ENDINGS = (
    DossierStatus.REJECTED,
    DossierStatus.WITHDRAWN,
    DossierStatus.STOPPED,
    DossierStatus.FINISHED,
    DossierStatus.RETURNED,
)
# Dossiers reach the gateway through the centres' own systems, not through the portal: HuanVu sends "2"
# for the same reason (OpenCPS sends no NoiNopHoSo).
SUBMITTED_LOCALLY = "2"


def _first(events: Sequence[StatusEvent], statuses: Sequence[DossierStatus]) -> datetime | None:
    return next((e.at for e in events if e.status in statuses), None)


def _returned_how(events: Sequence[StatusEvent]) -> str:
    """How the result was returned, when the gateway knows it: into the VNeID wallet."""
    returned = next((e for e in events if e.status == DossierStatus.RETURNED), None)
    if returned is None or returned.data.get("returned_via") != "vneid-wallet":
        return ""
    return f"Đã trả kết quả vào ví VNeID của công dân (mã {returned.data.get('wallet_ref', '')})"


def _flag(value: bool) -> Flag:
    return "1" if value else "0"


def _document(a: Attachment, link: str | None) -> PortalDocument | None:
    link = link or a.url
    if link is None:
        return None  # neither source lists a document without a link the portal can follow
    if a.reused and a.replaced_by_result:
        reused: Literal["0", "1", "2"] = "2"
    else:
        reused = "1" if a.reused else "0"
    return PortalDocument(
        TepDinhKemId=a.sha256 or "",  # OpenCPS: the file's id; HuanVu: ""
        TenTepDinhKem=a.name,
        MaThanhPhanHoSo=a.component_code,
        DuongDanTaiTepTin=link,
        DuocSoHoa=_flag(a.digitised),
        DuocTaiSuDung=reused,
        DuocLayTuKhoDMQG=_flag(a.from_portal_store),
        MaKetQuaThayThe=a.replaced_by_result if a.replaced_by_result and reused == "2" else "",
    )


def _paid_online(dossier: Dossier, events: Sequence[StatusEvent] = ()) -> Literal["0", "1", "2", "3"]:
    """The fees the centre declared, or a payment made through the gateway (an event carrying it)."""
    paid = [e.data["payment"] for e in events if isinstance(e.data.get("payment"), dict)]
    if any(p.get("paid_online") for p in paid):
        return "1" if all(p.get("portal", "national") == "national" for p in paid) else "2"
    fees = dossier.submission.fees
    if not fees:
        return "0"
    if not all(f.paid_online for f in fees):
        return "3"
    return "1" if all(f.payment_portal == "national" for f in fees) else "2"


def _supplement(index: int, s: SupplementRequest, ctx: RecordContext) -> PortalSupplement:
    supplied = [d.name for d in s.documents]
    return PortalSupplement(
        HoSoBoSungId=str(index),
        NguoiYeuCauBoSung=ctx.name_of(f"agency:{s.requested_by}"),
        NoiDungBoSung="; ".join(s.items) + (f" ({s.note})" if s.note else ""),
        NgayBoSung=portal_date(s.requested_at),
        NguoiTiepNhanBoSung=ctx.name_of(s.answered_by) if s.answered_by else "",
        ThongTinTiepNhan=("Đã nhận: " + "; ".join(supplied)) if supplied else "",
        NgayTiepNhanBoSung=portal_date(s.answered_at),
        TrangThaiBoSung=_flag(s.answered_at is not None),
        DanhSachGiayToBoSung=[
            PortalDocument(
                TepDinhKemId=d.sha256 or "",
                TenTepDinhKem=d.name,
                MaThanhPhanHoSo=d.component_code,
                DuongDanTaiTepTin=d.url,
            )
            for d in s.documents
            if d.url is not None  # with a link only, as for the dossier's documents
        ],
        DanhSachLePhiBoSung=[],
        NgayHenTraTruoc=portal_date(s.dossier_due_before),
        NgayHenTraMoi=portal_date(s.dossier_due_after),
    )


def portal_dossier(dossier: Dossier, events: Sequence[StatusEvent], ctx: RecordContext) -> PortalDossier:
    """The portal record of a dossier; `events` is its whole log, oldest first."""
    sub = dossier.submission
    applicant = sub.applicant
    if isinstance(applicant, PersonApplicant):
        owner, kind, number = applicant.full_name, 1, applicant.personal_id
        ids = [PortalIdentity(LoaiDinhDanh=_ID_KIND[applicant.id_kind], SoDinhDanh=number)]
        vneid = applicant.vneid_level >= 1
    else:
        owner, kind, number = applicant.name, applicant.organisation_type, applicant.tax_code
        ids = [PortalIdentity(LoaiDinhDanh="3", SoDinhDanh=number)]
        vneid = False
    documents = [
        d
        for i, a in enumerate(sub.attachments)
        if (d := _document(a, ctx.document_link(dossier, i) if a.sha256 or a.content_base64 else None)) is not None
    ]
    results = []
    for i, r in enumerate(dossier.results):
        link = r.url or ctx.result_link(dossier, i)
        if link:  # neither source lists a result without a link
            results.append(
                PortalResult(
                    TenGiayTo=r.name,
                    MaThanhPhanHoSo=r.component_code,
                    GiayToId=r.sha256,
                    DuongDanTepTinKetQua=link,
                    MaGiayToKetQua=r.result_code or "",
                )
            )
    return PortalDossier(
        MaHoSo=dossier.code,
        MaTTHC=dossier.procedure_code,
        TenTTHC=dossier.procedure_name,
        MaLinhVuc=ctx.sector_code,
        TenLinhVuc=ctx.sector,
        KenhThucHien=_CHANNEL[int(sub.channel)],
        SoGiayToChuHoSo=number,
        ChuHoSo=owner,
        LoaiDoiTuong=_OWNER[kind],  # OpenCPS: 1 or 2 only (it knows citizens and businesses)
        MaDoiTuong="",  # OpenCPS: "" without a portal account mapping; HuanVu: null
        ThongTinKhac="",
        Email=applicant.email or "",  # HuanVu: always "" (its query's column does not map to Email)
        Fax=applicant.phone or "",  # OpenCPS sends the contact phone as Fax; HuanVu: ""
        SoDienThoai=applicant.phone or "",
        TrichYeuHoSo=sub.summary,
        NgayTiepNhan=portal_date(dossier.received_at),
        NgayHenTra=portal_date(dossier.due_at),
        TrangThaiHoSo=str(int(dossier.status)),  # HuanVu sends 9 for 5, 6 and 8
        NgayTra=portal_date(_first(events, [DossierStatus.RETURNED])),
        ThongTinTra=_returned_how(events),
        HinhThuc=_RETURN[int(sub.return_method)],
        NgayKetThucXuLy=portal_date(_first(events, _ENDINGS[:-1]) or _first(events, _ENDINGS[-1:])),
        DonViXuLy=ctx.handled_by,
        GhiChu=sub.summary,  # OpenCPS sends the dossier's note here too; HuanVu: ""
        TaiLieuNop=documents,
        DanhSachLePhi=[
            PortalFee(
                TenPhiLePhi=f.name,
                MaPhiLePhi=f.code,  # HuanVu: "1"
                HinhThucThu="1",
                Gia=str(f.amount),
                LoaiPhiLePhi=_FEE_KIND[f.kind],  # HuanVu: "1"
            )
            for f in sub.fees
        ],
        DanhSachTepDinhKemKhac=[],
        DanhSachHoSoBoSung=[_supplement(i, s, ctx) for i, s in enumerate(dossier.supplements, start=1)],
        DanhSachGiayToKetQua=results,
        NoiNopHoSo=SUBMITTED_LOCALLY,
        HoSoCoThanhPhanSoHoa=_flag(any(d.DuocSoHoa == "1" for d in documents)),
        TaiKhoanDuocXacThucVoiVNeID=_flag(vneid),  # HuanVu: "0" always
        DuocThanhToanTrucTuyen=_paid_online(dossier, events),
        NgayTuChoi=portal_date(_first(events, [DossierStatus.REJECTED])),
        DinhDanhCHS=ids,
        NgayNopHoSo=portal_date(sub.submitted_at or dossier.received_at),  # HuanVu: NgayTiepNhan
        DSKetNoiCSDL=[PortalDatabase(MaCSDL=code) for code in ctx.databases],  # HuanVu: always [{"MaCSDL": "7"}]
    )


def portal_progress(dossier: Dossier, event: StatusEvent, ctx: RecordContext) -> PortalProgress:
    """The progress record of one event. NoiDungXuLy is the agency's own note when it wrote one, else the
    status in Vietnamese (the gateway's notes are for its own log)."""
    note = event.note if event.actor.startswith("agency:") and event.note else ""
    return PortalProgress(
        MaHoSo=dossier.code,
        NguoiXuLy=ctx.name_of(event.actor),  # HuanVu: cut to 50 characters, "Chuyên viên" when unknown
        ChucDanh="",
        ThoiDiemXuLy=portal_date(event.at),
        PhongBanXuLy="",
        NoiDungXuLy=note or DossierStatus(event.status).label_vi,
        TrangThai=str(int(event.status)),  # OpenCPS: the dossier's status after the action it reports
        NgayBatDau="",
        NgayKetThucTheoQuyDinh="",  # HuanVu: the step's deadline
    )
