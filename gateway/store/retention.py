"""Operational rows pruned by age (store/base.py: Store.prune). Dossiers, their events and the audit log
are never touched: their retention is the agencies' legal matter.

- Done jobs whose last attempt was due before the age (`next_at`, in the outbox's (agency, state,
  next_at) index): deleted when a later job of the same dossier exists; a dossier's latest job is its
  delivery state (the dossier's and its bundle's views read it), so it is kept, emptied of its inputs.
- Idempotency keys created before the age: a request repeated after it is a new request.
- Callback nonces are pruned past their replay window as they are written (replay.py).

Each batch is chosen by a reader and removed by the writer by primary key, so the writer, which every
submission waits for, never scans.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pruned:
    jobs: int
    inputs: int
    keys: int

    @property
    def total(self) -> int:
        return self.jobs + self.inputs + self.keys


@dataclass(frozen=True)
class Batch:
    superseded: list[int] = field(default_factory=list)  # done jobs with a later job of their dossier
    latest: list[int] = field(default_factory=list)  # done jobs that are their dossier's latest, with inputs
    keys: list[tuple[str, str]] = field(default_factory=list)  # (client_id, key)


def choose(
    conn: sqlite3.Connection, agencies: Sequence[str], jobs_before: float, keys_before: str, batch: int
) -> Batch:
    """A batch of each kind (a reader's work)."""
    superseded: list[int] = []
    latest: list[int] = []
    for agency in agencies:
        if len(superseded) < batch:
            superseded += [
                r[0]
                for r in conn.execute(
                    "SELECT j.id FROM jobs j WHERE j.agency = ? AND j.state = 'done' AND j.next_at < ? "
                    "AND j.id < (SELECT MAX(l.id) FROM jobs l WHERE l.dossier_id = j.dossier_id) LIMIT ?",
                    (agency, jobs_before, batch - len(superseded)),
                )
            ]
        if len(latest) < batch:
            latest += [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM jobs WHERE agency = ? AND state = 'done' AND next_at < ? AND inputs <> '{}' "
                    "LIMIT ?",
                    (agency, jobs_before, batch - len(latest)),
                )
            ]
    keys = [
        (str(c), str(k))
        for c, k in conn.execute(
            "SELECT client_id, key FROM idempotency_keys WHERE created_at < ? LIMIT ?", (keys_before, batch)
        )
    ]
    return Batch(superseded, [i for i in latest if i not in set(superseded)], keys)


def remove(conn: sqlite3.Connection, chosen: Batch) -> Pruned:
    """The writer's part, by primary key, each row checked again (still done)."""
    jobs = sum(
        conn.execute("DELETE FROM jobs WHERE id = ? AND state = 'done'", (i,)).rowcount for i in chosen.superseded
    )
    inputs = sum(
        conn.execute("UPDATE jobs SET inputs = '{}' WHERE id = ? AND state = 'done'", (i,)).rowcount
        for i in chosen.latest
    )
    keys = sum(
        conn.execute("DELETE FROM idempotency_keys WHERE client_id = ? AND key = ?", k).rowcount for k in chosen.keys
    )
    return Pruned(jobs, inputs, keys)
