"""Every hook a plugin may implement, grouped by phase. Hooks are synchronous and register things.

Each `register_*` hook returns a list; pluggy gathers every plugin's lists. None of them is firstresult.
Implementations carry `@hookimpl`; unknown hook names stop start-up (`check_pending`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from contracts import ProcedureSpec
    from gateway.bundles import BundleSpec
    from gateway.connector import AgencyKind

PROJECT = "lienthong"
ENTRY_POINT_GROUP = "lienthong.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- start-up: what the plugin provides ------------------------------------------------------------


@hookspec
def register_agency_kinds() -> list[AgencyKind]:  # type: ignore[empty-body]
    """Agency kinds this plugin provides: settings model, connector factory, look-ups, simulator.

    Returns a list; kind names must be unique across plugins.
    """


@hookspec
def register_procedures() -> list[ProcedureSpec]:  # type: ignore[empty-body]
    """Procedures this plugin's agencies serve, with their form models.

    Returns a list; the operator's catalog in conf/ chooses which are offered and may override
    name, processing days and fees. Codes must be unique across plugins.
    """


@hookspec
def register_bundles() -> list[BundleSpec]:  # type: ignore[empty-body]
    """Inter-agency bundles (liên thông) defined in code. Returns a list.

    Operators declare most bundles in conf/bundles.toml; one there with the same id replaces this one.
    """
