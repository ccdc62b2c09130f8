"""The sweep: uploads no dossier named in time are forgotten, and stored documents nobody names are deleted.

Each run forgets the expired uploads, then walks a sixteenth of the document store (a full pass every
sixteen runs: about 80 minutes with the default five-minute interval) and deletes what neither a dossier
nor an upload names and was last stored longer ago than `orphan_grace`: expired uploads, and documents a
crash left between their put and the commit of the dossier naming them.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from gateway.config.model import DocumentsSettings
from gateway.documents.base import DocumentStore
from gateway.store.base import Store

log = structlog.get_logger("lienthong.documents")
SHARDS_PER_RUN = 16


async def sweep_once(store: Store, documents: DocumentStore, settings: DocumentsSettings, shards: int | None) -> int:
    expired = await store.expire_uploads(time.time())
    removed = await documents.sweep(store.documents_named, older_than=settings.orphan_grace, shards=shards)
    removed += await store.sweep_documents(time.time() - settings.orphan_grace)
    if expired or removed:
        log.info("documents_swept", uploads_expired=expired, documents_deleted=removed)
    return removed


async def sweep_documents(store: Store, documents: DocumentStore, settings: DocumentsSettings) -> None:
    while True:
        await asyncio.sleep(settings.sweep_interval)
        try:
            await sweep_once(store, documents, settings, SHARDS_PER_RUN)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("documents_sweep_failed")
