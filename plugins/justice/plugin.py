"""Hook implementations of the justice (civil status) plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, hookimpl
from plugins.justice.connector import JusticeConnector, JusticeSettings
from plugins.justice.demo import BINDING, demo_bundles, demo_dossiers
from plugins.justice.forms import (
    BIRTH_REGISTRATION,
    DEATH_REGISTRATION,
    BirthRegistrationForm,
    DeathRegistrationForm,
)
from plugins.justice.simulator import create_simulator

KIND = "justice"


@hookimpl
def register_agency_kinds() -> list[AgencyKind]:
    return [
        AgencyKind(
            name=KIND,
            title="Justice: civil status registration (hộ tịch)",
            protocol="rest",
            settings_model=JusticeSettings,
            connector=JusticeConnector,
            simulator=create_simulator,
            demo_dossiers=demo_dossiers,
            demo_bundles=demo_bundles,
            binding=BINDING,
        )
    ]


@hookimpl
def register_procedures() -> list[ProcedureSpec]:
    # Codes as in the national procedure database.
    return [
        ProcedureSpec(
            code=BIRTH_REGISTRATION,
            name="Đăng ký khai sinh (birth registration)",
            sector="Hộ tịch",
            agency_kind=KIND,
            processing_days=1,  # (uncertain) same day when received before 15:00; one working day to be safe
            form_model=BirthRegistrationForm,
            required_components=("TK-KS",),
        ),
        ProcedureSpec(
            code=DEATH_REGISTRATION,
            name="Đăng ký khai tử (death registration)",
            sector="Hộ tịch",
            agency_kind=KIND,
            processing_days=1,
            form_model=DeathRegistrationForm,
            required_components=("TK-KT",),
        ),
    ]
