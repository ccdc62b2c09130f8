"""The behavioural conformance kit, run over every built-in plugin against its own simulator."""

from __future__ import annotations

import pytest

from gateway.sdk.behaviour import behaviour_checks
from gateway.sdk.conformance import Check
from tests.builtin import builtin_registry

REGISTRY = builtin_registry()


@pytest.mark.parametrize("check", behaviour_checks(registry=REGISTRY), ids=str)
async def test_every_built_in_plugin_behaves(check: Check) -> None:
    await check.run()
