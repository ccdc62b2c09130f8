"""Route table: procedure (code or pattern) + jurisdiction -> agency endpoint. Built whole, swapped whole."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from contracts import Jurisdiction
from gateway.catalog import Catalog
from gateway.config.model import Config, RouteConf
from gateway.errors import ConfigError, NoRoute


@dataclass(frozen=True, slots=True)
class Target:
    agency: str
    endpoint: str


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[RouteConf, ...]
    agency_kinds: dict[str, str]  # agency instance -> kind

    @classmethod
    def build(cls, config: Config, catalog: Catalog) -> RouteTable:
        table = cls(tuple(config.routes), {n: a.kind for n, a in config.agencies.items()})
        problems: list[tuple[str, str, str]] = []
        for code, spec in catalog.procedures.items():
            route = table.route_for(code)
            if route is None:
                problems.append(("routes.toml", "", f"procedure {code} is offered but no route serves it"))
            elif table.agency_kinds[route.agency] != spec.agency_kind:
                problems.append(
                    (
                        "routes.toml",
                        "",
                        f"procedure {code} needs a {spec.agency_kind!r} agency, "
                        f"but its route goes to {route.agency!r} ({table.agency_kinds[route.agency]})",
                    )
                )
            elif spec.jurisdiction == "province" and route.by_province is None:
                problems.append(("routes.toml", "", f"procedure {code} is bound to the province: route it by_province"))
        if problems:
            raise ConfigError(problems)
        return table

    def route_for(self, procedure_code: str) -> RouteConf | None:
        """Exact codes win over patterns; among patterns, the longest (most specific) wins."""
        exact = [r for r in self.routes if r.procedure == procedure_code]
        if exact:
            return exact[0]
        patterns = [r for r in self.routes if fnmatchcase(procedure_code, r.procedure)]
        return max(patterns, key=lambda r: len(r.procedure.rstrip("*?")), default=None)

    def resolve(self, procedure_code: str, jurisdiction: Jurisdiction) -> Target:
        route = self.route_for(procedure_code)
        if route is None:
            raise NoRoute(f"no agency is configured for procedure {procedure_code}")
        if route.endpoint is not None:
            return Target(route.agency, route.endpoint)
        endpoint = (route.by_province or {}).get(jurisdiction.province)
        if endpoint is None:
            raise NoRoute(
                f"procedure {procedure_code} is handled by the office of the province where the case belongs, "
                f"and no {route.agency} office is configured for province {jurisdiction.province}",
                extra={"province": jurisdiction.province},
            )
        return Target(route.agency, endpoint)
