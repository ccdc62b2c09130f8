"""The Decree 63 bundles' stack for tests: the gateway in-process on tests/plugins/justice/conf with the
justice, police and social insurance simulators beside it on loopback; bundle bodies built from the
plugins' demo data."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import Config, load_config
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sdk.simulation import STATS, SimulatorOptions
from plugins.justice.demo import birth_bundle as demo_birth_bundle
from plugins.justice.demo import death_bundle as demo_death_bundle
from plugins.justice.demo import demo_dossiers as justice_dossiers
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.justice.simulator import create_simulator as justice_simulator
from plugins.police.simulator import create_simulator as police_simulator
from plugins.social_insurance.simulator import create_simulator as bhxh_simulator
from tests.builtin import builtin_registry

CONF = Path(__file__).resolve().parent / "conf"
AGENCIES = ("justice", "police", "social_insurance")
# Plaintext of the callback keys hashed in conf/clients.toml.
CALLBACK_KEYS = {
    "police": DEMO_KEYS["police-callbacks"],
    "justice": "demo-justice-callback-key-Nb2x",
    "social_insurance": "demo-bhxh-callback-key-Rt6w",
}
SECRETS = {
    "police": "gateway-test-police-secret-0001",
    "justice": "gateway-test-justice-secret-001",
    "social_insurance": "gateway-test-bhxh-secret-00001",
}
CENTRE = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
FACTORIES: dict[str, Callable[[SimulatorOptions], web.Application]] = {
    "police": police_simulator,
    "justice": justice_simulator,
    "social_insurance": bhxh_simulator,
}
Client = TestClient[Any, Any]
ServerFactory = Callable[..., Awaitable[TestServer]]


class Stack:
    def __init__(self, client: Client, sims: dict[str, TestServer]) -> None:
        self.client = client
        self.sims = sims

    async def call(
        self, method: str, path: str, *, json: Any = None, status: int = 200, who: str = "centre-hanoi"
    ) -> Any:
        headers = {"X-Api-Key": DEMO_KEYS[who]}
        async with self.client.request(method, path, json=json, headers=headers) as r:
            body = await r.json()
            assert r.status == status, body
        return body

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.call("POST", "/v1/bundles", json=body, status=202)
        return created

    async def bundle(self, bid: str) -> dict[str, Any]:
        view: dict[str, Any] = await self.call("GET", f"/v1/bundles/{bid}")
        return view

    async def wait_bundle(
        self, bid: str, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The bundle once `until` holds (by default: once it no longer runs by itself), or at the timeout."""
        done = until or (lambda v: v["state"] != "in_progress")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.bundle(bid)
            if done(view) or asyncio.get_running_loop().time() > deadline:
                return view
            await asyncio.sleep(0.05)

    async def run(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.wait_bundle((await self.submit(body))["id"])

    async def download(self, dossier_id: str, index: int) -> tuple[bytes, str]:
        async with self.client.get(f"/v1/dossiers/{dossier_id}/results/{index}", headers=CENTRE) as r:
            assert r.status == 200, await r.text()
            return await r.read(), r.content_type

    def stats(self, agency: str) -> dict[str, int]:
        return dict(self.sims[agency].app[STATS])

    async def faults(self, agency: str, **faults: Any) -> None:
        async with self.client.session.post(str(self.sims[agency].make_url("/_sim/faults")), json=faults) as r:
            assert r.status == 200, await r.text()


@contextlib.asynccontextmanager
async def gateway_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_server: ServerFactory,
    port: int,
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    adjust: Callable[[Config], None] | None = None,
    seeds: dict[str, int] | None = None,
) -> AsyncIterator[Stack]:
    """Three simulators (with these protocol settings) and the gateway; `adjust` may change the config.

    Every simulator draws its register from the same synthetic population unless `seeds` says otherwise.
    """
    sims = {}
    for agency in AGENCIES:
        options = SimulatorOptions(
            callback_api_key=CALLBACK_KEYS[agency],
            secret=SECRETS[agency],
            processing_delay=0.05,
            settings=(settings or {}).get(agency, {}),
            seed=(seeds or {}).get(agency, 7),
        )
        sims[agency] = await aiohttp_server(FACTORIES[agency](options))
        monkeypatch.setenv(f"{agency.upper()}_URL", str(sims[agency].make_url("")).rstrip("/"))
        monkeypatch.setenv(f"{agency.upper()}_SECRET", SECRETS[agency])
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("LIENTHONG_PROBE_AFTER", "0.2")  # an agency back is found soon
    monkeypatch.setenv("LIENTHONG_PROBE_MAX", "1")
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    registry = await asyncio.to_thread(builtin_registry)
    config = await asyncio.to_thread(load_config, CONF, registry)
    if adjust is not None:
        adjust(config)
    client = TestClient(TestServer(create_app(config, registry), host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield Stack(client, sims)
    finally:
        await client.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def birth_bundle(i: int = 0) -> dict[str, Any]:
    """A birth, the child's permanent residence with its mother, and the child's health-insurance card."""
    birth = [d for d in justice_dossiers(11, 40) if d["procedure_code"] == BIRTH_REGISTRATION][i]
    return demo_birth_bundle(birth)


def death_bundle(steps: list[str] | None = None) -> dict[str, Any]:
    """A death, the removal of the deceased's permanent residence, and the funeral allowance; or `steps` of them."""
    death = next(d for d in justice_dossiers(11, 40) if d["procedure_code"] == DEATH_REGISTRATION)
    return demo_death_bundle(death, steps)
