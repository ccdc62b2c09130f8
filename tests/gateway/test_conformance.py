"""The conformance kit, run over every built-in plugin, and shown to catch what it is for."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.plugin_manager import Registry
from gateway.sdk.conformance import Check, check_declaration, check_demo_dossiers, check_simulator, checks
from tests.builtin import builtin_registry

REGISTRY = builtin_registry()


@pytest.mark.parametrize("check", checks(registry=REGISTRY), ids=str)
async def test_every_built_in_plugin_conforms(check: Check) -> None:
    await check.run()


def test_the_kit_covers_each_kind_with_four_checks() -> None:
    kinds = sorted(REGISTRY.agency_kinds)
    assert kinds == ["justice", "land", "police", "social_insurance", "tax"]
    assert len(checks(registry=REGISTRY)) == 4 * len(kinds)
    with pytest.raises(LookupError, match="permits"):
        checks(kinds=["permits"], registry=REGISTRY)


def test_a_kind_without_simulator_or_with_a_bad_name_fails_its_declaration() -> None:
    police = REGISTRY.agency_kinds["police"]
    with pytest.raises(AssertionError, match="ship a simulator"):
        check_declaration(dataclasses.replace(police, simulator=None))
    with pytest.raises(AssertionError, match="lower_snake_case"):
        check_declaration(dataclasses.replace(police, name="Police-HN"))
    with pytest.raises(AssertionError, match="protocol 'grpc'"):
        check_declaration(dataclasses.replace(police, protocol="grpc"))


def test_demo_dossiers_that_miss_a_required_document_fail() -> None:
    police = REGISTRY.agency_kinds["police"]
    assert police.demo_dossiers is not None
    code = police.demo_dossiers(7, 1)[0]["procedure_code"]
    strict = REGISTRY.procedures[code].model_copy(update={"required_components": ("NOT_IN_ANY_DOSSIER",)})
    registry = Registry(
        agency_kinds=REGISTRY.agency_kinds,
        procedures={**REGISTRY.procedures, code: strict},
        plugins=REGISTRY.plugins,
        bundles=REGISTRY.bundles,
    )
    with pytest.raises(AssertionError, match="NOT_IN_ANY_DOSSIER"):
        check_demo_dossiers(registry, police)
    calls = iter(range(100))
    demo = police.demo_dossiers
    unstable = dataclasses.replace(police, demo_dossiers=lambda seed, n: demo(seed + next(calls), n))
    with pytest.raises(AssertionError, match="differ for the same seed"):
        check_demo_dossiers(REGISTRY, unstable)


async def test_a_simulator_that_ignores_its_fault_controls_fails() -> None:
    from aiohttp import web

    def deaf(options: object) -> web.Application:
        app = web.Application()

        async def ok(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_route("*", "/{tail:.*}", ok)
        return app

    police = REGISTRY.agency_kinds["police"]
    with pytest.raises(AssertionError, match="while down"):
        await check_simulator(dataclasses.replace(police, simulator=deaf))
