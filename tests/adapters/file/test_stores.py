"""FileStore contract on both backends, the atomic-write guarantee, and SFTP failure mapping."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from adapters.file.naming import UnsafeName, is_temp_name
from adapters.file.sftp import SftpStore
from adapters.file.sftp_server import SftpTestServer, ThreadedSFTPServer, start_sftp_server
from adapters.file.stores import FileTooLarge, LocalFolderStore
from gateway.errors import AgencyUnavailable, TransientAgencyError
from tests.adapters.file.conftest import PASSWORD, USER, Backend, sftp_store


async def test_write_read_list_roundtrip(backend: Backend) -> None:
    store = backend.store
    await store.ensure_folder("box")
    await store.write_atomic("box", "a.xml", b"<a/>")
    await store.write_atomic("box", "b.xml", b"<b/>")
    await store.ensure_folder("box/sub")  # directories are not listed
    assert await store.list("box") == ["a.xml", "b.xml"]
    assert await store.read("box", "a.xml", 100) == b"<a/>"
    assert await store.exists("box", "a.xml")
    assert not await store.exists("box", "zzz.xml")
    assert await backend.names("box") == {"a.xml", "b.xml", "sub"}  # no temp file left behind


async def test_write_atomic_replaces(backend: Backend) -> None:
    await backend.store.ensure_folder("box")
    await backend.store.write_atomic("box", "a.xml", b"old")
    await backend.store.write_atomic("box", "a.xml", b"new")
    assert await backend.store.read("box", "a.xml", 10) == b"new"


async def test_read_refuses_oversize(backend: Backend) -> None:
    await backend.plant("box", "big.xml", b"x" * 1001)
    with pytest.raises(FileTooLarge):
        await backend.store.read("box", "big.xml", 1000)
    assert await backend.store.read("box", "big.xml", 1001) == b"x" * 1001


async def test_move_never_replaces(backend: Backend) -> None:
    store = backend.store
    await backend.plant("in", "a.xml", b"1")
    await backend.plant("in", "b.xml", b"2")
    await backend.plant("done", "b.xml", b"old")
    assert await store.move("in", "a.xml", "done") == "a.xml"
    with pytest.raises(FileExistsError):
        await store.move("in", "b.xml", "done")
    assert await backend.content("done", "b.xml") == b"old"
    assert await store.move("in", "b.xml", "done", "b-2.xml") == "b-2.xml"
    with pytest.raises(FileNotFoundError):
        await store.move("in", "gone.xml", "done")


async def test_remove_is_idempotent(backend: Backend) -> None:
    await backend.plant("box", "a.xml", b"1")
    await backend.store.remove("box", "a.xml")
    await backend.store.remove("box", "a.xml")
    assert await backend.store.list("box") == []


async def test_missing_file_and_missing_folder(backend: Backend) -> None:
    await backend.store.ensure_folder("box")
    with pytest.raises(FileNotFoundError):
        await backend.store.read("box", "nope.xml", 10)
    with pytest.raises(AgencyUnavailable):  # a vanished folder is an outage, not "no answers"
        await backend.store.list("no-such-folder")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.xml", "a\0b.xml", "..", ""])
async def test_paths_never_escape(backend: Backend, name: str) -> None:
    store = backend.store
    for call in (
        store.read("box", name, 10),
        store.exists("box", name),
        store.remove("box", name),
        store.move("box", name, "other"),
        store.write_atomic("box", name, b"x"),
        store.move("box", "ok.xml", "other", name),
    ):
        with pytest.raises(UnsafeName):
            await call
    for folder in ("../x", "/etc", "a/../../b"):
        with pytest.raises(UnsafeName):
            await store.list(folder)


async def test_symlinks_are_neither_listed_nor_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    box = tmp_path / "drop" / "box"

    def _setup() -> None:
        box.mkdir(parents=True)
        secret.write_text("secret")
        os.symlink(secret, box / "link.xml")

    await asyncio.to_thread(_setup)
    store = LocalFolderStore(tmp_path / "drop")
    assert await store.list("box") == []
    with pytest.raises(FileNotFoundError):
        await store.read("box", "link.xml", 100)


async def test_check(backend: Backend, tmp_path: Path) -> None:
    result = await backend.store.check()
    assert result.ok and result.latency_ms is not None
    missing = await LocalFolderStore(tmp_path / "nowhere").check()
    assert not missing.ok


async def test_concurrent_reader_never_sees_partial_files(backend: Backend) -> None:
    """While large files are written, a reader polling the folder only ever finds complete ones."""
    store = backend.store
    await store.ensure_folder("box")
    payloads = {f"f{i:02d}.xml": os.urandom(1024 * 1024 + i * 4099) for i in range(8)}
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in payloads.items()}
    seen_complete: set[str] = set()
    seen_temp = 0
    done = asyncio.Event()

    async def writer() -> None:
        for name, data in payloads.items():
            await store.write_atomic("box", name, data)
        done.set()

    async def reader() -> None:
        nonlocal seen_temp
        while True:
            finished = done.is_set()
            for name in await store.list("box"):
                if is_temp_name(name):
                    seen_temp += 1
                    continue
                assert name in payloads, name
                data = await store.read("box", name, 4 * 1024 * 1024)
                assert hashlib.sha256(data).hexdigest() == digests[name], f"partial read of {name}"
                seen_complete.add(name)
            if finished:
                return
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    assert seen_temp > 0, "the reader never caught a write in flight: the test proves nothing"
    assert seen_complete == set(payloads)
    assert await store.list("box") == sorted(payloads)


def _spin_reader(folder: Path, digests: dict[str, str], stop: threading.Event) -> tuple[int, list[str]]:
    """The agency's side: another process reading the folder as fast as it can. Returns (complete
    files read, names read while partial)."""
    complete, partial = 0, []
    while not stop.is_set():
        with os.scandir(folder) as entries:
            names = [e.name for e in entries]
        for name in names:
            if is_temp_name(name):
                continue
            try:
                data = (folder / name).read_bytes()
            except FileNotFoundError:
                continue
            if hashlib.sha256(data).hexdigest() == digests[name]:
                complete += 1
            else:
                partial.append(f"{name}: {len(data)} bytes")
    return complete, partial


async def test_a_reader_on_the_other_side_never_sees_a_partial_file(backend: Backend) -> None:
    """The same guarantee seen from the agency's machine: a thread spinning on the folder itself."""
    store = backend.store
    await store.ensure_folder("box")
    payloads = {f"g{i:02d}.xml": os.urandom(512 * 1024 + i * 4099) for i in range(6)}
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in payloads.items()}
    stop = threading.Event()
    reader = asyncio.create_task(asyncio.to_thread(_spin_reader, backend.root / "box", digests, stop))
    try:
        for _ in range(2):  # the second round replaces every file in place
            for name, data in payloads.items():
                await store.write_atomic("box", name, data)
    finally:
        stop.set()
    complete, partial = await reader
    assert partial == []
    assert complete > 0


