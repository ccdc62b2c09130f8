"""The wheel as an operator installs it: built from the repository, installed in a fresh virtualenv with
its pinned dependencies from the wheelhouse .ci/setup fills (offline: --no-index), then `lienthong
--version`, `init`, `conf check`, and `serve` from a folder that is not the repository, up to /readyz;
then `lienthong demo`. The demo's public secrets are refused without --demo-secrets."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

from gateway import __version__

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"


async def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = await asyncio.create_subprocess_exec(
        *map(str, args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode()
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{text}"
    return text


async def fails(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *map(str, args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode != 0, out.decode()
    return proc.returncode or 0, out.decode()


async def test_the_wheel_installs_offline_and_serves(tmp_path: Path, unused_tcp_port_factory: object) -> None:
    assert await asyncio.to_thread(WHEELHOUSE.is_dir), f"no {WHEELHOUSE}: run .ci/setup (it fills it)"
    dist = tmp_path / "dist"
    # No build isolation: the setuptools of this environment, nothing downloaded.
    await run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-w", dist, cwd=tmp_path)
    [wheel] = await asyncio.to_thread(lambda: list(dist.glob("lienthong-*.whl")))
    names = await asyncio.to_thread(lambda: set(zipfile.ZipFile(wheel).namelist()))
    for name in (
        "gateway/py.typed",
        "contracts/py.typed",
        "adapters/py.typed",
        "plugins/py.typed",
        "gateway/starter/gateway.toml",
        "gateway/api/openapi.json",
        "plugins/tax/wsdl/tax.wsdl",
        f"lienthong-{__version__}.dist-info/licenses/LICENSE",
        f"lienthong-{__version__}.data/data/share/lienthong/conf/demo/agencies.toml",
    ):
        assert name in names, name

    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_ = venv / "bin"
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    await run(
        bin_ / "python",
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        WHEELHOUSE,
        wheel,
        cwd=tmp_path,
        env=offline,
    )
    lienthong = bin_ / "lienthong"
    # The installed package, not the repository's: run from a folder outside it, without the dev environment.
    env = {"PATH": f"{bin_}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv), "PYTHONPATH": ""}
    home = tmp_path / "site"
    await asyncio.to_thread(home.mkdir)
    assert (await run(lienthong, "--version", cwd=home, env=env)).strip() == f"lienthong {__version__}"
    where = await run(bin_ / "python", "-c", "import gateway; print(gateway.__file__)", cwd=home, env=env)
    assert where.startswith(str(venv)), where

    out = await run(lienthong, "init", "conf", cwd=home, env=env)
    key = out.split("clients.toml): ")[1].split()[0]
    assert key.startswith("lt_")
    assert "ok: 1 clients" in await run(lienthong, "conf", "check", "conf", cwd=home, env=env)
    code, out = await fails(lienthong, "init", "conf", cwd=home, env=env)  # never over an existing folder
    assert "already has" in out
    code, out = await fails(lienthong, "serve", cwd=home, env=env)
    assert "no configuration folder" in out

    # The demo configuration the wheel carries passes its check, and serve refuses its public secrets.
    demo = venv / "share" / "lienthong" / "conf" / "demo"
    assert "ok:" in await run(lienthong, "conf", "check", demo, cwd=home, env=env)
    code, out = await fails(lienthong, "serve", "--conf", demo, cwd=home, env=env)
    assert code == 2 and "demo's public secrets" in out and "clients.toml: client.operator.api_key_sha256" in out

    port = unused_tcp_port_factory()  # type: ignore[operator]
    serve_env = {**os.environ, **env, "LIENTHONG_CONF": str(home / "conf"), "LIENTHONG_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        str(lienthong),
        "serve",
        cwd=home,
        env=serve_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:
            status = None
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        status = r.status
                        if status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert status == 200, (await proc.stdout.read()).decode() if proc.stdout else status  # type: ignore[union-attr]
            async with http.get(f"http://127.0.0.1:{port}/metrics", headers={"X-Api-Key": key}) as r:
                assert r.status == 200 and "lienthong_build_info" in await r.text()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    assert await asyncio.to_thread((home / "var" / "lienthong.db").exists)
    # The demo runs from the installed package too: its configuration and simulators are in the wheel.
    out = await run(lienthong, "demo", "--dossiers", "6", cwd=home, env=env, timeout=300)
    assert "RESULT: all delivered with all their documents, none twice" in out, out
    await asyncio.to_thread(shutil.rmtree, venv)
