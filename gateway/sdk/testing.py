"""What a plugin's tests need, shipped with the gateway: a kind's simulator running on loopback, a
connector bound to it, canonical dossiers made from a procedure's form, and the agency's callbacks caught
as the gateway would receive them. The pytest plugin (`gateway.sdk.pytest_plugin`) wraps these in
fixtures; they work outside pytest too.

    async with running_simulator(kind, tmp_path) as sim, bound_connector(kind, sim) as connector:
        receipt = await connector.submit(make_dossier(registry, "1.009999"), delivery("k-1"))
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel

from contracts import Dossier, DossierStatus, DossierSubmission, ProcedureSpec
from contracts.samples import pdf_attachment
from gateway.connector import AgencyKind, Connector, ConnectorContext, Delivery
from gateway.connector_state import ConnectorState, MemoryConnectorState
from gateway.plugin_manager import Registry
from gateway.sandbox.launcher import free_port
from gateway.sdk.simulation import Faults, SimulatorOptions
from gateway.simulated import RunningSimulator, bind_endpoint, simulator_settings

TEST_UNIT = "000.00.01.H26"  # the receiving unit of dossiers made here (a Hà Nội centre)
_codes = itertools.count(1)


# -- dossiers ----------------------------------------------------------------------------------------


def make_submission(
    registry: Registry,
    procedure_code: str,
    form: Mapping[str, Any] | BaseModel | None = None,
    *,
    seed: int = 0,
    **fields: Any,
) -> DossierSubmission:
    """A valid submission for a procedure: its kind's demo dossier for that procedure (the `seed`-th),
    with `form` in place of the demo's (checked against the procedure's form model) and every document
    the procedure requires attached. `fields` replace top-level fields (applicant, jurisdiction, ...)."""
    spec = _spec(registry, procedure_code)
    kind = registry.agency_kinds[spec.agency_kind]
    if kind.demo_dossiers is None:
        raise LookupError(f"kind {kind.name!r} offers no demo_dossiers to make a submission from")
    pool = kind.demo_dossiers(seed, 24)
    base = next((d for d in pool if d["procedure_code"] == spec.code), None)
    if base is None and form is None:
        raise LookupError(f"no demo dossier of {kind.name!r} is for procedure {spec.code}: give its form")
    raw: dict[str, Any] = dict(base or pool[0])
    raw["procedure_code"] = spec.code
    if form is not None:
        model = form if isinstance(form, BaseModel) else spec.form_model.model_validate(dict(form))
        raw["form"] = model.model_dump(mode="json", exclude_none=True)
    raw.update(fields)
    have = {a["component_code"] for a in raw.get("attachments", [])}
    raw["attachments"] = [*raw.get("attachments", [])] + [
        pdf_attachment(code, f"Giấy tờ {code}", spec.name) for code in spec.required_components if code not in have
    ]
    submission = DossierSubmission.model_validate(raw)
    spec.form_model.model_validate(submission.form)  # a form the procedure would refuse is the caller's mistake
    return submission


def make_dossier(
    registry: Registry,
    procedure_code: str,
    form: Mapping[str, Any] | BaseModel | None = None,
    *,
    agency: str | None = None,
    endpoint: str = "main",
    status: DossierStatus = DossierStatus.RECEIVED,
    submission: DossierSubmission | None = None,
    seed: int = 0,
) -> Dossier:
    """A dossier as the gateway holds it when the dispatcher hands it to a connector: accepted at a Hà Nội
    centre today, routed to `agency` (the kind's name by default), with a fresh id and code."""
    spec = _spec(registry, procedure_code)
    sub = submission or make_submission(registry, procedure_code, form, seed=seed)
    now = datetime.now(UTC)
    return Dossier(
        id=uuid.uuid4(),
        code=f"{TEST_UNIT}-{now:%y%m%d}-{next(_codes) % 10_000:04d}",
        procedure_code=spec.code,
        procedure_name=spec.name,
        receiving_unit=TEST_UNIT,
        client_id="centre-test",
        agency=agency or spec.agency_kind,
        endpoint=endpoint,
        status=status,
        received_at=now,
        due_at=now + timedelta(days=max(spec.processing_days, 1)),
        updated_at=now,
        submission=sub,
    )


def dossier_from_demo(registry: Registry, kind: str, index: int = 0, *, seed: int = 7) -> Dossier:
    """The kind's `index`-th demo dossier, as the gateway would hand it to the connector."""
    make = registry.agency_kinds[kind].demo_dossiers
    if make is None:
        raise LookupError(f"kind {kind!r} offers no demo_dossiers")
    raw = make(seed, index + 1)[index]
    sub = DossierSubmission.model_validate(raw)
    return make_dossier(registry, sub.procedure_code, submission=sub)


def delivery(key: str | None = None, attempt: int = 1, step: str = "submit", **inputs: Any) -> Delivery:
    """One delivery attempt; give the same `key` to try the same job again."""
    return Delivery(key or f"{uuid.uuid4()}:submit", attempt, step, inputs)


def _spec(registry: Registry, code: str) -> ProcedureSpec:
    spec = registry.procedures.get(code)
    if spec is None:
        raise LookupError(f"no plugin registers procedure {code}")
    return spec


# -- callbacks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One callback as it reached the gateway's address: path, headers and body, untouched."""

    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class CallbackSink:
    """Stands where the gateway's callback route would: takes every POST, keeps it, answers `status`."""

    status: int = 200
    received: asyncio.Queue[Callback] = field(default_factory=asyncio.Queue)
    server: TestServer | None = None

    def url(self, agency: str) -> str:
        assert self.server is not None, "the sink is not started"
        return str(self.server.make_url(f"/v1/callbacks/{agency}"))

    async def next(self, timeout: float = 10.0) -> Callback:
        """The next callback; TimeoutError if none comes in time."""
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.status < 300:
            self.received.put_nowait(Callback(request.path, dict(request.headers), body))
        return web.json_response({"status": self.status}, status=self.status)


@contextlib.asynccontextmanager
async def callback_sink() -> AsyncIterator[CallbackSink]:
    sink = CallbackSink()
    app = web.Application()
    app.router.add_post("/v1/callbacks/{agency}", sink._take)
    sink.server = TestServer(app, host="127.0.0.1")
    await sink.server.start_server()
    try:
        yield sink
    finally:
        await sink.server.close()


# -- simulators and connectors -----------------------------------------------------------------------


@dataclass
class Simulator:
    """A kind's simulator running on loopback for one agency, with its fault controls at hand."""

    kind: AgencyKind
    running: RunningSimulator
    server: TestServer
    http: aiohttp.ClientSession
    callbacks: CallbackSink

    @property
    def url(self) -> str:
        return self.running.url

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """POST /_sim/faults: e.g. set_faults(down=True), set_faults(error_rate=1.0)."""
        async with self.http.post(f"{self.url}/_sim/faults", json=faults) as resp:
            body: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise ValueError(f"the simulator refused the faults {faults}: {body}")
            return body

    async def clear_faults(self) -> None:
        await self.set_faults(**Faults().model_dump())

    async def stats(self) -> dict[str, int]:
        async with self.http.get(f"{self.url}/_sim/stats") as resp:
            data: dict[str, int] = await resp.json()
            return data


@contextlib.asynccontextmanager
async def running_simulator(
    kind: AgencyKind,
    workdir: Path,
    *,
    agency: str | None = None,
    processing_delay: float = 0.05,
    settings: Mapping[str, Any] | None = None,
    secret: str | None = None,
    callback_url: str | None = None,
    callback_key: str = "sandbox-callback-key",
) -> AsyncIterator[Simulator]:
    """Start `kind`'s simulator as the demo would (its binding's settings, a fresh secret), its callbacks
    going to a sink (or to `callback_url`, a gateway's), and stop it at the end."""
    if kind.simulator is None:
        raise LookupError(f"kind {kind.name!r} ships no simulator")
    agency = agency or kind.name
    secret = secret or f"sandbox-{secrets.token_urlsafe(18)}"
    sim_settings = simulator_settings(kind, workdir) | dict(settings or {})
    async with callback_sink() as sink, aiohttp.ClientSession() as http:
        options = SimulatorOptions(
            callback_url=callback_url or sink.url(agency),
            callback_api_key=callback_key,
            secret=secret,
            processing_delay=processing_delay,
            settings=sim_settings,
        )
        server = TestServer(kind.simulator(options), host="127.0.0.1")
        await server.start_server()
        try:
            url = str(server.make_url("")).rstrip("/")
            yield Simulator(kind, RunningSimulator(agency, url, secret, sim_settings), server, http, sink)
        finally:
            await server.close()


@contextlib.asynccontextmanager
async def bound_connector(
    kind: AgencyKind,
    sim: Simulator,
    *,
    endpoint: str = "main",
    state: ConnectorState | None = None,
    configured: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Connector]:
    """The kind's connector, its endpoint settings pointed at `sim` (the plugin's binding), started in
    its own client session and closed at the end. `overrides` replace settings (e.g. timeout=1.0);
    `state` carries connector state across two connectors, as the store does across restarts."""
    raw = bind_endpoint(kind, sim.running, endpoint, configured) | overrides
    settings = kind.settings_model.model_validate(raw)
    async with aiohttp.ClientSession() as http:
        ctx = ConnectorContext(
            agency=sim.running.agency,
            endpoint=endpoint,
            settings=settings,
            http=http,
            callback_url=sim.callbacks.url(sim.running.agency),
            state=state if state is not None else MemoryConnectorState(),
        )
        connector = kind.connector(ctx)
        await connector.start()
        try:
            yield connector
        finally:
            await connector.aclose()


# -- an in-process gateway -----------------------------------------------------------------------------

CENTRE_KEY = "test-centre-key-0000000000000001"
OPERATOR_KEY = "test-operator-key-000000000000001"


def write_minimal_conf(
    folder: Path, registry: Registry, kind: AgencyKind, sim: RunningSimulator, *, port: int, callback_key: str
) -> Path:
    """A configuration folder with one agency of `kind` (named like its simulator's agency, endpoint
    "main") bound to `sim`, every procedure of the kind offered and routed to it, a centre
    ("centre-test", keys CENTRE_KEY), an operator (OPERATOR_KEY) and the agency's callback client.
    Blocking: call it off the event loop."""
    import tomli_w

    from gateway.auth import hash_key

    agency = sim.agency
    codes = sorted(code for code, p in registry.procedures.items() if p.agency_kind == kind.name)
    files: dict[str, dict[str, Any]] = {
        "gateway.toml": {
            "log_level": "warning",
            "server": {"host": "127.0.0.1", "port": port},
            "store": {"path": str(folder / "gateway.db")},
            "dispatcher": {"base_delay": 0.05, "max_delay": 1.0, "jitter": 0.05, "agency_poll_interval": 0.1},
        },
        "clients.toml": {
            "client": {
                "centre-test": {
                    "name": "Trung tâm thử nghiệm",
                    "kind": "centre",
                    "unit": TEST_UNIT,
                    "province": "01",
                    "scopes": ["submit", "read", "lookup"],
                    "api_key_sha256": hash_key(CENTRE_KEY),
                },
                "operator": {
                    "name": "Operator",
                    "kind": "operator",
                    "scopes": ["read", "admin", "lookup"],
                    "api_key_sha256": hash_key(OPERATOR_KEY),
                },
                f"{agency}-callbacks": {
                    "name": f"{kind.title}: callbacks",
                    "kind": "agency",
                    "agency": agency,
                    "scopes": ["callback"],
                    "api_key_sha256": hash_key(callback_key),
                },
            }
        },
        "agencies.toml": {
            "agency": {
                agency: {
                    "kind": kind.name,
                    "title": kind.title,
                    "endpoints": {"main": {k: v for k, v in bind_endpoint(kind, sim, "main").items() if v is not None}},
                }
            }
        },
        "routes.toml": {"route": [{"procedure": code, "agency": agency, "endpoint": "main"} for code in codes]},
        "procedures.toml": {"procedure": [{"code": code} for code in codes]},
    }
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (conf / name).write_text(tomli_w.dumps(data), encoding="utf-8")
    return conf


@dataclass
class Gateway:
    """The gateway running in this process on a minimal configuration, with a centre's keys at hand."""

    client: Any  # aiohttp.test_utils.TestClient
    app: web.Application
    simulator: Simulator

    def headers(self, key: str = CENTRE_KEY, **extra: str) -> dict[str, str]:
        return {"X-Api-Key": key, **extra}

    async def submit(self, body: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
        """POST /v1/dossiers as the test centre; the answer (202) as JSON, or AssertionError with the problem."""
        resp = await self.client.post(
            "/v1/dossiers", json=dict(body), headers=self.headers(**{"Idempotency-Key": key or str(uuid.uuid4())})
        )
        answer: dict[str, Any] = await resp.json()
        if resp.status != 202:
            raise AssertionError(f"submission refused: {resp.status} {answer}")
        return answer

    async def dossier(self, ref: str) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/dossiers/{ref}", headers=self.headers())
        data: dict[str, Any] = await resp.json()
        return data

    async def wait_status(self, ref: str, *statuses: int, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the dossier until its status is one of `statuses`; TimeoutError (with where it stands) if not."""
        seen: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                while (seen := await self.dossier(ref)).get("status") not in statuses:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(f"dossier {ref} not in {statuses} after {timeout} s: {seen}") from None
        return seen


@contextlib.asynccontextmanager
async def running_gateway(registry: Registry, kind: AgencyKind, workdir: Path) -> AsyncIterator[Gateway]:
    """`kind`'s simulator and a gateway in this process on a minimal configuration bound to it (every
    procedure of the kind offered and routed), the simulator calling back to the gateway."""
    from aiohttp.test_utils import TestClient

    from gateway.app import create_app
    from gateway.config import load_config

    port, callback_key = free_port(), f"sandbox-{secrets.token_urlsafe(18)}"
    callback = f"http://127.0.0.1:{port}/v1/callbacks/{kind.name}"
    async with running_simulator(kind, workdir, callback_url=callback, callback_key=callback_key) as sim:
        conf = await asyncio.to_thread(
            write_minimal_conf, workdir, registry, kind, sim.running, port=port, callback_key=callback_key
        )
        config = await asyncio.to_thread(load_config, conf, registry)
        app = create_app(config, registry)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        try:
            yield Gateway(client, app, sim)
        finally:
            await client.close()
