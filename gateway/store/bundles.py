"""Bundles in SQLite: accepting one (a dossier per step), releasing each step when the one before it
finishes, cancelling and retrying its steps, and reading its view back (the operator's list included).

A step's inputs are references to earlier steps' outputs ("step.output"), resolved from their events
when it is released. The writes run inside the writer's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from uuid import UUID

import orjson

from contracts import DossierStatus
from contracts.bundle import BundleView
from contracts.status import can_move
from gateway.errors import IdempotencyConflict
from gateway.store import rows
from gateway.store.accept import insert_dossier
from gateway.store.base import NewBundle
from gateway.store.events import insert_event
from gateway.store.writer import CodeSequences

_ACTION_STATES = frozenset({"action_required", "supplement_requested", "stopped"})


def create(conn: sqlite3.Connection, codes: CodeSequences, new: NewBundle) -> tuple[UUID, bool]:
    """Every step's dossier at once: the first step's job pending, the rest waiting for their turn."""
    if new.idempotency_key is not None:
        row = conn.execute(
            "SELECT body_hash, dossier_id FROM idempotency_keys WHERE client_id = ? AND key = ?",
            (new.client_id, new.idempotency_key),
        ).fetchone()
        if row is not None:
            if row["body_hash"] != new.body_hash:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different body; use a new key for a new bundle",
                    extra={"bundle_id": row["dossier_id"]},  # the key table's id column holds the bundle's id
                )
            return UUID(row["dossier_id"]), False
    bid = str(new.id)
    conn.execute(
        "INSERT INTO bundles (id, spec, name, client_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (bid, new.spec, new.name, new.client_id, new.created_at.isoformat()),
    )
    for index, step in enumerate(new.steps):
        insert_dossier(
            conn,
            codes,
            step.dossier,
            job_state="pending" if index == 0 else "waiting",
            inputs=step.inputs,
            bundle=(bid, step.step, index),
        )
    if new.idempotency_key is not None:
        conn.execute(
            "INSERT INTO idempotency_keys (client_id, key, body_hash, dossier_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (new.client_id, new.idempotency_key, new.body_hash, bid, new.created_at.isoformat()),
        )
    return new.id, True


def cancel(conn: sqlite3.Connection, bundle_id: UUID, actor: str) -> int:
    """Waiting and dead steps are cancelled, their dossiers withdrawn where the state machine allows."""
    waiting = conn.execute(
        "SELECT j.id, j.dossier_id FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
        "WHERE d.bundle_id = ? AND j.state IN ('waiting', 'dead')",
        (str(bundle_id),),
    ).fetchall()
    for job in waiting:
        conn.execute("UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE id = ?", (time.time(), job[0]))
        status = DossierStatus(conn.execute("SELECT status FROM dossiers WHERE id = ?", (job[1],)).fetchone()[0])
        if can_move(status, DossierStatus.WITHDRAWN):
            insert_event(
                conn,
                job[1],
                int(DossierStatus.WITHDRAWN),
                actor,
                "remaining steps of the bundle cancelled",
                {},
                None,
            )
    return len(waiting)


def retry(conn: sqlite3.Connection, bundle_id: UUID) -> int:
    bid, now, n = str(bundle_id), time.time(), 0
    dead = conn.execute(
        "SELECT j.id, j.attempts, j.inputs FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
        "WHERE d.bundle_id = ? AND j.state = 'dead' ORDER BY d.step_index",
        (bid,),
    ).fetchall()
    for job in dead:
        if job["attempts"] == 0:  # never attempted: its inputs were missing when it was released
            n += _release_step(conn, bid, job["id"], orjson.loads(job["inputs"]))
            continue
        conn.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, failing_since = NULL, held = 0, next_at = ?, "
            "updated_at = ? WHERE id = ?",
            (now, now, job["id"]),
        )
        n += 1
    return n


def advance(conn: sqlite3.Connection, did: str) -> None:
    """A step finished: release the next waiting step with its inputs taken from earlier outputs."""
    row = conn.execute("SELECT bundle_id, step_index FROM dossiers WHERE id = ?", (did,)).fetchone()
    if row is None or row["bundle_id"] is None:
        return
    nxt = conn.execute(
        "SELECT j.id, j.inputs FROM jobs j JOIN dossiers d ON d.id = j.dossier_id "
        "WHERE d.bundle_id = ? AND d.step_index > ? AND j.state = 'waiting' ORDER BY d.step_index LIMIT 1",
        (row["bundle_id"], row["step_index"]),
    ).fetchone()
    if nxt is not None:
        _release_step(conn, row["bundle_id"], nxt["id"], orjson.loads(nxt["inputs"]))


def _release_step(conn: sqlite3.Connection, bundle_id: str, job_id: int, refs: dict[str, str]) -> bool:
    """Resolve a step's inputs ("step.output") and queue it; dead-letter it when an output is missing.

    A step dead-lettered here keeps its references and has never been attempted, so a retry resolves
    them again (an earlier step may have reported the output since).
    """
    outputs = _outputs(conn, bundle_id)
    resolved: dict[str, Any] = {}
    missing: list[str] = []
    for name, ref in refs.items():
        step, _, key = ref.partition(".")
        if key in outputs.get(step, {}):
            resolved[name] = outputs[step][key]
        else:
            missing.append(ref)
    now = time.time()
    if missing:
        conn.execute(
            "UPDATE jobs SET state = 'dead', last_error = ?, updated_at = ? WHERE id = ?",
            (f"earlier steps did not provide {', '.join(missing)}", now, job_id),
        )
        return False
    conn.execute(
        "UPDATE jobs SET state = 'pending', inputs = ?, attempts = 0, last_error = NULL, next_at = ?, updated_at = ? "
        "WHERE id = ?",
        (orjson.dumps(resolved).decode(), now, now, job_id),
    )
    return True


def _outputs(conn: sqlite3.Connection, bundle_id: str) -> dict[str, dict[str, Any]]:
    """Outputs every step of a bundle reported so far, by step id."""
    out: dict[str, dict[str, Any]] = {}
    cur = conn.execute(
        "SELECT d.bundle_step, e.data FROM events e JOIN dossiers d ON d.id = e.dossier_id "
        "WHERE d.bundle_id = ? ORDER BY e.seq",
        (bundle_id,),
    )
    for step, data in cur.fetchall():
        outputs = orjson.loads(data).get("outputs")
        if outputs:
            out.setdefault(step, {}).update(outputs)
    return out


# -- reads ------------------------------------------------------------------------------------------


def view(conn: sqlite3.Connection, bundle_id: str) -> BundleView | None:
    b = conn.execute("SELECT * FROM bundles WHERE id = ?", (bundle_id,)).fetchone()
    if b is None:
        return None
    # Each step's latest job: its submission, or the delivery of a supplement answered since.
    steps = conn.execute(
        "SELECT d.*, j.state AS job_state, j.attempts, j.last_error FROM dossiers d "
        "JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE dossier_id = d.id) "
        "WHERE d.bundle_id = ? ORDER BY d.step_index",
        (bundle_id,),
    ).fetchall()
    return rows.bundle(b, steps, _outputs(conn, bundle_id))


def needing_action(conn: sqlite3.Connection, limit: int) -> list[BundleView]:
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT d.bundle_id FROM dossiers d JOIN jobs j ON j.dossier_id = d.id "
            "WHERE d.bundle_id IS NOT NULL AND (j.state = 'dead' OR d.status IN (3, 5, 8)) "
            "GROUP BY d.bundle_id ORDER BY MAX(d.received_at) DESC LIMIT ?",
            (limit,),
        )
    ]
    views = [view(conn, bid) for bid in ids]
    # The state is derived: a candidate may have moved on (retried, cancelled) since.
    return [v for v in views if v is not None and v.state in _ACTION_STATES]
