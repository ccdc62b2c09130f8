"""Durable state: dossiers, events, outbox jobs, idempotency keys, dossier-code sequences."""

from gateway.store.base import JobRecord, NewDossier, Store, UpdateOutcome
from gateway.store.sqlite import SqliteStore

__all__ = ["JobRecord", "NewDossier", "SqliteStore", "Store", "UpdateOutcome"]
