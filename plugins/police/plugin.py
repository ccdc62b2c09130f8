"""Hook implementations of the police plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, LookupSpec, hookimpl
from plugins.police.connector import PoliceConnector
from plugins.police.demo import BINDING, demo_dossiers, identity_example
from plugins.police.forms import IdentityAnswer, IdentityQuery, ResidenceRegistrationForm, ResidenceRemovalForm
from plugins.police.settings import REMOVAL_PROCEDURE, PoliceSettings
from plugins.police.simulator import create_simulator

KIND = "police"


@hookimpl
def register_agency_kinds() -> list[AgencyKind]:
    return [
        AgencyKind(
            name=KIND,
            title="Police: residence and population data (VNeID)",
            protocol="rest",
            settings_model=PoliceSettings,
            connector=PoliceConnector,
            lookups=(
                LookupSpec(
                    "identity-verification",
                    "Check a personal id, name and date of birth against the population database",
                    IdentityQuery,
                    IdentityAnswer,
                    example=identity_example,
                ),
            ),
            simulator=create_simulator,
            demo_dossiers=demo_dossiers,
            binding=BINDING,
        )
    ]


@hookimpl
def register_procedures() -> list[ProcedureSpec]:
    # Codes as in the national procedure database; operators may rename them in conf/procedures.toml.
    return [
        ProcedureSpec(
            code="1.004194",
            name="Đăng ký thường trú (permanent residence registration)",
            sector="Đăng ký, quản lý cư trú",
            agency_kind=KIND,
            processing_days=7,
            form_model=ResidenceRegistrationForm,
            required_components=("TK01",),
        ),
        ProcedureSpec(
            code=REMOVAL_PROCEDURE,
            name="Xóa đăng ký thường trú (removal of permanent residence)",
            sector="Đăng ký, quản lý cư trú",
            agency_kind=KIND,
            processing_days=3,
            form_model=ResidenceRemovalForm,
        ),
        ProcedureSpec(
            code="1.004203",
            name="Đăng ký tạm trú (temporary residence registration)",
            sector="Đăng ký, quản lý cư trú",
            agency_kind=KIND,
            processing_days=3,
            form_model=ResidenceRegistrationForm,
            required_components=("TK01",),
        ),
    ]
