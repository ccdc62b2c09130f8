"""TLS in and out, over loopback with certificates the tests issue: the gateway's listener with client
certificates (served, or refused at the handshake), a certificate renewed on SIGHUP, an agency endpoint
with a pinned certificate and a client certificate, and the portal push over mutual TLS."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.api.keys import METRICS, STORE
from gateway.app import create_app
from gateway.config import Config, load_config
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.launcher import start_child
from gateway.sandbox.portal_sim import LOGIN_PATH, SERVICE_PATH, create_portal_simulator
from gateway.sdk.simulation import SimulatorOptions
from gateway.server import start_listener
from plugins.police.simulator import create_simulator
from tests.gateway.conftest import SECRET
from tests.gateway.pki import Issued, Pki, conf_copy

Make = Callable[[int], dict[str, Any]]


def listener_tls(pki: Pki, server: Issued, mode: str = "required") -> str:
    return f"""
[server.tls]
cert_file = "{server.path}"
client_ca_file = "{pki.ca_path}"
client_certificates = "{mode}"
"""


@asynccontextmanager
async def gateway(config: Config, registry: Registry, port: int) -> AsyncIterator[web.Application]:
    """The gateway behind its real listener (as `lienthong serve` runs it), in this process."""
    app = create_app(config, registry)
    runner, _ = await start_listener(app, config, port)
    try:
        yield app
    finally:
        await runner.cleanup()


@asynccontextmanager
async def tls_server(app: web.Application, ctx: ssl.SSLContext, port: int) -> AsyncIterator[str]:
    """An agency's or the portal's simulator behind TLS."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx)
    await site.start()
    server = site._server  # the asyncio server, to wait for connections still in their handshake
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        # A handshake the client gave up (a pin refused it) ends on the server side a moment later; on
        # Python 3.11 closing the server does not wait for it, and its transport would be collected
        # unclosed. Wait for the server's connections to end (a bounded wait: this is teardown).
        deadline = asyncio.get_running_loop().time() + 5
        while getattr(server, "_active_count", 0) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # asyncio offers no event for it


