"""Fixtures: the police simulator and the gateway, each a real aiohttp server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import load_config
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import Faults, SimulatorOptions
from gateway.store import SqliteStore
from plugins.police.demo import demo_dossiers
from plugins.police.simulator import create_simulator
from tests.builtin import builtin_registry

CONF = Path(__file__).resolve().parent / "conf"
SECRET = "test-police-shared-secret-0001"


@dataclass
class GatewayHarness:
    client: TestClient[Any, Any]
    app: web.Application
    police: TestServer
    keys: dict[str, str]

    def headers(self, who: str = "centre-hanoi", **extra: str) -> dict[str, str]:
        return {"X-Api-Key": self.keys[who], **extra}

    async def set_faults(self, **faults: Any) -> None:
        async with self.client.session.post(str(self.police.make_url("/_sim/faults")), json=faults) as r:
            assert r.status == 200

    async def sim_stats(self) -> dict[str, int]:
        async with self.client.session.get(str(self.police.make_url("/_sim/stats"))) as r:
            data: dict[str, int] = await r.json()
            return data


@pytest.fixture(scope="session")
def registry() -> Registry:
    return builtin_registry()


@pytest.fixture
def submission() -> Callable[[int], dict[str, Any]]:
    """A valid residence-registration submission (index picks a different citizen)."""

    def make(i: int = 0) -> dict[str, Any]:
        return demo_dossiers(42, i + 1)[i]

    return make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An SQLite store in a fresh file, for the store tests."""
    s = SqliteStore(tmp_path / "store.db", batch_max=8)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def gateway_conf() -> Path:
    """The configuration folder of the harness; a test module overrides it (e.g. with a copy to edit)."""
    return CONF


@pytest.fixture
def police_settings() -> dict[str, Any]:
    """Simulator-specific settings; a test module overrides this fixture to change the agency's behaviour."""
    return {}


@pytest.fixture
async def harness(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
    police_settings: dict[str, Any],
    gateway_conf: Path,
) -> AsyncIterator[GatewayHarness]:
    gw_port = unused_tcp_port_factory()
    police_app = create_simulator(
        SimulatorOptions(
            callback_url=f"http://127.0.0.1:{gw_port}/v1/callbacks/police",
            callback_api_key=DEMO_KEYS["police-callbacks"],
            secret=SECRET,
            processing_delay=0.05,
            faults=Faults(),
            settings=police_settings,
        )
    )
    police = TestServer(police_app, host="127.0.0.1")
    await police.start_server()
    monkeypatch.setenv("POLICE_URL", str(police.make_url("")).rstrip("/"))
    monkeypatch.setenv("POLICE_SECRET", SECRET)
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(gw_port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("LIENTHONG_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("LIENTHONG_DEADLINE_SWEEP", "0.2")
    config = await _load(registry, gateway_conf)
    app = create_app(config, registry)
    client = TestClient(TestServer(app, host="127.0.0.1", port=gw_port))
    await client.start_server()
    try:
        yield GatewayHarness(client, app, police, DEMO_KEYS)
    finally:
        await client.close()
        await police.close()


async def _load(registry: Registry, conf: Path = CONF) -> Any:
    import asyncio

    return await asyncio.to_thread(load_config, conf, registry)
