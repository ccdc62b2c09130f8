"""The document store on a folder: streamed puts checked as they arrive, atomic and private files,
deduplication, discard of a refused submission's documents, the sweep of what nobody names, and a disk
that fills up."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.documents import DigestMismatch, DocumentMissing, DocumentTooLarge, FilesystemDocumentStore
from gateway.documents.base import CHUNK
from gateway.errors import StorageUnavailable
from gateway.sandbox.disk import DiskUnavailable, SmallDisk


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[FilesystemDocumentStore]:
    store = FilesystemDocumentStore(tmp_path / "documents")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def stream(data: bytes, piece: int = 10_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]
        await asyncio.sleep(0)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def listing(root: Path) -> list[Path]:
    return await asyncio.to_thread(files, root)


DATA = os.urandom(3 * CHUNK + 123)
SHA = hashlib.sha256(DATA).hexdigest()


async def test_put_streams_hashes_and_reads_back(docs: FilesystemDocumentStore) -> None:
    stored = await docs.put(stream(DATA), max_bytes=len(DATA))
    assert (stored.sha256, stored.size, stored.created) == (SHA, len(DATA), True)
    assert await docs.read(SHA) == DATA
    assert b"".join([c async for c in docs.chunks(SHA, 1000)]) == DATA
    assert await docs.exists(SHA)
    path = docs.local_path(SHA)
    assert path == docs.root / SHA[:2] / SHA[2:4] / SHA
    mode = (await asyncio.to_thread(path.stat)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert await listing(docs.root / "tmp") == []  # the temporary file became the document


async def test_the_same_document_is_stored_once_and_touched(docs: FilesystemDocumentStore) -> None:
    first = await docs.put(stream(DATA), max_bytes=len(DATA))
    path = docs.local_path(SHA)
    await asyncio.to_thread(os.utime, path, (1_000_000, 1_000_000))  # as if stored long ago
    again = await docs.put_bytes(DATA)
    assert again.created is False and again.sha256 == first.sha256
    assert again.mtime_ns > 1_000_000 * 10**9  # touched: a sweep must not take it now
    assert len(await listing(docs.root)) == 1


@pytest.mark.parametrize("limit", [len(DATA) - 1, 1])
async def test_too_large_stores_nothing(docs: FilesystemDocumentStore, limit: int) -> None:
    with pytest.raises(DocumentTooLarge):
        await docs.put(stream(DATA), max_bytes=limit)
    assert await listing(docs.root) == []


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_a_wrong_digest_stores_nothing(docs: FilesystemDocumentStore, algorithm: str) -> None:
    wrong = hashlib.new(algorithm, b"another document").hexdigest()
    with pytest.raises(DigestMismatch) as exc:
        await docs.put(stream(DATA), max_bytes=len(DATA), expected={algorithm: wrong})
    assert exc.value.algorithm == algorithm and exc.value.actual == hashlib.new(algorithm, DATA).hexdigest()
    assert await listing(docs.root) == []


async def test_the_right_digests_pass(docs: FilesystemDocumentStore) -> None:
    expected = {"sha256": SHA, "sha512": hashlib.sha512(DATA).hexdigest().upper()}  # hex in either case
    assert (await docs.put(stream(DATA), max_bytes=len(DATA), expected=expected)).sha256 == SHA


async def test_a_cancelled_put_leaves_nothing(docs: FilesystemDocumentStore) -> None:
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield DATA[:CHUNK]
        yield DATA[CHUNK : 2 * CHUNK]
        started.set()
        await asyncio.sleep(30)
        yield DATA[2 * CHUNK :]

    task = asyncio.create_task(docs.put(slow(), max_bytes=len(DATA)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the pool removes the abandoned part without the cancelled task waiting for it
        if not await listing(docs.root):
            break
        await asyncio.sleep(0.02)
    assert await listing(docs.root) == []


async def test_missing_documents(docs: FilesystemDocumentStore) -> None:
    with pytest.raises(DocumentMissing):
        await docs.read(SHA)
    with pytest.raises(DocumentMissing):
        [c async for c in docs.chunks(SHA)]
    with pytest.raises(DocumentMissing):
        await docs.read("../../etc/passwd")  # only sha256 names reach the file system
    assert not await docs.exists(SHA)


async def test_discard_removes_only_what_the_put_created_and_nobody_touched(docs: FilesystemDocumentStore) -> None:
    mine = await docs.put_bytes(DATA)
    await docs.discard(mine)
    assert not await docs.exists(SHA)

    mine = await docs.put_bytes(DATA)
    await asyncio.to_thread(os.utime, docs.local_path(SHA), (1_000_000, 1_000_000))
    theirs = await docs.put_bytes(DATA)  # another submission stored the same document meanwhile
    await docs.discard(mine)
    assert await docs.exists(SHA)  # still theirs
    await docs.discard(theirs)  # not created by that put: kept
    assert await docs.exists(SHA)


async def test_sweep_deletes_old_documents_nobody_names(docs: FilesystemDocumentStore) -> None:
    old = [await docs.put_bytes(f"document {i}".encode()) for i in range(5)]
    young = await docs.put_bytes(b"just stored")
    for d in old:
        await asyncio.to_thread(os.utime, docs.local_path(d.sha256), (1_000_000, 1_000_000))
    named = {old[0].sha256, old[1].sha256}
    asked: list[str] = []

    async def referenced(shas: list[str]) -> set[str]:
        asked.extend(shas)
        return named & set(shas)

    removed = await docs.sweep(referenced, older_than=3600)
    assert removed == 3
    assert young.sha256 not in asked  # too young to be considered
    for d in old:
        assert await docs.exists(d.sha256) == (d.sha256 in named)
    assert await docs.exists(young.sha256)


async def test_sweep_walks_a_few_folders_per_run(docs: FilesystemDocumentStore) -> None:
    stored = [await docs.put_bytes(f"document {i}".encode()) for i in range(40)]
    for d in stored:
        await asyncio.to_thread(os.utime, docs.local_path(d.sha256), (1_000_000, 1_000_000))

    async def nobody(shas: list[str]) -> set[str]:
        return set()

    tops = len({d.sha256[:2] for d in stored})
    removed = 0
    for _ in range(tops):
        n = await docs.sweep(nobody, older_than=60, shards=1)
        assert n >= 1
        removed += n
    assert removed == 40
    assert [p for p in await listing(docs.root)] == []


async def test_sweep_spares_a_document_stored_again_while_it_ran(docs: FilesystemDocumentStore) -> None:
    d = await docs.put_bytes(DATA)
    await asyncio.to_thread(os.utime, docs.local_path(SHA), (1_000_000, 1_000_000))

    async def stored_again_meanwhile(shas: list[str]) -> set[str]:
        await docs.put_bytes(DATA)  # a submission of the same document, its row not yet committed
        return set()

    assert await docs.sweep(stored_again_meanwhile, older_than=3600) == 0
    assert await docs.read(d.sha256) == DATA


async def test_touch_marks_a_document_stored_now(docs: FilesystemDocumentStore) -> None:
    await docs.put_bytes(DATA)
    await asyncio.to_thread(os.utime, docs.local_path(SHA), (1_000_000, 1_000_000))
    assert await docs.touch(SHA)
    assert (await asyncio.to_thread(docs.local_path(SHA).stat)).st_mtime > 1_000_000
    assert not await docs.touch(hashlib.sha256(b"never stored").hexdigest())

    async def nobody(shas: list[str]) -> set[str]:
        return set()

    assert await docs.sweep(nobody, older_than=3600) == 0  # touched: too young to go


async def test_a_full_disk_keeps_nothing_answers_unavailable_and_recovers(tmp_path: Path) -> None:
    """The folder on a real filesystem that fills up (a small tmpfs): a put the disk cannot take leaves no
    temporary file and raises StorageUnavailable (503 with Retry-After at the API), once logged; the same
    put succeeds once there is room again."""
    disk = SmallDisk(tmp_path / "disk", size_mb=4)
    try:
        await disk.mount()
    except DiskUnavailable as exc:
        pytest.skip(f"a tmpfs cannot be mounted here ({exc})")
    store = FilesystemDocumentStore(disk.path / "documents")
    try:
        await store.open()
        await disk.fill(leave=64 * 1024)  # room for small writes, not for the document
        with capture_logs() as logs, pytest.raises(StorageUnavailable) as refused:
            await store.put(stream(DATA), max_bytes=len(DATA))
        with pytest.raises(StorageUnavailable):
            await store.put(stream(DATA), max_bytes=len(DATA))  # the same episode: no second line
        assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "5"
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["storage_fault"]
        assert await listing(store.root) == []  # not even a temporary file
        await disk.free()
        stored = await store.put(stream(DATA), max_bytes=len(DATA))
        assert (stored.sha256, await store.read(SHA)) == (SHA, DATA)
    finally:
        await store.close()
        await disk.unmount()