def requests_seen(app: web.Application) -> int:
    return int(sum(s.value for m in app[METRICS].requests.collect() for s in m.samples if s.name.endswith("_total")))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A CA and what it issued (files written here, before the event loop runs the test)."""
    (tmp_path / "pki").mkdir()
    pki = Pki(tmp_path / "pki")
    pki.issue("gateway", "127.0.0.1", "localhost")
    pki.issue("gateway-renewed", "127.0.0.1", "localhost")
    pki.issue("hanoi", "mot-cua-hoan-kiem.hanoi.gov.vn", common_name="mot-cua-hoan-kiem", org="UBND Ha Noi")
    pki.issue("portal", "dichvucong.gov.vn", common_name="dvcqg", org="Van phong Chinh phu")
    pki.issue("hcm", "mot-cua-sai-gon.hcm.gov.vn")
    pki.issue("police", "127.0.0.1")
    pki.issue("impostor", "127.0.0.1")  # from the same CA: only a pin tells it from the police's
    pki.issue("gateway-client", "lienthong.gov.vn")
    pki.issue("portal-server", "127.0.0.1")
    (tmp_path / "other").mkdir()
    other = Pki(tmp_path / "other", "other-ca")
    pki.certs["stranger"] = other.issue("stranger", "stranger.example", common_name="mot-cua-hoan-kiem")
    return pki


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("POLICE_SECRET", SECRET)


async def load(conf: Path, registry: Registry) -> Config:
    return await asyncio.to_thread(load_config, conf, registry)


# -- inbound ------------------------------------------------------------------------------------------


async def test_a_client_certificate_from_the_ca_is_served_others_are_refused_at_the_handshake(
    tmp_path: Path, pki: Pki, env: None, registry: Registry, unused_tcp_port_factory: Callable[[], int]
) -> None:
    server, hanoi, portal, stranger = (pki.certs[n] for n in ("gateway", "hanoi", "portal", "stranger"))
    conf = await asyncio.to_thread(
        conf_copy,
        tmp_path / "conf",
        gateway=listener_tls(pki, server),
        add={
            "centre-hanoi": f'certificate = {{ sha256 = ["{hanoi.sha256}"] }}',
            "portal": f'certificate = {{ subject = "{portal.subject}" }}',
        },
    )
    port = unused_tcp_port_factory()
    url = f"https://127.0.0.1:{port}/v1/dossiers"
    async with gateway(await load(conf, registry), registry, port) as app:
        # The certificate alone names the client: by its fingerprint, or by its subject.
        for cert in (hanoi, portal):
            async with aiohttp.ClientSession() as s, s.get(url, ssl=pki.client_context(cert)) as r:
                assert r.status == 200, await r.text()
        # A certificate and the API key of the same client; the key of another is refused.
        async with aiohttp.ClientSession() as s:
            ok = await s.get(url, ssl=pki.client_context(hanoi), headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]})
            assert ok.status == 200
            other = await s.get(url, ssl=pki.client_context(hanoi), headers={"X-Api-Key": DEMO_KEYS["centre-hcm"]})
            assert other.status == 401
            body = await other.json(content_type=None)
            assert (
                body["detail"] == "the credential names client 'centre-hcm' but the certificate client 'centre-hanoi'"
            )
        seen = requests_seen(app)
        # No certificate, or one from another CA: refused at the handshake, before any request is read.
        for cert, ctx in ((None, pki.client_context()), (stranger, pki.client_context(stranger))):
            for tls12 in (False, True):
                if tls12:
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                async with aiohttp.ClientSession() as s:
                    with pytest.raises(aiohttp.ClientError) as caught:
                        await s.get(url, ssl=ctx, headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]})
                if tls12:  # TLS 1.2: the connection fails in the handshake, before the client could send
                    assert isinstance(caught.value, aiohttp.ClientConnectorError), (cert, repr(caught.value))
                # TLS 1.3: the client finishes its half first; the server refuses and closes instead of
                # answering, and the request is never read.
        assert requests_seen(app) == seen  # the application never saw those connections


async def test_optional_client_certificates_and_a_client_that_requires_its_own(
    tmp_path: Path, pki: Pki, env: None, registry: Registry, unused_tcp_port_factory: Callable[[], int]
) -> None:
    server, hcm = pki.certs["gateway"], pki.certs["hcm"]
    conf = await asyncio.to_thread(
        conf_copy,
        tmp_path / "conf",
        gateway=listener_tls(pki, server, "optional"),
        add={"centre-hcm": f'certificate = {{ sha256 = ["{hcm.sha256}"] }}\nrequire_certificate = true'},
    )
    port = unused_tcp_port_factory()
    url = f"https://127.0.0.1:{port}/v1/dossiers"
    async with gateway(await load(conf, registry), registry, port), aiohttp.ClientSession() as s:
        plain = pki.client_context()
        # Without a certificate, API keys work as before, over TLS ...
        async with s.get(url, ssl=plain, headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]}) as r:
            assert r.status == 200
        # ... except for a client that must bring its certificate.
        async with s.get(url, ssl=plain, headers={"X-Api-Key": DEMO_KEYS["centre-hcm"]}) as r:
            assert r.status == 401
            assert (await r.json(content_type=None))["detail"] == (
                "client 'centre-hcm' must connect with its client certificate"
            )
        async with s.get(url, ssl=pki.client_context(hcm), headers={"X-Api-Key": DEMO_KEYS["centre-hcm"]}) as r:
            assert r.status == 200
        async with s.get(url, ssl=plain) as r:
            assert r.status == 401
            assert (await r.json(content_type=None))["detail"] == (
                "send your API key in the X-Api-Key header or a client certificate"
            )


def test_tls_settings_and_files_are_checked_with_file_and_key(tmp_path: Path, pki: Pki, registry: Registry) -> None:
    server = pki.certs["gateway"]
    broken = tmp_path / "pki" / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    conf = conf_copy(
        tmp_path / "conf",
        gateway=f'[server.tls]\ncert_file = "{broken}"\n\n[portal]\npush_url = "http://127.0.0.1:9"\n'
        'auth_url = "https://127.0.0.1:9/login"\nusername = "lienthong"\nmadonvi = "000.00.00.H30"\n'
        f'tls = {{ ca_file = "{pki.ca_path}" }}\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(conf, registry)
    problems = {(f, k): m for f, k, m in caught.value.problems}
    assert problems == {("gateway.toml", "portal"): "tls settings need an https:// push_url"}
    text = (conf / "gateway.toml").read_text().replace("http://127.0.0.1:9", "https://127.0.0.1:9")
    (conf / "gateway.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(conf, registry)
    [(file, key, message)] = caught.value.problems
    assert (file, key) == ("gateway.toml", "server.tls") and message.startswith("cannot load the TLS files")
    (conf / "gateway.toml").write_text(text.replace(str(broken), str(server.path)))
    load_config(conf, registry)


@pytest.mark.slow
async def test_sighup_loads_a_renewed_certificate(
    tmp_path: Path, pki: Pki, registry: Registry, unused_tcp_port_factory: Callable[[], int]
) -> None:
    first, renewed = pki.certs["gateway"], pki.certs["gateway-renewed"]
    served = tmp_path / "pki" / "served.pem"
    await asyncio.to_thread(served.write_bytes, await asyncio.to_thread(first.path.read_bytes))
    conf = await asyncio.to_thread(conf_copy, tmp_path / "conf", gateway=f'[server.tls]\ncert_file = "{served}"\n')
    port = unused_tcp_port_factory()
    env = {"LIENTHONG_PORT": str(port), "LIENTHONG_DB": str(tmp_path / "gw.db")}
    child = await start_child(
        "gateway",
        ["serve", "--conf", str(conf), "--demo-secrets"],
        url=f"https://127.0.0.1:{port}",
        health="/healthz",
        log_dir=tmp_path,
        env=env,
        ssl_context=pki.client_context(),
    )

    async def presented() -> str:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=pki.client_context())
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        from gateway.tls import fingerprint

        return fingerprint(der)

    try:
        assert await presented() == first.sha256
        await asyncio.to_thread(served.write_bytes, await asyncio.to_thread(renewed.path.read_bytes))
        os.kill(child.proc.pid, signal.SIGHUP)
        for _ in range(100):
            if await presented() == renewed.sha256:
                break
            await asyncio.sleep(0.05)
        assert await presented() == renewed.sha256
        assert child.alive  # the same process: no restart, no connection refused meanwhile
    finally:
        await child.stop()


# -- outbound -----------------------------------------------------------------------------------------


async def _delivery_outcome(app: web.Application, timeout: float = 15.0) -> tuple[str, str | None]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        [job] = await app[STORE].jobs(limit=1)
        if job.state == "done" or (job.attempts and job.last_error):
            return job.state, job.last_error
        assert asyncio.get_running_loop().time() < deadline, "no delivery attempt"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("pinned", ["right", "wrong"])
async def test_an_agency_endpoint_with_a_pinned_certificate_and_a_client_certificate(
    tmp_path: Path,
    pki: Pki,
    env: None,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
    submission: Make,
    pinned: str,
) -> None:
    police_cert, impostor, gateway_client = (pki.certs[n] for n in ("police", "impostor", "gateway-client"))
    gw_port, police_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    sim = create_simulator(
        SimulatorOptions(
            callback_url=f"http://127.0.0.1:{gw_port}/v1/callbacks/police",
            callback_api_key=DEMO_KEYS["police-callbacks"],
            secret=SECRET,
            processing_delay=0.05,
        )
    )
    presented = police_cert if pinned == "right" else impostor
    monkeypatch.setenv("LIENTHONG_PORT", str(gw_port))
    conf = await asyncio.to_thread(conf_copy, tmp_path / "conf")
    agencies = conf / "agencies.toml"
    text = await asyncio.to_thread(agencies.read_text)
    text = text.replace('"${POLICE_URL:-http://127.0.0.1:8701}"', f'"https://127.0.0.1:{police_port}"')
    text += (
        f'\n[agency.police.endpoints.national.tls]\nca_file = "{pki.ca_path}"\n'
        f'cert_file = "{gateway_client.path}"\npin_sha256 = ["{police_cert.sha256.upper()}"]\n'
    )
    await asyncio.to_thread(agencies.write_text, text)
    server_ctx = pki.server_context(presented, client_ca=pki.ca_path)  # the agency requires our certificate
    config = await load(conf, registry)
    async with (
        tls_server(sim, server_ctx, police_port),
        gateway(config, registry, gw_port) as app,
        aiohttp.ClientSession() as s,
    ):
        resp = await s.post(
            f"http://127.0.0.1:{gw_port}/v1/dossiers",
            json=submission(0),
            headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]},
        )
        assert resp.status == 202, await resp.text()
        state, error = await _delivery_outcome(app)
        async with s.get(f"https://127.0.0.1:{police_port}/_sim/stats", ssl=pki.client_context(gateway_client)) as r:
            stats = await r.json()
    if pinned == "right":
        assert (state, error) == ("done", None)
        assert stats.get("accepted") == 1
    else:
        assert state != "done"
        assert error is not None and "TLS certificate was refused" in error and "not one of the pinned" in error
        assert stats.get("accepted", 0) == 0 and stats.get("requests", 0) == 0  # nothing reached the impostor


async def test_the_portal_push_over_mutual_tls(
    tmp_path: Path,
    pki: Pki,
    env: None,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
    submission: Make,
) -> None:
    portal_cert, gateway_client = pki.certs["portal-server"], pki.certs["gateway-client"]
    gw_port, portal_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    police = web.AppRunner(
        create_simulator(
            SimulatorOptions(
                callback_url=f"http://127.0.0.1:{gw_port}/v1/callbacks/police",
                callback_api_key=DEMO_KEYS["police-callbacks"],
                secret=SECRET,
                processing_delay=0.05,
            )
        )
    )
    await police.setup()
    police_port = unused_tcp_port_factory()
    await web.TCPSite(police, "127.0.0.1", police_port).start()
    monkeypatch.setenv("POLICE_URL", f"http://127.0.0.1:{police_port}")
    monkeypatch.setenv("LIENTHONG_PORT", str(gw_port))
    portal_key = "test-portal-push-key-0001"
    conf = await asyncio.to_thread(
        conf_copy,
        tmp_path / "conf",
        gateway=f"""
