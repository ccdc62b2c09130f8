"""The route table: exact codes over patterns, the most specific pattern, by-province endpoints, start-up checks."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import DossierSubmission, Jurisdiction
from gateway.auth import Principal
from gateway.catalog import Catalog
from gateway.config import Config, load_config
from gateway.config.model import AgencyConf, RouteConf
from gateway.errors import ConfigError, NoRoute
from gateway.intake import Intake
from gateway.live import Live, LiveConf
from gateway.plugin_manager import Registry
from gateway.routing import RouteTable, Target
from plugins.police.demo import demo_dossiers
from tests.gateway.conftest import CONF

HANOI = Jurisdiction(province="01")
HCM = Jurisdiction(province="79")


@pytest.fixture(scope="module")
def demo(registry: Registry) -> Config:
    return load_config(CONF, registry)


def with_routes(config: Config, *routes: dict[str, Any], agencies: dict[str, str] | None = None) -> Config:
    """The demo config with other routes; `agencies` adds agency instances (name -> kind)."""
    extra = {n: AgencyConf(kind=k, endpoints={"main": {}}) for n, k in (agencies or {}).items()}
    return config.model_copy(
        update={"routes": [RouteConf(**r) for r in routes], "agencies": {**config.agencies, **extra}}
    )


def table(config: Config, registry: Registry, catalog: Catalog | None = None) -> RouteTable:
    return RouteTable.build(config, catalog or Catalog.build(config, registry))


def test_demo_routes(demo: Config, registry: Registry) -> None:
    t = table(demo, registry)
    assert t.resolve("1.004194", HANOI) == Target("police", "national")
    assert t.resolve("1.004203", HCM) == Target("police", "national")
    assert t.route_for("1.004203") == demo.routes[1]  # the exact route, though the pattern also matches
    assert t.route_for("2.000001") is None


def test_exact_code_beats_any_pattern(demo: Config, registry: Registry) -> None:
    config = with_routes(
        demo,
        {"procedure": "1.004194", "agency": "police", "endpoint": "exact"},
        {"procedure": "1.004*", "agency": "police", "endpoint": "pattern"},
    )
    t = table(config, registry)
    assert t.resolve("1.004194", HANOI) == Target("police", "exact")
    assert t.resolve("1.004203", HANOI) == Target("police", "pattern")


def test_longest_pattern_wins_whatever_the_order(demo: Config, registry: Registry) -> None:
    routes = [
        {"procedure": "*", "agency": "police", "endpoint": "any"},
        {"procedure": "1.004*", "agency": "police", "endpoint": "residence"},
        {"procedure": "1.0041?4", "agency": "police", "endpoint": "one-digit"},
        {"procedure": "1.*", "agency": "police", "endpoint": "ones"},
    ]
    for order in (routes, routes[::-1]):
        t = table(with_routes(demo, *order), registry)
        assert t.resolve("1.004203", HANOI).endpoint == "residence"
        assert t.resolve("1.004194", HANOI).endpoint == "one-digit"
        assert t.resolve("1.000001", HANOI).endpoint == "ones"
        assert t.resolve("2.000001", HANOI).endpoint == "any"


def test_by_province(demo: Config, registry: Registry) -> None:
    config = with_routes(demo, {"procedure": "*", "agency": "police", "by_province": {"01": "hanoi", "79": "hcm"}})
    t = table(config, registry)
    assert t.resolve("1.004194", HANOI) == Target("police", "hanoi")
    assert t.resolve("1.004194", HCM) == Target("police", "hcm")
    with pytest.raises(NoRoute) as err:
        t.resolve("1.004194", Jurisdiction(province="48"))
    assert err.value.extra == {"province": "48"}
    assert "no police office is configured for province 48" in err.value.detail


def test_no_route_at_all(demo: Config, registry: Registry) -> None:
    t = RouteTable(routes=(), agency_kinds={"police": "police"})
    with pytest.raises(NoRoute, match=r"no agency is configured for procedure 1\.004194"):
        t.resolve("1.004194", HANOI)


async def test_intake_reports_no_route_under_the_province(demo: Config, registry: Registry) -> None:
    config = with_routes(demo, {"procedure": "*", "agency": "police", "by_province": {"79": "hcm"}})
    intake = Intake(None, Live(LiveConf.build(config, registry)), 1 << 20)  # type: ignore[arg-type]
    raw = demo_dossiers(42, 1)[0]
    assert DossierSubmission.model_validate(raw).jurisdiction.province == "01"
    principal = Principal("centre-hanoi", config.clients["centre-hanoi"])
    with pytest.raises(NoRoute) as err:
        await intake.submit(principal, raw, b"{}", None)
    assert err.value.status == 422
    assert [(e.path, e.code) for e in err.value.errors] == [("jurisdiction.province", "no_route")]


# -- checks at start-up ------------------------------------------------------------------------------


def test_offered_procedure_without_route(demo: Config, registry: Registry) -> None:
    config = with_routes(demo, {"procedure": "1.004203", "agency": "police", "endpoint": "national"})
    with pytest.raises(ConfigError) as err:
        table(config, registry)
    assert err.value.problems == [("routes.toml", "", "procedure 1.004194 is offered but no route serves it")]


def test_route_to_an_agency_of_another_kind(demo: Config, registry: Registry) -> None:
    config = with_routes(
        demo,
        {"procedure": "1.0041*", "agency": "police", "endpoint": "national"},
        {"procedure": "1.004203", "agency": "land", "endpoint": "main"},
        agencies={"land": "land"},
    )
    with pytest.raises(ConfigError) as err:
        table(config, registry)
    assert err.value.problems == [
        ("routes.toml", "", "procedure 1.004203 needs a 'police' agency, but its route goes to 'land' (land)")
    ]


def test_province_bound_procedure_needs_by_province(demo: Config, registry: Registry) -> None:
    base = Catalog.build(demo, registry)
    bound = base.procedures["1.004194"].model_copy(update={"jurisdiction": "province"})
    catalog = Catalog({**base.procedures, "1.004194": bound})
    with pytest.raises(ConfigError) as err:
        table(demo, registry, catalog)
    assert err.value.problems == [
        ("routes.toml", "", "procedure 1.004194 is bound to the province: route it by_province")
    ]
    by_province = with_routes(demo, {"procedure": "*", "agency": "police", "by_province": {"01": "national"}})
    assert table(by_province, registry, catalog).resolve("1.004194", HANOI) == Target("police", "national")


def test_route_names_one_target() -> None:
    with pytest.raises(ValueError, match="either one endpoint or by_province"):
        RouteConf(procedure="*", agency="police", endpoint="a", by_province={"01": "b"})
    with pytest.raises(ValueError, match="either one endpoint or by_province"):
        RouteConf(procedure="*", agency="police")