# SFTP specifics: connection loss, recovery, host key pinning.


async def test_sftp_connection_drop_maps_to_unavailable_and_recovers(
    sftp_server: tuple[SftpTestServer, int, Path],
) -> None:
    server, port, _ = sftp_server
    store = sftp_store(server, port)
    try:
        await store.ensure_folder("box")
        await store.write_atomic("box", "a.xml", b"<a/>")
        server.drop_connections()
        await asyncio.sleep(0.05)
        with pytest.raises(AgencyUnavailable) as info:
            await store.list("box")
        assert isinstance(info.value, TransientAgencyError) and info.value.retryable
        assert await store.list("box") == ["a.xml"]  # the next call reconnects
    finally:
        await store.aclose()


async def test_sftp_server_down_then_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    await asyncio.to_thread(root.mkdir)
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    store = sftp_store(server, port)
    try:
        await store.ensure_folder("box")
        server.close()
        await server.wait_closed()
        with pytest.raises(AgencyUnavailable):
            await store.list("box")
        assert not (await store.check()).ok
        server, _ = await start_sftp_server(root, port=port, username=USER, password=PASSWORD, host_key=server.host_key)
        assert await store.list("box") == []
        assert (await store.check()).ok
    finally:
        await store.aclose()
        server.close()
        await server.wait_closed()


