"""Shared by the plugins' tests: a real document store on a temporary folder, and submissions whose
attachments are moved into it as the gateway's intake does (references left in the submission)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.documents import FilesystemDocumentStore


@pytest.fixture
async def documents(tmp_path: Path) -> AsyncIterator[FilesystemDocumentStore]:
    store = FilesystemDocumentStore(tmp_path / "documents")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def stored(documents: FilesystemDocumentStore, submission: dict[str, Any]) -> dict[str, Any]:
    """The submission as the gateway keeps it: each inline document in the store, a reference in its place."""
    out = []
    for a in submission.get("attachments", []):
        if a.get("content_base64") is not None:
            await documents.put_bytes(base64.b64decode(a["content_base64"]))
            a = {k: v for k, v in a.items() if k != "content_base64"}
        out.append(a)
    return {**submission, "attachments": out}


async def tamper(documents: FilesystemDocumentStore, sha256: str, content: bytes) -> None:
    """Replace a stored document's bytes behind the store's back (a damaged disk, an intruder)."""
    await asyncio.to_thread(documents.path(sha256).write_bytes, content)
