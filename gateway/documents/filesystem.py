"""The document store on a local folder: `<root>/ab/cd/<sha256>`, files 0600, written atomically.

A put writes a temporary file in `<root>/tmp` (hashing as it goes), fsyncs it, and renames it to its
name, then fsyncs the folder: a document is either whole under its name or absent, whatever crashes.
All file I/O runs in the store's own small thread pool, never on the event loop.

The sweep and a put of the same document never race: both take the same lock stripe; a put that finds
its document already there touches it (mtime now), and the sweep deletes only files whose mtime is
older than its grace period, checked again under the lock just before it unlinks. So a document is
never deleted between the put that stored it and the commit of the row naming it, as long as that
takes less than the grace period (an hour by default).

A put the disk cannot take (full, an I/O error, read-only) keeps nothing and raises StorageUnavailable
(503 with Retry-After, as a database write that fails the same way); one log line per episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

import structlog

from gateway.documents.base import (
    CHUNK,
    DocumentMissing,
    DocumentStore,
    DocumentTooLarge,
    Hashes,
    Referenced,
    StoredDocument,
    is_sha256,
)
from gateway.errors import StorageUnavailable
from gateway.store.health import Episodes

T = TypeVar("T")
STRIPES = 64
SWEEP_BATCH = 500
TMP = "tmp"
# What says the storage, not the document, failed: a full disk or quota, an I/O error, a read-only mount.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


class _Temp:
    """A document being written. Its operations hold `lock`: a put abandoned while a write of it is still
    running in a worker thread must not close the file under that write."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self.file = file
        self.closed = False
        self.lock = threading.Lock()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_at(path: Path, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


class FilesystemDocumentStore(DocumentStore):
    def __init__(self, root: Path | str, *, threads: int = 16) -> None:
        self.root = Path(root)
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        self._cursor = 0  # the next top-level folder the sweep walks
        self.episodes = Episodes(logger=structlog.get_logger("lienthong.documents"))

    # -- life cycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="lienthong-documents")
        await self._run(self._prepare)

    def _prepare(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / TMP).mkdir(mode=0o700, exist_ok=True)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            raise RuntimeError("the document store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise DocumentMissing(f"{sha256!r} is not a sha256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def local_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    def _stripe(self, sha256: str) -> threading.Lock:
        return self._stripes[int(sha256[:4], 16) % STRIPES]

    # -- reading ------------------------------------------------------------------------------------

    async def read(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            return await self._run(path.read_bytes)
        except FileNotFoundError:
            raise DocumentMissing(f"no document {sha256}") from None

    async def chunks(self, sha256: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        # Each chunk opens and closes the file: a consumer that stops early (a request refused before its
        # body was read) leaves no file open behind the abandoned generator.
        path = self.path(sha256)
        offset = 0
        while True:
            try:
                data = await self._run(_read_at, path, offset, chunk_size)
            except FileNotFoundError:
                raise DocumentMissing(f"no document {sha256}") from None
            if not data:
                return
            offset += len(data)
            yield data

    async def exists(self, sha256: str) -> bool:
        return await self._run(self.path(sha256).is_file)

    # -- writing ------------------------------------------------------------------------------------

    async def put(
        self, chunks: AsyncIterable[bytes], *, max_bytes: int, expected: Mapping[str, str] | None = None
    ) -> StoredDocument:
        try:
            stored = await self._put(chunks, max_bytes=max_bytes, expected=expected)
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            # The disk, not the document: nothing was kept (the temporary file is gone), and the same
            # request may be sent again once there is room. One log line per episode, as for the database.
            self.episodes.failed(exc)
            raise StorageUnavailable(f"the document store cannot write now ({os.strerror(exc.errno)})") from exc
        self.episodes.committed()
        return stored

    async def _put(
        self, chunks: AsyncIterable[bytes], *, max_bytes: int, expected: Mapping[str, str] | None
    ) -> StoredDocument:
        hashes = Hashes(expected)
        temp = await self._run(self._create_temp)
        try:
            size = 0
            buf = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise DocumentTooLarge(max_bytes)
                buf += chunk
                if len(buf) >= CHUNK:  # whole chunks to the worker: fewer trips off the loop
                    data = bytes(buf)
                    buf.clear()
                    await self._run(self._write, temp, data, hashes)
            if buf:
                await self._run(self._write, temp, bytes(buf), hashes)
            sha = hashes.check()
            return await self._run(self._commit, temp, sha, size)
        except asyncio.CancelledError:
            if self._pool is not None:  # handed to the pool without waiting: a cancelled task must not wait
                self._pool.submit(self._abandon, temp)
            raise
        except BaseException:
            await self._run(self._abandon, temp)
            raise

    def _create_temp(self) -> _Temp:
        path = self.root / TMP / f"{secrets.token_hex(16)}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return _Temp(path, os.fdopen(fd, "wb"))

    def _write(self, temp: _Temp, data: bytes, hashes: Hashes) -> None:
        with temp.lock:
            if temp.closed:
                raise RuntimeError("the document was abandoned")
            hashes.update(data)  # hashlib releases the GIL on large buffers
            temp.file.write(data)

    def _commit(self, temp: _Temp, sha256: str, size: int) -> StoredDocument:
        with temp.lock:
            temp.file.flush()
            os.fsync(temp.file.fileno())
            temp.file.close()
            temp.closed = True
        target = self.path(sha256)
        self._ensure_dir(target.parent)
        with self._stripe(sha256):
            try:
                st = target.stat()
            except FileNotFoundError:
                st = None
            if st is not None and st.st_size == size:
                os.utime(target)  # stored again: a sweep must not take it now
                temp.path.unlink()
                return StoredDocument(sha256, size, False, target.stat().st_mtime_ns)
            os.replace(temp.path, target)  # a file of the wrong size under this name was damaged: replaced
            _fsync_dir(target.parent)
            return StoredDocument(sha256, size, True, target.stat().st_mtime_ns)

    def _ensure_dir(self, folder: Path) -> None:
        if folder.is_dir():
            return
        for d in (folder.parent, folder):
            if not d.is_dir():
                d.mkdir(mode=0o700, exist_ok=True)
                _fsync_dir(d.parent)

    def _abandon(self, temp: _Temp) -> None:
        with temp.lock:
            if not temp.closed:
                temp.closed = True
                with contextlib.suppress(OSError):
                    temp.file.close()
        with contextlib.suppress(FileNotFoundError):
            temp.path.unlink()

    async def touch(self, sha256: str) -> bool:
        return await self._run(self._touch, sha256)

    def _touch(self, sha256: str) -> bool:
        with self._stripe(sha256):
            try:
                os.utime(self.path(sha256))
            except FileNotFoundError:
                return False
        return True

    async def discard(self, document: StoredDocument) -> None:
        if document.created:
            await self._run(self._discard, document)

    def _discard(self, document: StoredDocument) -> None:
        target = self.path(document.sha256)
        with self._stripe(document.sha256):
            try:
                if target.stat().st_mtime_ns == document.mtime_ns:
                    target.unlink()
            except FileNotFoundError:
                pass

    # -- sweeping -----------------------------------------------------------------------------------

    async def sweep(self, referenced: Referenced, *, older_than: float, shards: int | None = None) -> int:
        cutoff = time.time_ns() - int(older_than * 1e9)
        tops = await self._run(self._tops)
        if shards is not None and tops:
            start = self._cursor % len(tops)
            chosen = (tops[start:] + tops[:start])[:shards]
            self._cursor = start + len(chosen)
        else:
            chosen = tops
        removed = 0
        for top in chosen:
            old = await self._run(self._old_documents, top, cutoff)
            for i in range(0, len(old), SWEEP_BATCH):
                batch = old[i : i + SWEEP_BATCH]
                named = await referenced(batch)
                for sha in batch:
                    if sha not in named:
                        removed += await self._run(self._remove_if_old, sha, cutoff)
        await self._run(self._remove_old_temps, cutoff)
        return removed

    def _tops(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != TMP)

    def _old_documents(self, top: str, cutoff: int) -> list[str]:
        out = []
        for sub in (self.root / top).iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if is_sha256(f.name) and f.stat().st_mtime_ns < cutoff:
                        out.append(f.name)
        return out

    def _remove_if_old(self, sha256: str, cutoff: int) -> int:
        target = self.path(sha256)
        with self._stripe(sha256):
            try:
                if target.stat().st_mtime_ns >= cutoff:
                    return 0  # stored again since it was listed
                target.unlink()
            except FileNotFoundError:
                return 0
        return 1

    def _remove_old_temps(self, cutoff: int) -> None:
        """Parts of puts a crash interrupted."""
        for f in (self.root / TMP).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if f.stat().st_mtime_ns < cutoff:
                    f.unlink()
