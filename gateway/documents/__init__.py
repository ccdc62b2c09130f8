"""Submitted documents: the content-addressed store, uploads, URL fetches, and what intake makes of them."""

from gateway.documents.base import (
    DigestMismatch,
    DocumentError,
    DocumentMissing,
    DocumentReader,
    DocumentStore,
    DocumentTooLarge,
    StoredDocument,
)
from gateway.documents.filesystem import FilesystemDocumentStore

__all__ = [
    "DigestMismatch",
    "DocumentError",
    "DocumentMissing",
    "DocumentReader",
    "DocumentStore",
    "DocumentTooLarge",
    "FilesystemDocumentStore",
    "StoredDocument",
]
