"""Hook implementations of the police plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, LookupSpec, hookimpl
from plugins.police.connector import PoliceConnector
from plugins.police.demo import BINDING, demo_dossiers, identity_example
from plugins.police.forms import IdentityAnswer, IdentityQuery
from plugins.police.procedures import KIND, procedures
from plugins.police.settings import PoliceSettings
from plugins.police.simulator import create_simulator


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
    return procedures()
