"""Where exchanged files live: a small async storage interface and the local drop-folder backend.

Contract shared by every backend:
- `folder` is configuration (checked with `safe_folder`); a name we create must pass `safe_name`;
  a source name that came from `list()` must at least be a single path component.
- Missing file -> FileNotFoundError, move onto an existing name -> FileExistsError, answer over
  the size limit -> FileTooLarge; any other storage failure -> AgencyUnavailable / AgencyTimeout
  (retryable), so a caller never sees OSError or asyncssh errors.
- `list()` returns regular files only: no directories, no symlinks (a link could point anywhere).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from abc import ABC, abstractmethod
from asyncio import to_thread
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.base import CheckResult
from adapters.file.naming import (
    UnsafeName,
    is_single_component,
    safe_folder,
    safe_name,
    temp_name,
)
from gateway.errors import AgencyError, AgencyUnavailable, UnsafeAnswer


class FileTooLarge(UnsafeAnswer):
    """The file is larger than the caller's limit; it was not read whole."""


def new_token() -> str:
    return secrets.token_hex(8)


def source_name(name: str) -> str:
    if not is_single_component(name):
        raise UnsafeName(f"unsafe file name {name!r}")
    return name


class FileStore(ABC):
    """Async file storage rooted somewhere; every path is `folder/name` under that root."""

    agency: str = ""

    @abstractmethod
    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        """Write to `.<name>.tmp-<random>` in `folder`, then rename over `name` (replacing it)."""

    @abstractmethod
    async def list(self, folder: str) -> list[str]:
        """Names of the regular files in `folder`, sorted."""

    @abstractmethod
    async def read(self, folder: str, name: str, max_bytes: int) -> bytes: ...

    @abstractmethod
    async def exists(self, folder: str, name: str) -> bool: ...

    @abstractmethod
    async def move(self, src_folder: str, name: str, dst_folder: str, new_name: str | None = None) -> str:
        """Rename into `dst_folder`, never replacing an existing file; returns the new name."""

    @abstractmethod
    async def remove(self, folder: str, name: str) -> None:
        """Delete a file; a missing file is not an error."""

    @abstractmethod
    async def ensure_folder(self, folder: str) -> None: ...

    @abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # nothing to release for most backends
        return None

    def describe(self) -> dict[str, Any]:
        return {}


class LocalFolderStore(FileStore):
    """A directory on this machine (often a mounted share); every blocking call runs in a thread."""

    def __init__(self, root: str | os.PathLike[str], *, agency: str = "") -> None:
        self.root = Path(root)
        self.agency = agency

    def _dir(self, folder: str) -> Path:
        return self.root / safe_folder(folder)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (FileNotFoundError, FileExistsError, AgencyError):
            raise
        except OSError as exc:
            raise AgencyUnavailable(f"{self.agency}: drop folder {what}: {exc}", agency=self.agency) from exc

    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        target = self._dir(folder) / safe_name(name)
        tmp = target.with_name(temp_name(name, new_token()))
        with self._errors(f"write {folder}/{name}"):
            await to_thread(_write_then_rename, tmp, target, data)

    async def list(self, folder: str) -> list[str]:
        path = self._dir(folder)
        try:
            with self._errors(f"list {folder}"):
                return await to_thread(_list_regular, path)
        except FileNotFoundError as exc:  # the folder itself is gone: an unmounted share
            raise AgencyUnavailable(f"{self.agency}: no folder {folder}", agency=self.agency) from exc

    async def read(self, folder: str, name: str, max_bytes: int) -> bytes:
        path = self._dir(folder) / source_name(name)
        with self._errors(f"read {folder}/{name}"):
            data = await to_thread(_read_limited, path, max_bytes)
        if data is None:
            raise FileTooLarge(f"{self.agency}: {name} exceeds {max_bytes} bytes", agency=self.agency)
        return data

    async def exists(self, folder: str, name: str) -> bool:
        path = self._dir(folder) / source_name(name)
        with self._errors(f"stat {folder}/{name}"):
            return await to_thread(os.path.lexists, path)

    async def move(self, src_folder: str, name: str, dst_folder: str, new_name: str | None = None) -> str:
        src = self._dir(src_folder) / source_name(name)
        dst_name = safe_name(new_name if new_name is not None else name)
        dst = self._dir(dst_folder) / dst_name
        with self._errors(f"move {src_folder}/{name}"):
            await to_thread(_rename_no_replace, src, dst)
        return dst_name

    async def remove(self, folder: str, name: str) -> None:
        path = self._dir(folder) / source_name(name)
        with self._errors(f"remove {folder}/{name}"):
            await to_thread(path.unlink, True)

    async def ensure_folder(self, folder: str) -> None:
        path = self._dir(folder)
        with self._errors(f"create {folder}"):
            # Never create the root: if a share is not mounted, we must not fill the bare mount point.
            if not await to_thread(self.root.is_dir):
                raise AgencyUnavailable(f"{self.agency}: no drop folder {self.root}", agency=self.agency)
            await to_thread(path.mkdir, 0o750, True, True)

    async def check(self) -> CheckResult:
        started = time.perf_counter()
        ok = await to_thread(lambda: self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK))
        ms = (time.perf_counter() - started) * 1000
        return CheckResult(
            ok=ok, detail=str(self.root) if ok else f"{self.root}: missing or not writable", latency_ms=ms
        )

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "root": str(self.root)}


# Blocking helpers: only ever called through asyncio.to_thread.


def _write_then_rename(tmp: Path, target: Path, data: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the data
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _list_regular(path: Path) -> list[str]:
    with os.scandir(path) as entries:
        return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))


def _read_limited(path: Path, max_bytes: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink: treat as absent, never follow it
            raise FileNotFoundError(errno.ENOENT, "symlink refused", str(path)) from exc
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a regular file", str(path))
        data = f.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


def _rename_no_replace(src: Path, dst: Path) -> None:
    # link+unlink is an atomic "rename unless it exists"; shares without hard links fall back
    # to check-then-rename, which is fine with the one poller per inbox we require.
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from exc
        os.rename(src, dst)
        return
    os.unlink(src)
