"""The pytest plugin for plugin authors, loaded by pytest wherever the gateway is installed (entry point
`pytest11`). Name the kind under test in the plugin's pytest settings, and use the fixtures:

    [tool.pytest.ini_options]
    asyncio_mode = "auto"          # pytest-asyncio, or pytest-aiohttp
    lienthong_kind = "permits"

    async def test_submit(lienthong_connector, lienthong_dossier):
        receipt = await lienthong_connector.submit(lienthong_dossier(), delivery())

Fixtures (all function-scoped but the registry):
  lienthong_registry   every installed plugin's kinds and procedures (gateway.plugin_manager.Registry)
  lienthong_kind       the AgencyKind under test (ini `lienthong_kind`, or override this fixture)
  lienthong_simulator  its simulator on loopback, callbacks caught (gateway.sdk.testing.Simulator)
  lienthong_connector  its connector bound to that simulator, started and closed
  lienthong_dossier    a factory: lienthong_dossier(procedure_code=None, form=None) -> canonical Dossier
  lienthong_gateway    the simulator and a gateway in this process on a minimal configuration
                       (gateway.sdk.testing.Gateway: submit, dossier, wait_status)

Nothing of the gateway is imported until a fixture is used: the plugin costs nothing to other suites.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from contracts import Dossier
    from gateway.connector import AgencyKind, Connector
    from gateway.plugin_manager import Registry
    from gateway.sdk.testing import Gateway, Simulator

try:  # async fixtures that work in pytest-asyncio's strict mode as in its auto mode
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - pytest-aiohttp or anyio take plain async fixtures
    _fixture = pytest.fixture

F = TypeVar("F", bound=Callable[..., Any])


def async_fixture(fn: F) -> F:
    return cast(F, _fixture(fn))


KIND_OPTION = "lienthong_kind"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(KIND_OPTION, "the agency kind the lienthong_* fixtures test (AgencyKind.name)", default="")


@pytest.fixture(scope="session")
def lienthong_registry() -> Registry:
    from gateway.plugin_manager import load_registry

    return load_registry()


@pytest.fixture
def lienthong_kind(request: pytest.FixtureRequest, lienthong_registry: Registry) -> AgencyKind:
    name = str(request.config.getini(KIND_OPTION) or "")
    if not name:
        raise pytest.UsageError(
            f'set {KIND_OPTION} = "<your kind>" in [tool.pytest.ini_options], or override the lienthong_kind fixture'
        )
    kind = lienthong_registry.agency_kinds.get(name)
    if kind is None:
        raise pytest.UsageError(
            f"{KIND_OPTION} = {name!r}, but no installed plugin registers it (registered: "
            f"{sorted(lienthong_registry.agency_kinds)}); is the plugin installed (pip install -e .)?"
        )
    return kind


@async_fixture
async def lienthong_simulator(lienthong_kind: AgencyKind, tmp_path: Path) -> AsyncIterator[Simulator]:
    from gateway.sdk.testing import running_simulator

    async with running_simulator(lienthong_kind, tmp_path) as sim:
        yield sim


@async_fixture
async def lienthong_connector(lienthong_kind: AgencyKind, lienthong_simulator: Simulator) -> AsyncIterator[Connector]:
    from gateway.sdk.testing import bound_connector

    async with bound_connector(lienthong_kind, lienthong_simulator) as connector:
        yield connector


@pytest.fixture
def lienthong_dossier(lienthong_registry: Registry, lienthong_kind: AgencyKind) -> Callable[..., Dossier]:
    from gateway.sdk.testing import make_dossier

    mine = sorted(c for c, p in lienthong_registry.procedures.items() if p.agency_kind == lienthong_kind.name)

    def make(procedure_code: str | None = None, form: Any = None, **kwargs: Any) -> Dossier:
        if procedure_code is None and not mine:
            raise LookupError(f"no procedure names kind {lienthong_kind.name!r}")
        return make_dossier(lienthong_registry, procedure_code or mine[0], form, **kwargs)

    return make


@async_fixture
async def lienthong_gateway(
    lienthong_registry: Registry, lienthong_kind: AgencyKind, tmp_path: Path
) -> AsyncIterator[Gateway]:
    from gateway.sdk.testing import running_gateway

    async with running_gateway(lienthong_registry, lienthong_kind, tmp_path) as gateway:
        yield gateway
