"""Hook implementations of the social insurance (BHXH) plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, LookupSpec, hookimpl
from plugins.social_insurance.connector import LOOKUP, SocialInsuranceConnector, SocialInsuranceSettings
from plugins.social_insurance.demo import BINDING, demo_dossiers, number_example
from plugins.social_insurance.forms import InsuranceNumberAnswer, InsuranceNumberQuery
from plugins.social_insurance.procedures import KIND, procedures
from plugins.social_insurance.simulator import create_simulator


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
    return procedures()
