"""The residence procedures the police plugin serves, and the documents each takes (the simulator checks
what arrives against the same rules)."""

from __future__ import annotations

from contracts import DocumentRule, ProcedureSpec
from plugins.police.forms import ResidenceRegistrationForm, ResidenceRemovalForm
from plugins.police.settings import REMOVAL_PROCEDURE

KIND = "police"
SECTOR = "Đăng ký, quản lý cư trú"
SCANS = ("application/pdf", "image/jpeg", "image/png")
# Tờ khai thay đổi thông tin cư trú (mẫu CT01), and the proof of a lawful residence (hợp đồng thuê, giấy
# tờ nhà). Component codes are uncertain: operators rename or add them in conf/procedures.toml.
DOCUMENTS = (
    DocumentRule(component_code="TK01", name="Tờ khai thay đổi thông tin cư trú (CT01)", max_bytes=10 * 2**20,
                 media_types=SCANS),
    DocumentRule(component_code="HD01", name="Giấy tờ chứng minh chỗ ở hợp pháp", max_bytes=20 * 2**20,
                 media_types=SCANS),
)  # fmt: skip


def procedures() -> list[ProcedureSpec]:
    # Codes as in the national procedure database; operators may rename them in conf/procedures.toml.
    return [
        ProcedureSpec(
            code="1.004194",
            name="Đăng ký thường trú (permanent residence registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=7,
            form_model=ResidenceRegistrationForm,
            required_components=("TK01",),
            documents=DOCUMENTS,
        ),
        ProcedureSpec(
            code=REMOVAL_PROCEDURE,
            name="Xóa đăng ký thường trú (removal of permanent residence)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=3,
            form_model=ResidenceRemovalForm,
            documents=DOCUMENTS,
        ),
        ProcedureSpec(
            code="1.004203",
            name="Đăng ký tạm trú (temporary residence registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=3,
            form_model=ResidenceRegistrationForm,
            required_components=("TK01",),
            documents=DOCUMENTS,
        ),
    ]


def by_code() -> dict[str, ProcedureSpec]:
    return {p.code: p for p in procedures()}
