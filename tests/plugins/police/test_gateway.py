"""The gateway in-process on tests/plugins/police/conf with the police simulator beside it: the endpoint's
`removal_procedures`, not a code in the plugin, decides which dossiers go out as removals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts import ProcedureSpec
from gateway.app import create_app
from gateway.config import load_config
from gateway.hooks import hookimpl
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import SimulatorOptions
from plugins.police import plugin as police_plugin
from plugins.police.demo import demo_dossiers
from plugins.police.settings import REMOVAL_PROCEDURE
from plugins.police.simulator import ACCEPTED, create_simulator
from tests.builtin import builtin_registry
from tests.plugins.police.test_removal import PERSON, removal_submission

CONF = Path(__file__).resolve().parent / "conf"
REMAPPED = "1.004299"  # the stand-in national code for removal in conf/agencies.toml and conf/procedures.toml
SECRET = "gateway-test-police-secret-0001"
CENTRE = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
Client = TestClient[Any, Any]


class SiteProcedures:
    """A deployment's own plugin: the police plugin's removal procedure under the code used here."""

    @hookimpl
    def register_procedures(self) -> list[ProcedureSpec]:
        removal = next(p for p in police_plugin.register_procedures() if p.code == REMOVAL_PROCEDURE)
        return [removal.model_copy(update={"code": REMAPPED})]


@pytest.fixture
async def gateway(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    unused_tcp_port: int,
) -> AsyncIterator[tuple[Client, TestServer]]:
    options = SimulatorOptions(callback_api_key=DEMO_KEYS["police-callbacks"], secret=SECRET, processing_delay=0.05)
    police = await aiohttp_server(create_simulator(options))
    monkeypatch.setenv("POLICE_URL", str(police.make_url("")).rstrip("/"))
    monkeypatch.setenv("POLICE_SECRET", SECRET)
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(unused_tcp_port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("LIENTHONG_PROBE_AFTER", "0.2")  # an agency back is found soon
    monkeypatch.setenv("LIENTHONG_PROBE_MAX", "1")
    registry = await asyncio.to_thread(builtin_registry, {"site": SiteProcedures()})
    config = await asyncio.to_thread(load_config, CONF, registry)
    client = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=unused_tcp_port))
    await client.start_server()
    try:
        yield client, police
    finally:
        await client.close()


async def finished(client: Client, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Submit a dossier and return it once finished (status 9), or as it stands at the timeout."""
    resp = await client.post("/v1/dossiers", json=body, headers=CENTRE)
    assert resp.status == 202, await resp.text()
    did = (await resp.json())["id"]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        dossier: dict[str, Any] = await (await client.get(f"/v1/dossiers/{did}", headers=CENTRE)).json()
        if dossier["status"] == 9 or asyncio.get_running_loop().time() > deadline:
            return dossier
        await asyncio.sleep(0.05)


async def test_removal_under_the_code_the_configuration_names(gateway: tuple[Client, TestServer]) -> None:
    client, police = gateway
    form = {"person": PERSON, "date_of_death": "2026-11-01", "death_register_number": "KT-2026-000123"}
    dossier = await finished(client, {**removal_submission(form), "procedure_code": REMAPPED})
    assert dossier["status"] == 9, dossier
    assert dossier["results"][0]["name"] == "Thông báo kết quả xóa đăng ký thường trú"
    [taken] = police.app[ACCEPTED].values()  # only the removal path keeps the death extract
    assert (taken["maTTHC"], taken["soDinhDanh"], taken["soTrichLucKhaiTu"]) == (
        REMAPPED,
        PERSON["personal_id"],
        "KT-2026-000123",
    )


async def test_registration_is_still_a_registration(gateway: tuple[Client, TestServer]) -> None:
    client, police = gateway
    dossier = await finished(client, {**demo_dossiers(42, 1)[0], "procedure_code": "1.004194"})
    assert dossier["status"] == 9, dossier
    assert dossier["results"][0]["name"] == "Thông báo kết quả đăng ký thường trú"
    [taken] = police.app[ACCEPTED].values()
    assert taken["maTTHC"] == "1.004194"
    assert "soTrichLucKhaiTu" not in taken
