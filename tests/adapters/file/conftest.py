"""Fixtures for the file exchange: the same tests run on a local folder and on a real SFTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.file.sftp import SftpStore
from adapters.file.sftp_server import SftpTestServer, start_sftp_server
from adapters.file.stores import FileStore, LocalFolderStore

USER, PASSWORD = "lienthong", "s3cret-test"


@dataclass
class Backend:
    kind: str
    store: FileStore
    root: Path  # the local directory behind the store, to plant and inspect files directly

    async def plant(self, folder: str, name: str, data: bytes) -> None:
        """Put a file in place behind the store's back (what an agency or an attacker would do)."""

        def _write() -> None:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / folder / name).write_bytes(data)

        await asyncio.to_thread(_write)

    async def names(self, folder: str) -> set[str]:
        def _list() -> set[str]:
            path = self.root / folder
            return {p.name for p in path.iterdir()} if path.is_dir() else set()

        return await asyncio.to_thread(_list)

    async def content(self, folder: str, name: str) -> bytes:
        return await asyncio.to_thread((self.root / folder / name).read_bytes)


@pytest.fixture
async def sftp_server(tmp_path: Path) -> AsyncIterator[tuple[SftpTestServer, int, Path]]:
    root = tmp_path / "sftp-root"
    await asyncio.to_thread(root.mkdir)
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    yield server, port, root
    server.close()
    await server.wait_closed()


def sftp_store(server: SftpTestServer, port: int, **kw: object) -> SftpStore:
    return SftpStore(
        "127.0.0.1",
        port,
        username=USER,
        password=PASSWORD,
        host_key=server.public_key,
        agency="test-agency",
        connect_timeout=5.0,
        op_timeout=10.0,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["local", "sftp"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = tmp_path / "drop"
        await asyncio.to_thread(root.mkdir)
        store: FileStore = LocalFolderStore(root, agency="test-agency")
        yield Backend("local", store, root)
        await store.aclose()
        return
    root = tmp_path / "sftp-root"
    await asyncio.to_thread(root.mkdir)
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    store = sftp_store(server, port)
    yield Backend("sftp", store, root)
    await store.aclose()
    server.close()
    await server.wait_closed()
