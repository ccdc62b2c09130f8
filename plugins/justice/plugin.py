"""Hook implementations of the justice (civil status) plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, hookimpl
from plugins.justice.connector import JusticeConnector, JusticeSettings
from plugins.justice.demo import BINDING, demo_bundles, demo_dossiers
from plugins.justice.procedures import KIND, procedures
from plugins.justice.simulator import create_simulator


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
    return procedures()
