"""The land procedures the plugin serves. Codes are real-shaped; the exact national codes are uncertain."""

from __future__ import annotations

from contracts import DocumentRule, ProcedureSpec
from plugins.land.forms import FirstCertificateForm, LandTransferForm

KIND = "land"
SECTOR = "Đất đai"

# Đăng ký biến động quyền sử dụng đất (chuyển nhượng). Uncertain: provinces publish this procedure
# under several codes since the 2024 Land Law; the operator renames it in conf/procedures.toml.
TRANSFER = "1.004227"
# Đăng ký đất đai, cấp Giấy chứng nhận quyền sử dụng đất lần đầu. Uncertain, as above.
FIRST_CERTIFICATE = "1.004269"

WIRE_KIND = {TRANSFER: "CHUYEN_NHUONG", FIRST_CERTIFICATE: "CAP_GCN_LAN_DAU"}
# Documents ride in base64 inside the HoSoXml file: each is kept under the XML parsers' 10 MB text limit.
MAX = 7 * 2**20
SCANS = ("application/pdf", "image/jpeg", "image/png", "image/tiff")
# Where a land dossier lies: its parcels. The office of their province takes it, whatever centre received it.
PARCELS = "parcels[].address"


def procedures() -> list[ProcedureSpec]:
    return [
        ProcedureSpec(
            code=TRANSFER,
            name="Đăng ký biến động quyền sử dụng đất: chuyển nhượng (land-use right transfer registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=10,
            jurisdiction="province",
            jurisdiction_field=PARCELS,
            form_model=LandTransferForm,
            documents=(
                DocumentRule(
                    component_code="HD_CN", name="Hợp đồng chuyển nhượng QSDĐ", max_bytes=MAX, media_types=SCANS
                ),
                DocumentRule(component_code="GCN", name="Giấy chứng nhận đã cấp", max_bytes=MAX, media_types=SCANS),
            ),
        ),
        ProcedureSpec(
            code=FIRST_CERTIFICATE,
            name="Đăng ký đất đai, cấp Giấy chứng nhận lần đầu (first land-use right certificate)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=20,
            jurisdiction="province",
            jurisdiction_field=PARCELS,
            form_model=FirstCertificateForm,
            required_components=("DON_DK",),
            # A first certificate often needs the office's surveyor and officer: the centre books a slot.
            referral=True,
            documents=(
                DocumentRule(
                    component_code="DON_DK", name="Đơn đăng ký đất đai (Mẫu 04/ĐK)", max_bytes=MAX, media_types=SCANS
                ),
                DocumentRule(
                    component_code="GT_SDD", name="Giấy tờ về quyền sử dụng đất", max_bytes=MAX, media_types=SCANS
                ),
            ),
        ),
    ]


def by_code() -> dict[str, ProcedureSpec]:
    return {p.code: p for p in procedures()}
