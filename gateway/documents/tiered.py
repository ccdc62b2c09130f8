"""The documents as connectors and downloads read them, wherever they are kept: small ones sent inline in the
database (written with their dossier), the others in the document store's folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType

from gateway.documents.base import CHUNK, DocumentReader, DocumentStore
from gateway.store.base import Store

# The documents the claim of the job being delivered brought along (set in each delivery's own task):
# read from here, they cost the delivery no trip to the database.
CLAIMED: ContextVar[Mapping[str, bytes]] = ContextVar("claimed_documents", default=MappingProxyType({}))


class Documents(DocumentReader):
    def __init__(self, store: Store, files: DocumentStore) -> None:
        self.store = store
        self.files = files

    async def read(self, sha256: str) -> bytes:
        content = CLAIMED.get().get(sha256)
        if content is None:
            content = await self.store.document_content(sha256)
        return content if content is not None else await self.files.read(sha256)

    async def chunks(self, sha256: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        content = CLAIMED.get().get(sha256)
        if content is None:
            content = await self.store.document_content(sha256)
        if content is None:
            async for chunk in self.files.chunks(sha256, chunk_size):
                yield chunk
            return
        for i in range(0, len(content), chunk_size):
            yield content[i : i + chunk_size]

    async def exists(self, sha256: str) -> bool:
        return await self.files.exists(sha256) or await self.store.document_content(sha256) is not None

    async def in_folder(self, sha256: str) -> bool:
        """Whether it is a file of the folder (which can be sent with sendfile: `files.local_path`)."""
        return await self.files.exists(sha256)
