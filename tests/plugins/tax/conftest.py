"""Fixtures: tax submissions and dossiers, the tax simulator on loopback, connectors pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from contracts import Dossier, DossierStatus
from contracts.calendar import VN_TZ
from gateway.connector import ConnectorContext
from gateway.connector_state import ConnectorState, MemoryConnectorState
from gateway.documents import DocumentReader
from gateway.sdk.simulation import Faults, SimulatorOptions
from plugins.tax.connector import TaxConnector, TaxSettings
from plugins.tax.demo import demo_dossiers
from plugins.tax.simulator import create_simulator

DID = uuid.UUID("4f1c2a9e-7b3d-4e5f-8a6b-1c2d3e4f5a6b")
HEX = DID.hex
CODE = "000.00.01.H26-261120-0007"
YY = f"{datetime.now(VN_TZ):%y}"  # the simulator numbers declarations and notices by year

ServerFactory = Callable[..., Awaitable[TestServer]]
ConnectorFactory = Callable[..., TaxConnector]


@pytest.fixture(scope="session")
def subs() -> list[dict[str, Any]]:
    """Demo submissions (built outside the event loop: the unit tables are read from disk once)."""
    return demo_dossiers(42, 12)


@pytest.fixture
def sub(subs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first demo submission: no income-tax exemption, so it gets two notices."""
    return next(s for s in subs if "pit_exemption" not in s["form"])


def make_dossier(submission: dict[str, Any], *, code: str = CODE, did: uuid.UUID = DID, **changes: Any) -> Dossier:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    return Dossier(
        id=did,
        code=code,
        procedure_code=submission["procedure_code"],
        procedure_name="Khai nghĩa vụ tài chính khi chuyển nhượng quyền sử dụng đất",
        receiving_unit="000.00.01.H26",
        client_id="centre-hanoi",
        agency="tax",
        endpoint="national",
        status=DossierStatus.RECEIVED,
        received_at=now,
        due_at=now + timedelta(days=7),
        updated_at=now,
        submission=submission,
        **changes,
    )


@pytest.fixture
def sim_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def sim(aiohttp_server: ServerFactory, sim_settings: dict[str, Any]) -> TestServer:
    options = SimulatorOptions(processing_delay=0.0, faults=Faults(), settings=sim_settings)
    return await aiohttp_server(create_simulator(options), host="127.0.0.1")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def connector(sim: TestServer, http: aiohttp.ClientSession) -> ConnectorFactory:
    """Connectors pointed at the simulator; pass `state` to share what they keep, as across a restart."""

    def make(
        *,
        timeout: float = 5.0,
        state: ConnectorState | None = None,
        documents: DocumentReader | None = None,
        **settings: Any,
    ) -> TaxConnector:
        conf = TaxSettings(url=str(sim.make_url("/ws")), timeout=timeout, **settings)
        ctx = ConnectorContext(
            agency="tax",
            endpoint="national",
            settings=conf,
            http=http,
            callback_url="http://127.0.0.1:9/",
            state=state or MemoryConnectorState(),
            documents=documents,
        )
        return TaxConnector(ctx)

    return make
