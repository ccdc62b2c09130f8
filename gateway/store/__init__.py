"""Durable state: dossiers, events, outbox jobs, idempotency keys, dossier-code sequences, the audit log."""

from gateway.store.base import AuditCheck, AuditEntry, AuditRecord, JobRecord, NewDossier, Store, UpdateOutcome
from gateway.store.sqlite import SqliteStore

__all__ = [
    "AuditCheck",
    "AuditEntry",
    "AuditRecord",
    "JobRecord",
    "NewDossier",
    "SqliteStore",
    "Store",
    "UpdateOutcome",
]
