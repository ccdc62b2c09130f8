"""Fixtures: a land office folder reached through a local drop folder or a real SFTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from adapters.file.model import sidecar_text
from adapters.file.sftp_server import SftpTestServer, start_sftp_server
from gateway.connector import ConnectorContext
from plugins.land.connector import LandConnector
from plugins.land.settings import LandSettings
from tests.plugins.land.support import sha

USER, PASSWORD = "lienthong", "land-test-password"


@dataclass
class OfficeFolder:
    """The office's folder as the gateway reaches it, and the local directory behind it."""

    kind: str
    settings: LandSettings
    path: Path
    server: SftpTestServer | None = None

    async def plant(self, folder: str, name: str, data: bytes, sidecar: bool = True) -> None:
        def write() -> None:
            (self.path / folder).mkdir(parents=True, exist_ok=True)
            if sidecar:
                (self.path / folder / (name + ".sha256")).write_bytes(sidecar_text(name, sha(data)))
            (self.path / folder / name).write_bytes(data)

        await asyncio.to_thread(write)

    async def names(self, folder: str) -> set[str]:
        def ls() -> set[str]:
            p = self.path / folder
            return {x.name for x in p.iterdir()} if p.is_dir() else set()

        return await asyncio.to_thread(ls)

    async def read(self, folder: str, name: str) -> bytes:
        return await asyncio.to_thread((self.path / folder / name).read_bytes)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=["local", "sftp"])
async def office(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OfficeFolder]:
    root = tmp_path / "server"
    path = root / "hanoi"
    await asyncio.to_thread(path.mkdir, 0o750, True, True)
    if request.param == "local":
        yield OfficeFolder("local", LandSettings(transport="local", root=str(path)), path)
        return
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    settings = LandSettings(
        host="127.0.0.1",
        port=port,
        username=USER,
        password=PASSWORD,
        host_key=server.public_key,
        root="/hanoi",
        timeout=10.0,
        connect_timeout=5.0,
    )
    yield OfficeFolder("sftp", settings, path, server)
    server.close()
    await server.wait_closed()


@pytest.fixture
def make_connector(http: aiohttp.ClientSession) -> Callable[[LandSettings], LandConnector]:
    def make(settings: LandSettings) -> LandConnector:
        ctx = ConnectorContext(agency="land", endpoint="hanoi", settings=settings, http=http, callback_url="")
        return LandConnector(ctx)

    return make


@pytest.fixture
async def connector(
    office: OfficeFolder, make_connector: Callable[[LandSettings], LandConnector]
) -> AsyncIterator[LandConnector]:
    c = make_connector(office.settings)
    await c.start()
    yield c
    await c.aclose()
