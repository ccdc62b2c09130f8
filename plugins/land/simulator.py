"""A simulator of the provincial land offices: a real SFTP server, an office per folder, faults injectable.

`options.settings` (all optional):
  root              local folder served over SFTP (a temporary one by default)
  sftp_host         127.0.0.1;  sftp_port: 0 picks a free port (see GET /_sim/sftp)
  username          "lienthong"; password: options.secret
  host_key_path     the server's private host key; made (with `.pub` beside it) if the file is missing
  host_key_seed     or: a text the ed25519 host key is derived from, so a demo configuration can pin it
                    the way it names its other demo secrets (never for a real office)
  public_key_path   where to write the host public key line, for the gateway's conf to pin
  offices           {"hanoi": "01", "hcm": "79", "danang": "48"}: folder -> province it serves
  appointments_secret  the booking service's HMAC key (key id "lienthong-gateway"); options.secret by default
  scan_interval     0.1 s; answer_gap: seconds between two answers of a dossier (0.05)
  duplicate_rate, missing_rate, reject_rate, auto_pay_after: see office.LandFaults
Faults (POST /_sim/faults): down (the office stops and its SFTP server refuses logins), latency_ms and
jitter_ms (slow to take a dossier), answer_delay_ms (slow to answer), error_rate (a request left for a
later scan), malformed_rate (a broken answer file beside the real one), timeout_rate (a dossier whose
answers all go missing until POST /_sim/resend).
Control: GET /_sim/sftp (port, host key, folders), GET /_sim/received, POST /_sim/pay {"ref" | "code"},
POST /_sim/resend, GET/POST /_sim/land (the land faults above).
The offices' booking service (gateway/sdk/appointment_desk.py) answers at /appointments on the HTTP port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import TypeAdapter, ValidationError

from adapters.file import LocalFolderStore
from adapters.file.sftp_server import SftpTestServer, start_sftp_server
from adapters.xml import load_schema
from gateway.sdk import FAULTS, RNG, STATS, SimulatorOptions, new_simulator, spawn
from gateway.sdk.appointment_desk import Desk, mount_desk
from gateway.tasks import cancel_and_wait
from plugins.land.connector import ANSWER_XSD, REQUEST_XSD
from plugins.land.office import LandFaults, LandRegistry, Office

DEFAULT_OFFICES = {"hanoi": "01", "hcm": "79", "danang": "48"}
OFFICE_ADDRESSES = {
    "hanoi": "Văn phòng đăng ký đất đai Hà Nội, 18 Huỳnh Thúc Kháng, Đống Đa, Hà Nội",
    "hcm": "Văn phòng đăng ký đất đai TP Hồ Chí Minh, 12 Phan Đăng Lưu, Bình Thạnh, TP Hồ Chí Minh",
    "danang": "Văn phòng đăng ký đất đai Đà Nẵng, 24 Trần Phú, Hải Châu, Đà Nẵng",
}
APPOINTMENTS_KEY_ID = "lienthong-gateway"


@dataclass
class LandState:
    """Mutable holder: the app's state is frozen once it runs."""

    registry: LandRegistry | None = None
    server: SftpTestServer | None = None
    port: int = 0
    root: Path | None = None
    password: str = ""
    faults: LandFaults = field(default_factory=LandFaults)


STATE = web.AppKey("land_state", LandState)
OPTIONS = web.AppKey("land_options", SimulatorOptions)


def _malformed() -> web.Response:
    return web.Response(status=200, body=b"<PhanHoiXml", content_type="application/xml")


def seeded_host_key(seed: str) -> asyncssh.SSHKey:
    """An ed25519 key derived from `seed`: the same public key every run, as demo secrets are."""
    raw = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    pem = raw.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    return asyncssh.import_private_key(pem)


async def _host_key(settings: dict[str, Any]) -> asyncssh.SSHKey:
    path = settings.get("host_key_path")
    if settings.get("host_key_seed"):
        return seeded_host_key(str(settings["host_key_seed"]))
    if not path:  # key generation is CPU work: off the event loop, like the file I/O below
        return await asyncio.to_thread(asyncssh.generate_private_key, "ssh-ed25519")

    def load_or_make() -> asyncssh.SSHKey:
        p = Path(path)
        if p.exists():
            return asyncssh.read_private_key(p)
        key = asyncssh.generate_private_key("ssh-ed25519")
        p.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(p)
        key.write_public_key(p.with_name(p.name + ".pub"))
        return key

    return await asyncio.to_thread(load_or_make)