async def test_sftp_wrong_host_key_is_refused(sftp_server: tuple[SftpTestServer, int, Path]) -> None:
    _server, port, _ = sftp_server
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    store = SftpStore("127.0.0.1", port, username=USER, password=PASSWORD, host_key=other, connect_timeout=5)
    with pytest.raises(AgencyUnavailable):
        await store.list(".")
    await store.aclose()


async def test_sftp_wrong_password_is_refused(sftp_server: tuple[SftpTestServer, int, Path]) -> None:
    server, port, _ = sftp_server
    store = SftpStore("127.0.0.1", port, username=USER, password="wrong", host_key=server.public_key, connect_timeout=5)
    with pytest.raises(AgencyUnavailable):
        await store.list(".")
    await store.aclose()


async def test_sftp_without_posix_rename_falls_back(
    sftp_server: tuple[SftpTestServer, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unsupported(self: ThreadedSFTPServer, old: bytes, new: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("no posix-rename here")

    monkeypatch.setattr(ThreadedSFTPServer, "posix_rename", unsupported)
    server, port, _root = sftp_server
    store = sftp_store(server, port)
    try:
        await store.ensure_folder("box")
        await store.write_atomic("box", "a.xml", b"one")
        await store.write_atomic("box", "a.xml", b"two")
        assert await store.read("box", "a.xml", 10) == b"two"
        assert await store.list("box") == ["a.xml"]
    finally:
        await store.aclose()


class _RenamedAfterListing:
    """os.scandir of `folder` whose entries were read just before a writer renamed `tmp` to `final`:
    the atomic write landing between the server reading the directory and its lstat of each entry."""

    def __init__(self, scandir: Callable[..., Any], folder: Path, tmp: str, final: str) -> None:
        with scandir(folder) as entries:
            self.entries = list(entries)
        os.replace(folder / tmp, folder / final)

    def __enter__(self) -> Iterator[os.DirEntry[bytes]]:
        return iter(self.entries)

    def __exit__(self, *exc: object) -> None:
        return None


async def test_sftp_list_skips_a_name_renamed_while_listing(
    sftp_server: tuple[SftpTestServer, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file renamed away between the directory read and its stat is simply absent, as with OpenSSH;
    it used to fail the whole listing with "no such file", which the exchange takes for a missing folder."""
    server, port, root = sftp_server
    box = root / "box"
    await asyncio.to_thread(box.mkdir)
    await asyncio.to_thread((box / "old.xml").write_bytes, b"<old/>")
    await asyncio.to_thread((box / ".new.xml.tmp-0123456789abcdef").write_bytes, b"<new/>")
    real, target = os.scandir, await asyncio.to_thread(os.path.realpath, box)

    def scandir(path: Any = ".") -> Any:
        if isinstance(path, str | bytes) and os.path.realpath(os.fsdecode(path)) == target:
            return _RenamedAfterListing(real, box, ".new.xml.tmp-0123456789abcdef", "new.xml")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    store = sftp_store(server, port)
    try:
        assert await store.list("box") == ["old.xml"]  # the directory as read; new.xml comes next time
    finally:
        await store.aclose()
    monkeypatch.undo()
    assert sorted(await asyncio.to_thread(os.listdir, box)) == ["new.xml", "old.xml"]  # the rename did happen


def test_sftp_store_insists_on_host_key_verification() -> None:
    with pytest.raises(ValueError, match="host"):
        SftpStore("h", username="u", password="p")
    with pytest.raises(ValueError, match="password"):
        SftpStore("h", username="u", host_key="ssh-ed25519 AAAA")


def test_describe_hides_the_password() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    store = SftpStore("h", username="u", password="hunter2", host_key=key)
    assert "hunter2" not in repr(store.describe())


async def test_local_store_never_creates_its_root(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "unmounted-share")
    with pytest.raises(AgencyUnavailable):
        await store.ensure_folder("processed")
    assert not await asyncio.to_thread((tmp_path / "unmounted-share").exists)