[portal]
push_url = "https://127.0.0.1:{portal_port}{SERVICE_PATH}"
auth_url = "https://127.0.0.1:{portal_port}{LOGIN_PATH}"
username = "lienthong"
password = "{portal_key}"
madonvi = "000.00.00.H30"
interval = 0.2
base_delay = 0.05
max_delay = 0.5

[portal.tls]
ca_file = "{pki.ca_path}"
cert_file = "{gateway_client.path}"
""",
    )
    portal = create_portal_simulator(SimulatorOptions(secret=portal_key))
    ctx = pki.server_context(portal_cert, client_ca=pki.ca_path)
    try:
        config = await load(conf, registry)
        async with (
            tls_server(portal, ctx, portal_port),
            gateway(config, registry, gw_port),
            aiohttp.ClientSession() as s,
        ):
            resp = await s.post(
                f"http://127.0.0.1:{gw_port}/v1/dossiers",
                json=submission(0),
                headers={"X-Api-Key": DEMO_KEYS["centre-hanoi"]},
            )
            assert resp.status == 202
            code = (await resp.json())["code"]
            view_url = f"https://127.0.0.1:{portal_port}/_sim/view"
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                async with s.get(view_url, ssl=pki.client_context(gateway_client)) as r:
                    view = await r.json()
                if code in view["dossiers"]:
                    break
                assert asyncio.get_running_loop().time() < deadline, view
                await asyncio.sleep(0.05)
            # The portal takes no connection without a certificate from the CA.
            with pytest.raises(aiohttp.ClientError):
                await s.get(view_url, ssl=pki.client_context())
    finally:
        await police.cleanup()