def _start_ctx(options: SimulatorOptions) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        s, state = options.settings, app[STATE]
        made_root = not s.get("root")
        root = Path(s["root"]) if s.get("root") else Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="land-"))
        await asyncio.to_thread(root.mkdir, 0o750, True, True)
        key = await _host_key(s)
        state.password = str(s.get("password") or options.secret)
        server, port = await start_sftp_server(
            root,
            host=str(s.get("sftp_host", "127.0.0.1")),
            port=int(s.get("sftp_port", 0)),
            username=str(s.get("username", "lienthong")),
            password=state.password,
            host_key=key,
        )
        state.server, state.port, state.root = server, port, root
        if s.get("public_key_path"):
            await asyncio.to_thread(Path(s["public_key_path"]).write_text, server.public_key + "\n")
        schemas = await asyncio.to_thread(lambda: (load_schema(REQUEST_XSD), load_schema(ANSWER_XSD)))
        offices = [Office(n, p, LocalFolderStore(root / n, agency=f"office-{n}")) for n, p in _offices(s).items()]
        registry = LandRegistry(
            offices,
            request_schema=schemas[0],
            answer_schema=schemas[1],
            faults=lambda: app[FAULTS].faults,
            land_faults=state.faults,
            rng=app[RNG],
            stats=app[STATS],
            spawn=lambda coro: spawn(app, coro),
            processing_delay=options.processing_delay,
            answer_gap=float(s.get("answer_gap", 0.05)),
        )
        await registry.prepare()
        state.registry = registry
        tasks = [
            asyncio.create_task(registry.run(float(s.get("scan_interval", 0.1))), name="land-offices"),
            asyncio.create_task(_follow_down(app), name="land-down"),
        ]
        try:
            yield
        finally:
            await cancel_and_wait(tasks, what="land offices")
            server.close()
            await server.wait_closed()
            if made_root:
                await asyncio.to_thread(shutil.rmtree, root, True)

    return ctx


def _offices(settings: dict[str, Any]) -> dict[str, str]:
    offices = settings.get("offices") or DEFAULT_OFFICES
    return {str(k): str(v) for k, v in offices.items()}


async def _follow_down(app: web.Application) -> None:
    """While `down`, the SFTP server refuses every login and drops the sessions it has."""
    state, was_down = app[STATE], False
    while True:
        down = app[FAULTS].faults.down
        if state.server is not None and down != was_down:
            state.server.password = secrets.token_hex(16) if down else state.password
            if down:
                state.server.drop_connections()
            was_down = down
        await asyncio.sleep(0.05)


async def sftp_info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    server = state.server
    if server is None:
        raise web.HTTPServiceUnavailable(text="starting")
    return web.json_response(
        {
            "host": "127.0.0.1",
            "port": state.port,
            "username": server.username,
            "public_key": server.public_key,
            "root": str(state.root),
            "offices": _offices(request.app[OPTIONS].settings),
        }
    )


async def received(request: web.Request) -> web.Response:
    registry = request.app[STATE].registry
    return web.json_response([r.view() for r in registry.records.values()] if registry else [])


async def pay(request: web.Request) -> web.Response:
    body = await request.json()
    registry = request.app[STATE].registry
    key = str(body.get("ref") or body.get("code") or "")
    if registry is None or not registry.pay(key):
        return web.json_response({"error": f"no dossier {key!r} at any office"}, status=404)
    return web.json_response({"paid": key})


async def resend(request: web.Request) -> web.Response:
    registry = request.app[STATE].registry
    return web.json_response({"resent": await registry.resend() if registry else 0})


async def land_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            new = _land_faults(dataclasses.asdict(state.faults) | await request.json())
        except (ValidationError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=422)
        for f in dataclasses.fields(LandFaults):
            setattr(state.faults, f.name, getattr(new, f.name))  # the registry holds this very object
    return web.json_response(dataclasses.asdict(state.faults))


def _land_faults(data: dict[str, Any]) -> LandFaults:
    known = {f.name for f in dataclasses.fields(LandFaults)}
    if set(data) - known:
        raise ValueError(f"unknown land faults {sorted(set(data) - known)}; known: {sorted(known)}")
    faults = TypeAdapter(LandFaults).validate_python(data)
    rates = (faults.duplicate_rate, faults.missing_rate, faults.reject_rate)
    if not all(0 <= r <= 1 for r in rates) or (faults.auto_pay_after or 0) < 0:
        raise ValueError("rates are between 0 and 1, auto_pay_after is seconds or null")
    return faults


def create_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed)
    known = {f.name for f in dataclasses.fields(LandFaults)}
    faults = _land_faults({k: v for k, v in options.settings.items() if k in known})
    app[STATE] = LandState(faults=faults)
    app[OPTIONS] = options
    app.cleanup_ctx.append(_start_ctx(options))
    app.router.add_get("/_sim/sftp", sftp_info)
    app.router.add_get("/_sim/received", received)
    app.router.add_post("/_sim/pay", pay)
    app.router.add_post("/_sim/resend", resend)
    app.router.add_get("/_sim/land", land_faults)
    app.router.add_post("/_sim/land", land_faults)
    # The offices' booking service (appointments with their officers), under the same faults.
    offices = _offices(options.settings)
    desk = Desk(
        "land",
        {o: OFFICE_ADDRESSES.get(o, f"Văn phòng đăng ký đất đai ({o})") for o in offices},
        officers=("Chuyên viên Nguyễn Thu Trang", "Chuyên viên Lê Quang Huy", "Cán bộ địa chính Phạm Văn Tâm"),
        meeting_base="https://hop.dangkydatdai.example.vn",
    )
    secret = str(options.settings.get("appointments_secret") or options.secret)
    mount_desk(app, desk, key_id=APPOINTMENTS_KEY_ID, secret=secret)
    return app
