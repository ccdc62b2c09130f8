"""The social insurance procedures the plugin serves, and the documents each takes (the simulator checks
what arrives against the same rules). Documents go to BHXH as file parts of a multipart request,
streamed from the gateway's document store."""

from __future__ import annotations

from contracts import DocumentRule, ProcedureSpec
from plugins.social_insurance.forms import (
    CHILD_HEALTH_CARD,
    FUNERAL_ALLOWANCE,
    ChildHealthCardForm,
    FuneralAllowanceForm,
)

KIND = "social_insurance"
PAPERS = ("application/pdf", "image/jpeg", "image/png")


def procedures() -> list[ProcedureSpec]:
    # No required documents: in a liên thông bundle the single declaration travels with the first step.
    return [
        ProcedureSpec(
            code=CHILD_HEALTH_CARD,
            name="Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi (health-insurance card for a child under 6)",
            sector="Bảo hiểm y tế",
            agency_kind=KIND,
            processing_days=5,
            form_model=ChildHealthCardForm,
            documents=(
                DocumentRule(
                    component_code="TK1-TS",
                    name="Tờ khai tham gia, điều chỉnh thông tin BHXH, BHYT (mẫu TK1-TS)",
                    max_bytes=10 * 2**20,
                    media_types=PAPERS,
                ),
            ),
        ),
        ProcedureSpec(
            code=FUNERAL_ALLOWANCE,
            name="Giải quyết hưởng trợ cấp mai táng (funeral allowance)",
            sector="Bảo hiểm xã hội",
            agency_kind=KIND,
            processing_days=10,  # Decree 63/2024: social insurance settles a funeral claim within 10 days
            form_model=FuneralAllowanceForm,
            documents=(
                DocumentRule(
                    component_code="09-HSB",
                    name="Tờ khai của thân nhân (mẫu 09-HSB)",
                    max_bytes=10 * 2**20,
                    media_types=PAPERS,
                ),
                DocumentRule(
                    component_code="TLKT", name="Trích lục khai tử (bản sao)", max_bytes=20 * 2**20, media_types=PAPERS
                ),
            ),
        ),
    ]


def by_code() -> dict[str, ProcedureSpec]:
    return {p.code: p for p in procedures()}
