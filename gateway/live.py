"""The configuration a running gateway may swap without a restart: clients, procedures, routes, bundles,
the working-day calendar and maintenance windows.

`lienthong serve` reloads on SIGHUP, operators on `POST /v1/admin/reload`. The new folder is loaded
and checked off the event loop; if anything is wrong, nothing changes. Otherwise the catalog, route
table, keys and window schedule are built beside the running ones and replace them in one assignment:
a request sees the old set or the new one, never half of each. Agencies, endpoints and gateway settings
hold open connections, pollers and the store: changing them needs a restart, and a reload that finds
them changed is refused, naming what changed. Maintenance windows live in a file of their own
(`maintenance.toml`) for that reason: they change often, and a window added must not need a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.calendar import WorkCalendar
from gateway.auth import Authenticator
from gateway.catalog import Catalog
from gateway.conf_diff import Change, config_diff
from gateway.config import Config, load_config
from gateway.config.model import ClientConf
from gateway.maintenance import Schedule
from gateway.plugin_manager import Registry
from gateway.routing import RouteTable


@dataclass(frozen=True)
class LiveConf:
    config: Config
    catalog: Catalog
    routes: RouteTable
    auth: Authenticator
    calendar: WorkCalendar  # the national calendar with the operator's days (calendar.toml)
    schedule: Schedule

    @classmethod
    def build(cls, config: Config, registry: Registry) -> LiveConf:
        catalog = Catalog.build(config, registry)
        calendar = WorkCalendar.of(
            (d.date for d in config.calendar.day_off), (d.date for d in config.calendar.working_day)
        )
        auth = Authenticator(config.clients, config.issuers)
        return cls(config, catalog, RouteTable.build(config, catalog), auth, calendar, Schedule.build(config.windows))


class Live:
    """The holder the app keeps: `current` is replaced whole, never edited; `on_swap` listeners are told."""

    def __init__(self, conf: LiveConf) -> None:
        self.current = conf
        self.on_swap: list[Callable[[], None]] = []


class RestartNeeded(Exception):
    def __init__(self, parts: list[str]) -> None:
        self.parts = parts
        super().__init__(f"{', '.join(parts)} changed: restart the gateway to apply them (nothing was changed)")


def restart_needed(old: Config, new: Config) -> list[str]:
    """What differs outside what a reload may change."""
    parts = []
    if old.gateway != new.gateway:
        parts.append("gateway.toml")
    if old.agencies != new.agencies or old.endpoint_settings != new.endpoint_settings:
        parts.append("agencies.toml (agencies and endpoints)")
    return parts


async def preview(live: Live, registry: Registry) -> tuple[list[Change], list[str]]:
    """What a reload would change, item by item, and what of it needs a restart; nothing is swapped.
    ConfigError when the folder does not load."""
    old = live.current
    config = await asyncio.to_thread(load_config, old.config.base_dir, registry)
    catalog = await asyncio.to_thread(Catalog.build, config, registry)
    return config_diff(old.config, config, old.catalog, catalog), restart_needed(old.config, config)


async def reload(live: Live, registry: Registry) -> dict[str, Any]:
    """Load the folder the running configuration came from and swap it in; ConfigError or RestartNeeded
    leave the running configuration as it was. Returns what changed (`diff`: item by item)."""
    old = live.current
    config = await asyncio.to_thread(load_config, old.config.base_dir, registry)
    parts = restart_needed(old.config, config)
    if parts:
        raise RestartNeeded(parts)
    fresh = await asyncio.to_thread(LiveConf.build, config, registry)
    diff = [c.line() for c in config_diff(old.config, config, old.catalog, fresh.catalog)]
    live.current = fresh
    for listener in live.on_swap:
        listener()
    before, after = old.config.clients, config.clients
    changed = sorted(c for c in after if c in before and before[c] != after[c])
    # Keys, certificates and token subjects rotated: the audit log records who may now call as whom.
    rotated = sorted(c for c in changed if _credentials(before[c]) != _credentials(after[c]))
    return {
        "clients": _diff(set(before), set(after)) | {"changed": changed},
        "credentials": {"changed": rotated},
        "issuers": _diff(set(old.config.issuers), set(config.issuers))
        | {
            "changed": sorted(
                i for i in config.issuers if old.config.issuers.get(i, config.issuers[i]) != config.issuers[i]
            )
        },
        "procedures": _diff(set(old.catalog.procedures), set(fresh.catalog.procedures)),
        "bundles": _diff(set(old.config.bundles), set(config.bundles)),
        "routes": {"before": len(old.config.routes), "after": len(config.routes)},
        "calendar": {
            "days_off": _diff(_iso(old.calendar.days_off), _iso(fresh.calendar.days_off)),
            "working_days": _diff(_iso(old.calendar.working_days), _iso(fresh.calendar.working_days)),
        },
        "maintenance_windows": {"before": len(old.config.windows), "after": len(config.windows)},
        "diff": diff,
    }


def _credentials(c: ClientConf) -> tuple[object, ...]:
    return (c.key_hashes(), c.certificate, c.require_certificate, c.token_issuers, c.token_subject)


def _diff(before: set[str], after: set[str]) -> dict[str, list[str]]:
    return {"added": sorted(after - before), "removed": sorted(before - after)}


def _iso(days: frozenset[Any]) -> set[str]:
    return {d.isoformat() for d in days}
