"""Durable state: dossiers, events, outbox jobs, idempotency keys, dossier-code sequences, the audit log."""

from typing import TYPE_CHECKING, Any

from gateway.store.base import AuditCheck, AuditEntry, AuditRecord, JobRecord, NewDossier, Store, UpdateOutcome
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import is_postgres_url

if TYPE_CHECKING:
    from gateway.store.postgres import PostgresStore


def __getattr__(name: str) -> Any:
    # PostgresStore loads psycopg (about 20 MiB): only a gateway on PostgreSQL imports it.
    if name == "PostgresStore":
        from gateway.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditCheck",
    "AuditEntry",
    "AuditRecord",
    "JobRecord",
    "NewDossier",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "UpdateOutcome",
    "is_postgres_url",
]
