"""Hook implementations of the social insurance (BHXH) plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, LookupSpec, hookimpl
from plugins.social_insurance.connector import LOOKUP, SocialInsuranceConnector, SocialInsuranceSettings
from plugins.social_insurance.demo import BINDING, demo_dossiers, number_example
from plugins.social_insurance.forms import (
    CHILD_HEALTH_CARD,
    FUNERAL_ALLOWANCE,
    ChildHealthCardForm,
    FuneralAllowanceForm,
    InsuranceNumberAnswer,
    InsuranceNumberQuery,
)
from plugins.social_insurance.simulator import create_simulator

KIND = "social_insurance"


@hookimpl
def register_agency_kinds() -> list[AgencyKind]:
    return [
        AgencyKind(
            name=KIND,
            title="Social insurance (BHXH): health-insurance cards and benefits",
            protocol="rest",
            settings_model=SocialInsuranceSettings,
            connector=SocialInsuranceConnector,
            lookups=(
                LookupSpec(
                    LOOKUP,
                    "Find a person's social insurance number (mã số BHXH) by personal id",
                    InsuranceNumberQuery,
                    InsuranceNumberAnswer,
                    example=number_example,
                ),
            ),
            simulator=create_simulator,
            demo_dossiers=demo_dossiers,
            binding=BINDING,
        )
    ]


@hookimpl
def register_procedures() -> list[ProcedureSpec]:
    # No required documents: in a liên thông bundle the single declaration travels with the first step.
    return [
        ProcedureSpec(
            code=CHILD_HEALTH_CARD,
            name="Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi (health-insurance card for a child under 6)",
            sector="Bảo hiểm y tế",
            agency_kind=KIND,
            processing_days=5,
            form_model=ChildHealthCardForm,
        ),
        ProcedureSpec(
            code=FUNERAL_ALLOWANCE,
            name="Giải quyết hưởng trợ cấp mai táng (funeral allowance)",
            sector="Bảo hiểm xã hội",
            agency_kind=KIND,
            processing_days=10,  # Decree 63/2024: social insurance settles a funeral claim within 10 days
            form_model=FuneralAllowanceForm,
        ),
    ]
