"""The land procedures the plugin serves. Codes are real-shaped; the exact national codes are uncertain."""

from __future__ import annotations

from contracts import ProcedureSpec
from plugins.land.forms import FirstCertificateForm, LandTransferForm

KIND = "land"
SECTOR = "Đất đai"

# Đăng ký biến động quyền sử dụng đất (chuyển nhượng). Uncertain: provinces publish this procedure
# under several codes since the 2024 Land Law; the operator renames it in conf/procedures.toml.
TRANSFER = "1.004227"
# Đăng ký đất đai, cấp Giấy chứng nhận quyền sử dụng đất lần đầu. Uncertain, as above.
FIRST_CERTIFICATE = "1.004269"

WIRE_KIND = {TRANSFER: "CHUYEN_NHUONG", FIRST_CERTIFICATE: "CAP_GCN_LAN_DAU"}


def procedures() -> list[ProcedureSpec]:
    return [
        ProcedureSpec(
            code=TRANSFER,
            name="Đăng ký biến động quyền sử dụng đất: chuyển nhượng (land-use right transfer registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=10,
            jurisdiction="province",
            form_model=LandTransferForm,
        ),
        ProcedureSpec(
            code=FIRST_CERTIFICATE,
            name="Đăng ký đất đai, cấp Giấy chứng nhận lần đầu (first land-use right certificate)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=20,
            jurisdiction="province",
            form_model=FirstCertificateForm,
            required_components=("DON_DK",),
        ),
    ]
