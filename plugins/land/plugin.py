"""Hook implementations of the land plugin."""

from __future__ import annotations

from contracts import ProcedureSpec
from gateway.sdk import AgencyKind, hookimpl
from plugins.land.connector import LandConnector
from plugins.land.demo import BINDING, demo_bundles, demo_dossiers
from plugins.land.procedures import KIND, procedures
from plugins.land.settings import LandSettings
from plugins.land.simulator import create_simulator


@hookimpl
def register_agency_kinds() -> list[AgencyKind]:
    return [
        AgencyKind(
            name=KIND,
            title="Land registry: provincial land registration offices (VBDLIS/ILIS), XML files over SFTP",
            protocol="file",
            settings_model=LandSettings,
            connector=LandConnector,
            simulator=create_simulator,
            polls=True,  # offices answer with files, never with callbacks
            demo_dossiers=demo_dossiers,
            demo_bundles=demo_bundles,
            binding=BINDING,
        )
    ]


@hookimpl
def register_procedures() -> list[ProcedureSpec]:
    return procedures()
