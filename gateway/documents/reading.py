"""What a connector reads a dossier's documents with: their bytes, whole or in chunks, by attachment."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from contracts import Attachment
from gateway.connector import ConnectorContext
from gateway.documents.base import CHUNK, DocumentMissing
from gateway.errors import PermanentAgencyError


def _missing(ctx: ConnectorContext, a: Attachment) -> PermanentAgencyError:
    return PermanentAgencyError(
        f"{ctx.agency}: document {a.component_code} {a.name!r} ({a.sha256}) is not in the gateway's document store",
        agency=ctx.agency,
    )


async def document_bytes(ctx: ConnectorContext, a: Attachment) -> bytes:
    """The whole document, for wires that carry it inline (base64 in JSON, XML or SOAP)."""
    if a.content_base64 is not None:  # a dossier accepted before the document store kept its content inline
        return base64.b64decode(a.content_base64)
    if ctx.documents is None or a.sha256 is None:
        raise _missing(ctx, a)
    try:
        return await ctx.documents.read(a.sha256)
    except DocumentMissing:
        raise _missing(ctx, a) from None


async def document_chunks(ctx: ConnectorContext, a: Attachment, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """The document piece by piece, for wires that stream it (multipart parts, files)."""
    if a.content_base64 is not None:
        yield base64.b64decode(a.content_base64)
        return
    if ctx.documents is None or a.sha256 is None:
        raise _missing(ctx, a)
    try:
        async for chunk in ctx.documents.chunks(a.sha256, chunk_size):
            yield chunk
    except DocumentMissing:
        raise _missing(ctx, a) from None
