"""The civil status procedures the justice plugin serves, and the documents each takes (the simulator checks
what arrives against the same rules). Documents travel in base64 inside the envelope's XML: each is kept
under the XML parsers' 10 MB text limit."""

from __future__ import annotations

from contracts import DocumentRule, ProcedureSpec
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION, BirthRegistrationForm, DeathRegistrationForm

KIND = "justice"
SECTOR = "Hộ tịch"
FORMS = ("application/pdf",)
PAPERS = ("application/pdf", "image/jpeg", "image/png")
MAX = 5 * 2**20


def procedures() -> list[ProcedureSpec]:
    # Codes as in the national procedure database.
    return [
        ProcedureSpec(
            code=BIRTH_REGISTRATION,
            name="Đăng ký khai sinh (birth registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=1,  # (uncertain) same day when received before 15:00; one working day to be safe
            form_model=BirthRegistrationForm,
            required_components=("TK-KS",),
            documents=(
                DocumentRule(
                    component_code="TK-KS", name="Tờ khai đăng ký khai sinh", max_bytes=MAX, media_types=FORMS
                ),
                DocumentRule(component_code="GCS", name="Giấy chứng sinh", max_bytes=MAX, media_types=PAPERS),
            ),
        ),
        ProcedureSpec(
            code=DEATH_REGISTRATION,
            name="Đăng ký khai tử (death registration)",
            sector=SECTOR,
            agency_kind=KIND,
            processing_days=1,
            form_model=DeathRegistrationForm,
            required_components=("TK-KT",),
            documents=(
                DocumentRule(component_code="TK-KT", name="Tờ khai đăng ký khai tử", max_bytes=MAX, media_types=FORMS),
                DocumentRule(component_code="GBT", name="Giấy báo tử", max_bytes=MAX, media_types=PAPERS),
            ),
        ),
    ]


def by_code() -> dict[str, ProcedureSpec]:
    return {p.code: p for p in procedures()}
