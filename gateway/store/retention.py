"""Operational rows pruned by age, a batch per transaction (store/base.py: Store.prune). Dossiers, their
events and the audit log are never touched: their retention is the agencies' legal matter.

- Done jobs older than the age: deleted when a later job of the same dossier exists; a dossier's latest
  job is its delivery state (the dossier's and its bundle's views read it), so it is kept, emptied of
  its inputs (a supplement's payload).
- Idempotency keys older than the age: a request repeated after it is a new request.
- Callback nonces are pruned past their replay window as they are written (replay.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Pruned:
    jobs: int
    inputs: int
    keys: int

    @property
    def total(self) -> int:
        return self.jobs + self.inputs + self.keys


def prune(conn: sqlite3.Connection, jobs_before: float, keys_before: str, batch: int) -> Pruned:
    """One batch of each kind, in the caller's transaction."""
    jobs = conn.execute(
        "DELETE FROM jobs WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 'done' AND j.updated_at < ? "
        "AND j.id < (SELECT MAX(l.id) FROM jobs l WHERE l.dossier_id = j.dossier_id) LIMIT ?)",
        (jobs_before, batch),
    ).rowcount
    inputs = conn.execute(
        "UPDATE jobs SET inputs = '{}' WHERE id IN (SELECT id FROM jobs WHERE state = 'done' AND updated_at < ? "
        "AND inputs <> '{}' LIMIT ?)",
        (jobs_before, batch),
    ).rowcount
    keys = conn.execute(
        "DELETE FROM idempotency_keys WHERE (client_id, key) IN "
        "(SELECT client_id, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
        (keys_before, batch),
    ).rowcount
    return Pruned(jobs, inputs, keys)
