"""A 50 MiB upload streams through a real `lienthong serve` process: its resident memory (from /proc) grows by
less than 10 MiB while the document goes to the document store, and the stored file is the document."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.sandbox.demo import DEMO_KEYS
from gateway.sandbox.launcher import Stack
from tests.gateway.conftest import CONF

pytestmark = pytest.mark.slow
MIB = 1024 * 1024
SIZE = 50 * MIB


def piece(i: int) -> bytes:
    """The i-th MiB of the document: a PDF's header first, then bytes that do not compress."""
    data = random.Random(i).randbytes(MIB)
    return b"%PDF-1.7\n" + data[9:] if i == 0 else data


async def document() -> AsyncIterator[bytes]:
    for i in range(SIZE // MIB):
        yield await asyncio.to_thread(piece, i)


def sha256_of_document() -> bytes:
    h = hashlib.sha256()
    for i in range(SIZE // MIB):
        h.update(piece(i))
    return h.digest()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def upload(
    session: aiohttp.ClientSession, url: str, body: object, digest: bytes | None = None
) -> dict[str, object]:
    headers = {"X-Api-Key": DEMO_KEYS["centre-hanoi"], "Content-Type": "application/pdf"}
    if digest is not None:
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode()}:"
    async with session.post(f"{url}/v1/documents", data=body, headers=headers) as r:
        answer: dict[str, object] = await r.json()
        assert r.status == 201, answer
        return answer


async def test_a_50_mib_upload_streams_through_the_gateway_in_little_memory(tmp_path: Path) -> None:
    digest = await asyncio.to_thread(sha256_of_document)
    stack = Stack(CONF, tmp_path, [])
    gw = await stack.start_gateway()
    pid = gw.proc.pid
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(3):  # warm up: the upload path's code and buffers, the store's threads
                await upload(session, stack.gateway_url, b"%PDF-1.7\n" + piece(100 + i)[: MIB // 2])
            await asyncio.sleep(0.2)
            before = await asyncio.to_thread(rss_kib, pid)
            peak = before
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, await asyncio.to_thread(rss_kib, pid))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            try:
                answer = await upload(session, stack.gateway_url, document(), digest)
            finally:
                done.set()
                await sampler
            peak = max(peak, await asyncio.to_thread(rss_kib, pid))
        grown = (peak - before) / 1024
        print(f"gateway RSS {before / 1024:.1f} MiB before, {peak / 1024:.1f} MiB at most: grew {grown:.1f} MiB")
        assert answer["size"] == SIZE and answer["sha256"] == digest.hex()
        assert grown < 10, f"the gateway's RSS grew by {grown:.1f} MiB during a {SIZE // MIB} MiB upload"
        stored = tmp_path / "documents" / digest.hex()[:2] / digest.hex()[2:4] / digest.hex()
        assert (await asyncio.to_thread(stored.stat)).st_size == SIZE
    finally:
        await stack.stop()
