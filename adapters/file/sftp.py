"""SFTP backend on asyncssh: one connection kept open, dropped on a transport error, remade on next use.

Deadlines are asyncio.timeout blocks, never asyncio.wait_for (nor asyncssh's connect_timeout, which is
a wait_for): on Python 3.11 wait_for swallows a cancellation that arrives as the connection comes up,
and a poller cancelled at shutdown would then run on forever.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

import asyncssh

from adapters.base import CheckResult
from adapters.file.naming import safe_folder, safe_name, temp_name
from adapters.file.stores import FileStore, FileTooLarge, new_token, source_name
from gateway.errors import AgencyError, AgencyTimeout, AgencyUnavailable

# Errors that leave the connection usable: the operation failed, not the link.
_FILE_ERRORS = (asyncssh.SFTPPermissionDenied, asyncssh.SFTPFailure, asyncssh.SFTPOpUnsupported)


class SftpStore(FileStore):
    def __init__(
        self,
        host: str,
        port: int = 22,
        *,
        username: str,
        password: str | None = None,
        client_keys: Sequence[Any] | None = None,
        known_hosts: Any = None,
        host_key: str | None = None,
        root: str = ".",
        agency: str = "",
        connect_timeout: float = 10.0,
        op_timeout: float = 60.0,
    ) -> None:
        if known_hosts is None and host_key is None:
            # asyncssh treats known_hosts=None as "trust any host key": never by accident.
            raise ValueError("SftpStore needs known_hosts or a pinned host_key")
        if password is None and not client_keys:
            raise ValueError("SftpStore needs a password or client_keys")
        self.host, self.port, self.username = host, port, username
        self.root = root.rstrip("/") or "/"
        self.agency = agency
        self.connect_timeout, self.op_timeout = connect_timeout, op_timeout
        self._password = password
        self._client_keys = list(client_keys) if client_keys else None
        self._known_hosts = ([asyncssh.import_public_key(host_key)], [], []) if host_key is not None else known_hosts
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._posix_rename = True  # until the server says it has no posix-rename extension

    def _path(self, folder: str, name: str | None = None) -> str:
        base = posixpath.join(self.root, safe_folder(folder))
        return base if name is None else posixpath.join(base, name)

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is None:
                async with asyncio.timeout(self.connect_timeout):
                    conn = await asyncssh.connect(
                        self.host,
                        self.port,
                        username=self.username,
                        password=self._password,
                        client_keys=self._client_keys,  # None: no keys from ~/.ssh offered to an agency
                        known_hosts=self._known_hosts,
                        agent_path=None,  # no ssh-agent or ~/.ssh/config from whoever runs the gateway
                        config=None,
                        connect_timeout=None,  # the timeout block above is the deadline
                        keepalive_interval=30,
                    )
                try:
                    # surrogateescape: one badly encoded name must not make the whole folder unreadable
                    self._sftp = await conn.start_sftp_client(path_errors="surrogateescape")
                except BaseException:
                    conn.abort()
                    raise
                self._conn = conn
            return self._sftp

    async def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.abort()
            with suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.wait_closed()

    @asynccontextmanager
    async def _op(self, what: str) -> AsyncIterator[asyncssh.SFTPClient]:
        """Run one operation with a deadline, turning asyncssh / socket errors into gateway errors."""
        try:
            async with asyncio.timeout(self.op_timeout):
                yield await self._client()
        except (FileNotFoundError, FileExistsError, AgencyError):
            raise
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath) as exc:
            raise FileNotFoundError(f"{what}: {exc.reason}") from exc
        except asyncssh.SFTPFileAlreadyExists as exc:
            raise FileExistsError(f"{what}: {exc.reason}") from exc
        except _FILE_ERRORS as exc:
            raise AgencyUnavailable(f"{self.agency}: sftp {what}: {exc.reason}", agency=self.agency) from exc
        except TimeoutError as exc:
            await self._drop()
            raise AgencyTimeout(f"{self.agency}: sftp {what}: timed out", agency=self.agency) from exc
        except (asyncssh.Error, OSError, EOFError) as exc:
            await self._drop()
            detail = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
            raise AgencyUnavailable(f"{self.agency}: sftp {what}: {detail}", agency=self.agency) from exc

    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        target = self._path(folder, safe_name(name))
        tmp = self._path(folder, temp_name(name, new_token()))
        async with self._op(f"write {folder}/{name}") as sftp:
            try:
                async with sftp.open(tmp, "xb") as f:
                    await f.write(data)
                    with suppress(asyncssh.SFTPOpUnsupported):
                        await f.fsync()
                await self._rename_replace(sftp, tmp, target)
            except BaseException:
                with suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await sftp.remove(tmp)
                raise

    async def _rename_replace(self, sftp: asyncssh.SFTPClient, src: str, dst: str) -> None:
        if self._posix_rename:
            try:
                await sftp.posix_rename(src, dst)
                return
            except asyncssh.SFTPOpUnsupported:
                self._posix_rename = False
        # Plain SFTP rename refuses to replace: a short window where `dst` is absent, never partial.
        with suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(dst)
        await sftp.rename(src, dst)

    async def list(self, folder: str) -> list[str]:
        try:
            async with self._op(f"list {folder}") as sftp:
                entries = await sftp.readdir(self._path(folder))
        except FileNotFoundError as exc:
            raise AgencyUnavailable(f"{self.agency}: no folder {folder}", agency=self.agency) from exc
        names = (e.filename for e in entries if e.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR)
        return sorted(n for n in names if isinstance(n, str) and n not in (".", ".."))

    async def read(self, folder: str, name: str, max_bytes: int) -> bytes:
        path = self._path(folder, source_name(name))
        async with self._op(f"read {folder}/{name}") as sftp, sftp.open(path, "rb") as f:
            size = (await f.stat()).size
            too_big = size is not None and size > max_bytes
            data = b"" if too_big else cast(bytes, await f.read(max_bytes + 1))  # binary mode: bytes
        if too_big or len(data) > max_bytes:
            raise FileTooLarge(f"{self.agency}: {name} exceeds {max_bytes} bytes", agency=self.agency)
        return data

    async def exists(self, folder: str, name: str) -> bool:
        path = self._path(folder, source_name(name))
        try:
            async with self._op(f"stat {folder}/{name}") as sftp:
                await sftp.lstat(path)
        except FileNotFoundError:
            return False
        return True

    async def move(self, src_folder: str, name: str, dst_folder: str, new_name: str | None = None) -> str:
        src = self._path(src_folder, source_name(name))
        dst_name = safe_name(new_name if new_name is not None else name)
        dst = self._path(dst_folder, dst_name)
        async with self._op(f"move {src_folder}/{name}") as sftp:
            try:
                await sftp.rename(src, dst)  # SFTP v3 rename never replaces
            except asyncssh.SFTPFailure:
                # OpenSSH answers a plain "failure" when the target exists
                if await sftp.exists(dst):
                    raise FileExistsError(f"{dst_folder}/{dst_name} exists") from None
                raise
        return dst_name

    async def remove(self, folder: str, name: str) -> None:
        path = self._path(folder, source_name(name))
        with suppress(FileNotFoundError):
            async with self._op(f"remove {folder}/{name}") as sftp:
                await sftp.remove(path)

    async def ensure_folder(self, folder: str) -> None:
        async with self._op(f"create {folder}") as sftp:
            await sftp.makedirs(self._path(folder), exist_ok=True)

    async def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            async with self._op("check") as sftp:
                ok = await sftp.isdir(self.root)
        except AgencyError as exc:
            return CheckResult(ok=False, detail=exc.message)
        ms = (time.perf_counter() - started) * 1000
        return CheckResult(
            ok=ok, detail=f"sftp {self.host}:{self.port}{'' if ok else ' no root folder'}", latency_ms=ms
        )

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "sftp",
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "root": self.root,
            "auth": "password" if self._password is not None else "key",
            "host_key_pinned": isinstance(self._known_hosts, tuple),
        }
