"""Fixtures: the police simulator and the gateway, each a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
from gateway.store import PostgresStore, SqliteStore
from gateway.store.base import NewDossier
from plugins.police.demo import demo_dossiers
from plugins.police.simulator import create_simulator
from tests import postgres
from tests.builtin import builtin_registry
from tests.gateway.faults import store_faults  # noqa: F401 - a fixture for the tests of this folder

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

    async def restart(self, registry: Registry, conf: Path = CONF) -> None:
        """Stop the gateway and start it again on the same port, database and configuration."""
        port = self.client.port
        await self.client.close()
        self.app = create_app(await _load(registry, conf), registry)
        self.client = TestClient(TestServer(self.app, host="127.0.0.1", port=port))
        await self.client.start_server()

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
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own (random name), dropped after it."""
    with contextlib.ExitStack() as stack:
        yield await asyncio.to_thread(stack.enter_context, postgres.database())
        await asyncio.to_thread(stack.close)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh store for the store tests, on each backend: an SQLite file, and a PostgreSQL database of
    its own on the machine's server (PostgresStore runs SqliteStore's operations on its connection)."""
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "store.db", batch_max=8)
        await s.open()
        try:
            yield s
        finally:
            await s.close()
        return
    with contextlib.ExitStack() as stack:
        url = await asyncio.to_thread(stack.enter_context, postgres.database())
        pg = PostgresStore(url, batch_max=8)
        await pg.open()
        try:
            yield pg
        finally:
            await pg.close()
            await asyncio.to_thread(stack.close)


@pytest.fixture
def gateway_conf() -> Path:
    """The configuration folder of the harness; a test module overrides it (e.g. with a copy to edit)."""
    return CONF


@pytest.fixture
def police_settings() -> dict[str, Any]:
    """Simulator-specific settings; a test module overrides this fixture to change the agency's behaviour."""
    return {}


@pytest.fixture
def gateway_env() -> dict[str, str]:
    """Environment the harness's configuration reads, over its defaults; a test overrides this fixture
    (e.g. a time-scaled retry budget)."""
    return {}


@pytest.fixture
async def harness(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
    police_settings: dict[str, Any],
    gateway_conf: Path,
    gateway_env: dict[str, str],
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
    monkeypatch.setenv("LIENTHONG_DEADLINE_SWEEP", "0.2")
    # An agency that is back is found soon: the first probe after 0.2 s, then at most every second.
    monkeypatch.setenv("LIENTHONG_PROBE_AFTER", "0.2")
    monkeypatch.setenv("LIENTHONG_PROBE_MAX", "1")
    monkeypatch.setenv("LIENTHONG_HOLD_REFRESH", "0.2")
    for name, value in gateway_env.items():
        monkeypatch.setenv(name, value)
    config = await _load(registry, gateway_conf)
    app = create_app(config, registry)
    client = TestClient(TestServer(app, host="127.0.0.1", port=gw_port))
    await client.start_server()
    h = GatewayHarness(client, app, police, DEMO_KEYS)
    try:
        yield h
    finally:
        await h.client.close()
        await police.close()


async def _load(registry: Registry, conf: Path = CONF) -> Any:
    import asyncio

    return await asyncio.to_thread(load_config, conf, registry)


# -- new dossiers for the store tests ------------------------------------------------------------------

DAY = date(2026, 11, 20)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def subs() -> list[dict[str, Any]]:
    return demo_dossiers(42, 4)


@pytest.fixture
def new(subs: list[dict[str, Any]]) -> Callable[..., NewDossier]:
    def make(
        i: int = 0,
        *,
        unit: str = "000.00.01.H26",
        day: date = DAY,
        client: str = "centre-hanoi",
        agency: str = "police",
        key: str | None = None,
        body: bytes | None = None,
    ) -> NewDossier:
        sub = subs[i % len(subs)]
        return NewDossier(
            id=uuid.uuid4(),
            receiving_unit=unit,
            day=day,
            procedure_code=sub["procedure_code"],
            procedure_name="Đăng ký cư trú",
            client_id=client,
            agency=agency,
            endpoint="national",
            received_at=RECEIVED,
            due_at=RECEIVED + timedelta(days=5),
            submission=sub,
            idempotency_key=key,
            body_hash=hashlib.sha256(body if body is not None else str(i).encode()).hexdigest(),
        )

    return make
