"""A small filesystem to fill: a tmpfs mounted for a run, so that a full disk can be tried for real.

Mounting needs CAP_SYS_ADMIN (root, or a container allowed to mount); `SmallDisk.mount` raises
DiskUnavailable with the system's answer otherwise, and the caller says what it skipped. Used by the
durability test and the durability run (bench/durability.py), never by the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from pathlib import Path

FILLER = ".filler"


class DiskUnavailable(RuntimeError):
    """A tmpfs cannot be mounted here."""


class SmallDisk:
    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    async def _run(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace").strip()

    async def mount(self) -> None:
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        try:
            rc, out = await self._run(
                "mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0700", "tmpfs", str(self.path)
            )
        except OSError as exc:  # no mount command
            raise DiskUnavailable(str(exc)) from exc
        if rc != 0:
            raise DiskUnavailable(out or f"mount exited with {rc}")
        self.mounted = True

    async def unmount(self) -> None:
        if self.mounted:
            await self._run("umount", "-l", str(self.path))
            self.mounted = False

    async def fill(self, leave: int = 0) -> int:
        """Write a filler file until the filesystem is full, or until only `leave` bytes are free; returns
        the bytes it took."""
        return await asyncio.to_thread(self._fill, leave)

    def _fill(self, leave: int) -> int:
        written = 0
        fd = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):  # down to the last byte
                block = b"\0" * size
                while self._free() - size >= leave:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def _free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    async def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.remove, self.path / FILLER)

    async def __aenter__(self) -> SmallDisk:
        await self.mount()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unmount()
