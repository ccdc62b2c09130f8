"""A small real SFTP server on asyncssh, chrooted to one directory: for tests and agency simulators.

asyncssh's stock SFTPServer does its file I/O on the event loop; this one sends every filesystem
call to a thread, so it can share a loop with the code under test (and the blocking-call detector).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import posixpath
from asyncio import to_thread
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh


class _PasswordServer(asyncssh.SSHServer):
    def __init__(self, owner: SftpTestServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        ok_user = hmac.compare_digest(username.encode(), self._owner.username.encode())
        return hmac.compare_digest(password.encode(), self._owner.password.encode()) and ok_user


class SftpTestServer:
    """A running server: `close()` stops it, `drop_connections()` cuts every client off mid-session."""

    def __init__(self, username: str, password: str, host_key: asyncssh.SSHKey) -> None:
        self.username, self.password, self.host_key = username, password, host_key
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def public_key(self) -> str:
        """The host key in OpenSSH format, for a client to pin."""
        return bytes(self.host_key.export_public_key()).decode().strip()

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            conn.abort()

    def close(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
        self.drop_connections()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Bounded: from Python 3.12 on, a listener waits for every connection it accepted to close."""
        if self.acceptor is not None:
            async with asyncio.timeout(timeout):
                await self.acceptor.wait_closed()


def _names(local: bytes) -> list[asyncssh.SFTPName]:
    out = [asyncssh.SFTPName(n, attrs=asyncssh.SFTPAttrs.from_local(os.stat(local))) for n in (b".", b"..")]
    with os.scandir(local) as entries:
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)  # an lstat: the name may be gone since the directory was read
            except FileNotFoundError:
                # Renamed or removed meanwhile (a writer's temp file): skip it as OpenSSH's sftp-server does,
                # rather than fail the whole listing as if the folder were missing.
                continue
            out.append(asyncssh.SFTPName(os.fsencode(e.name), attrs=asyncssh.SFTPAttrs.from_local(st)))
    return out


class ThreadedSFTPServer(asyncssh.SFTPServer):
    """SFTPServer with a chroot and every blocking call in a thread."""

    def __init__(self, chan: Any, chroot: bytes) -> None:
        super().__init__(chan)  # no chroot here: the base class would realpath() on the loop
        self._root = chroot

    def map_path(self, path: bytes) -> bytes:
        normpath = posixpath.normpath(posixpath.join(b"/", path))
        return posixpath.join(self._root, normpath.lstrip(b"/"))

    def reverse_map_path(self, path: bytes) -> bytes:
        if path == self._root:
            return b"/"
        if path.startswith(self._root + b"/"):
            return path[len(self._root) :]
        raise asyncssh.SFTPNoSuchFile("File not found")

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await to_thread(fn, *args)

    async def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
        return await self._run(super().open, path, pflags, attrs)

    async def open56(self, path: bytes, desired_access: int, flags: int, attrs: Any) -> Any:
        return await self._run(super().open56, path, desired_access, flags, attrs)

    async def close(self, file_obj: Any) -> None:
        await self._run(super().close, file_obj)

    async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
        data: bytes = await self._run(super().read, file_obj, offset, size)
        return data

    async def write(self, file_obj: Any, offset: int, data: bytes) -> int:
        n: int = await self._run(super().write, file_obj, offset, data)
        return n

    async def lstat(self, path: bytes) -> Any:
        return await self._run(lambda: asyncssh.SFTPAttrs.from_local(os.lstat(self.map_path(path))))

    async def stat(self, path: bytes) -> Any:
        return await self._run(lambda: asyncssh.SFTPAttrs.from_local(os.stat(self.map_path(path))))

    async def fstat(self, file_obj: Any) -> Any:
        return await self._run(lambda: asyncssh.SFTPAttrs.from_local(os.fstat(file_obj.fileno())))

    async def setstat(self, path: bytes, attrs: Any) -> None:
        await self._run(super().setstat, path, attrs)

    async def fsetstat(self, file_obj: Any, attrs: Any) -> None:
        await self._run(super().fsetstat, file_obj, attrs)

    async def listdir(self, path: bytes) -> list[asyncssh.SFTPName]:
        # scandir() calls this hook when it exists; names with attrs, so no lstat per name.
        names: list[asyncssh.SFTPName] = await self._run(_names, self.map_path(path))
        return names

    async def remove(self, path: bytes) -> None:
        await self._run(super().remove, path)

    async def mkdir(self, path: bytes, attrs: Any) -> None:
        await self._run(super().mkdir, path, attrs)

    async def rmdir(self, path: bytes) -> None:
        await self._run(super().rmdir, path)

    async def realpath(self, path: bytes) -> bytes:
        real: bytes = await self._run(super().realpath, path)
        return real

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._run(super().rename, oldpath, newpath)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._run(super().posix_rename, oldpath, newpath)

    async def statvfs(self, path: bytes) -> Any:
        return await self._run(super().statvfs, path)

    async def fsync(self, file_obj: Any) -> None:
        await self._run(super().fsync, file_obj)

    def format_longname(self, name: Any) -> None:
        return None  # the default looks users up in pwd; no client of ours reads longname


async def start_sftp_server(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    username: str,
    password: str,
    host_key: asyncssh.SSHKey | None = None,
) -> tuple[SftpTestServer, int]:
    """Serve `root` over SFTP with one password login; returns the server and the bound port.

    A fresh ed25519 host key is made unless one is given; pin `server.public_key` in the client.
    Stop with `server.close(); await server.wait_closed()`.
    """
    chroot = os.fsencode(await to_thread(os.path.realpath, root))
    if host_key is None:  # CPU work: off the event loop
        host_key = await to_thread(asyncssh.generate_private_key, "ssh-ed25519")
    server = SftpTestServer(username, password, host_key)
    server.acceptor = await asyncssh.listen(
        host,
        port,
        server_factory=lambda: _PasswordServer(server),
        server_host_keys=[server.host_key],
        sftp_factory=lambda chan: ThreadedSFTPServer(chan, chroot),
        allow_scp=False,
        config=None,
    )
    return server, server.acceptor.get_port()
