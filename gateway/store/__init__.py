"""Durable state: dossiers, events, outbox jobs, idempotency keys, dossier-code sequences, the audit log."""

from gateway.store.base import AuditCheck, AuditEntry, AuditRecord, JobRecord, NewDossier, Store, UpdateOutcome
from gateway.store.postgres import PostgresStore, is_postgres_url
from gateway.store.sqlite import SqliteStore

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
