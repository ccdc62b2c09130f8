"""Accepting dossiers in SQLite: the rows of a new dossier (dossier, first event, outbox job), written
one dossier at a time or, for a batch of submissions, one statement per table for all of them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import orjson

from contracts import DossierStatus
from contracts.identifiers import format_dossier_code
from gateway.errors import IdempotencyConflict
from gateway.store import documents, kpis
from gateway.store.base import NewDossier
from gateway.store.writer import Batchable, CodeSequences

Inserted = tuple[dict[str, Any], dict[str, Any]]  # a dossier's row and its job's, as written
_RECEIVED = int(DossierStatus.RECEIVED)
_DOSSIER_COLUMNS = (
    "id, code, procedure_code, procedure_name, receiving_unit, client_id, agency, endpoint, status, "
    "received_at, due_at, updated_at, submission, bundle_id, bundle_step, step_index"
)
_EVENT_COLUMNS = "dossier_id, status, at, actor, note, data"
_JOB_COLUMNS = "dossier_id, step, agency, endpoint, idempotency_key, state, inputs, next_at, created_at, updated_at"
_KEY_COLUMNS = "client_id, key, body_hash, dossier_id, created_at"


def _insert_one(table: str, columns: str) -> str:
    return f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"


def _insert_many(table: str, columns: str) -> str:
    """One JSON array per row, all rows in one parameter (json_each): one statement inserts them all."""
    n = columns.count(",") + 1
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(n))
    return f"INSERT INTO {table} ({columns}) SELECT {values} FROM json_each(?) WHERE true"


_DOSSIER_ONE, _DOSSIER_MANY = _insert_one("dossiers", _DOSSIER_COLUMNS), _insert_many("dossiers", _DOSSIER_COLUMNS)
_EVENT_ONE, _EVENT_MANY = _insert_one("events", _EVENT_COLUMNS), _insert_many("events", _EVENT_COLUMNS)
_JOB_ONE, _JOB_MANY = _insert_one("jobs", _JOB_COLUMNS), _insert_many("jobs", _JOB_COLUMNS)
_DOCUMENTS_MANY = _insert_many("dossier_documents", documents.DOCUMENT_COLUMNS)
_KEY_CLAIM = " ON CONFLICT (client_id, key) DO NOTHING"
_KEY_ONE = _insert_one("idempotency_keys", _KEY_COLUMNS) + _KEY_CLAIM
_KEY_MANY = _insert_many("idempotency_keys", _KEY_COLUMNS) + _KEY_CLAIM


def new_rows(
    new: NewDossier,
    code: str,
    *,
    job_state: str,
    inputs: dict[str, Any] | None = None,
    bundle: tuple[str, str, int] | None = None,
    texts: tuple[str, str] | None = None,
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """(dossier, first event, outbox job) of a new dossier, in the column order above. `texts`: its id and
    time of receipt as text, when the caller has them already (`_texts`)."""
    did, received = texts or _texts(new)
    bundle_id, step, index = bundle or (None, None, None)
    dossier = (
        did, code, new.procedure_code, new.procedure_name, new.receiving_unit, new.client_id, new.agency,
        new.endpoint, _RECEIVED, received, new.due_at.astimezone(UTC).isoformat(), received,
        orjson.dumps(new.submission).decode(), bundle_id, step, index,
    )  # fmt: skip
    event = (did, _RECEIVED, received, new.client_id, "received at the centre", orjson.dumps({"code": code}).decode())
    now = time.time()
    inputs_json = orjson.dumps(inputs or {}).decode()
    job = (did, "submit", new.agency, new.endpoint, f"{did}:submit", job_state, inputs_json, now, now, now)
    return dossier, event, job


def _texts(new: NewDossier) -> tuple[str, str]:
    return str(new.id), new.received_at.isoformat()


_DOSSIER_NAMES = tuple(_DOSSIER_COLUMNS.split(", "))
_RECEIVED_AT, _DUE_AT = _DOSSIER_NAMES.index("received_at"), _DOSSIER_NAMES.index("due_at")


def inserted(dossier: tuple[Any, ...], job: tuple[Any, ...]) -> Inserted:
    """The rows as a read would return them (the columns the INSERT left to their defaults included)."""
    row = dict(zip(_DOSSIER_NAMES, dossier, strict=True))
    row.update(finished_at=None, agency_ref=None, results="[]", supplements="[]", portal_refusal=None)
    return row, {"state": job[5], "attempts": 0, "last_error": None, "next_at": job[7]}


def insert_dossier(
    conn: sqlite3.Connection,
    codes: CodeSequences,
    new: NewDossier,
    *,
    job_state: str,
    inputs: dict[str, Any] | None = None,
    bundle: tuple[str, str, int] | None = None,
) -> Inserted:
    """Dossier + its first event + its outbox job, inside the caller's transaction."""
    code = format_dossier_code(new.receiving_unit, new.day, codes.next(conn, new.receiving_unit, new.day.isoformat()))
    dossier, event, job = new_rows(new, code, job_state=job_state, inputs=inputs, bundle=bundle)
    conn.execute(_DOSSIER_ONE, dossier)
    conn.execute(_EVENT_ONE, event)
    conn.execute(_JOB_ONE, job)
    documents.insert(conn, dossier[0], "submission", new.documents)
    kpis.on_received(conn, [_received(new, dossier)])
    return inserted(dossier, job)


def _received(new: NewDossier, dossier: tuple[Any, ...]) -> kpis.Received:
    """What the counters need of a new dossier, its id and times taken from its row as written."""
    d = kpis.dims(new.receiving_unit, new.agency, new.procedure_code, new.submission)
    return kpis.Received(
        dossier[0], d, dossier[_RECEIVED_AT], dossier[_DUE_AT], new.submission, kpis.local_day(new.received_at)
    )


def _key_row(new: NewDossier, texts: tuple[str, str] | None = None) -> tuple[Any, ...]:
    did, received = texts or _texts(new)
    return (new.client_id, new.idempotency_key, new.body_hash, did, received)


class KeyUsed(Exception):
    """An idempotency key of the batch was used before (or twice in it): one submission at a time, then."""


class CreateDossier(Batchable):
    """Accept one submitted dossier; returns (dossier id, its rows), or (the earlier dossier's id, None)."""

    def __init__(self, new: NewDossier, codes: CodeSequences) -> None:
        self.new = new
        self.codes = codes

    def __call__(self, conn: sqlite3.Connection) -> tuple[str, Inserted | None]:
        new = self.new
        if new.idempotency_key is not None:
            # Claim the key first: one statement when it is new, which it nearly always is.
            claimed = conn.execute(_KEY_ONE, _key_row(new)).rowcount
            if not claimed:
                row = conn.execute(
                    "SELECT body_hash, dossier_id FROM idempotency_keys WHERE client_id = ? AND key = ?",
                    (new.client_id, new.idempotency_key),
                ).fetchone()
                if row["body_hash"] != new.body_hash:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was already used with a different body; use a new key for a new dossier",
                        extra={"dossier_id": row["dossier_id"]},
                    )
                return str(row["dossier_id"]), None
        rows = insert_dossier(conn, self.codes, new, job_state="pending")
        return rows[0]["id"], rows

    @classmethod
    def run_many(cls, conn: sqlite3.Connection, ops: Sequence[Any]) -> list[Any]:
        # The writer's Python time is shared with the event loop under one GIL: each text is made once.
        texts = [_texts(op.new) for op in ops]
        keys = [_key_row(op.new, t) for op, t in zip(ops, texts, strict=True) if op.new.idempotency_key is not None]
        if keys and conn.execute(_KEY_MANY, (orjson.dumps(keys),)).rowcount != len(keys):
            raise KeyUsed
        dossiers, events, jobs, docs, received, out = [], [], [], [], [], []
        for op, t in zip(ops, texts, strict=True):
            new = op.new
            seq = op.codes.next(conn, new.receiving_unit, new.day.isoformat())
            code = format_dossier_code(new.receiving_unit, new.day, seq)
            dossier, event, job = new_rows(new, code, job_state="pending", texts=t)
            dossiers.append(dossier)
            events.append(event)
            jobs.append(job)
            docs += documents.rows_of(dossier[0], "submission", new.documents)
            received.append(_received(new, dossier))
            out.append((dossier[0], inserted(dossier, job)))
        conn.execute(_DOSSIER_MANY, (orjson.dumps(dossiers),))
        conn.execute(_EVENT_MANY, (orjson.dumps(events),))
        conn.execute(_JOB_MANY, (orjson.dumps(jobs),))
        if docs:
            conn.execute(_DOCUMENTS_MANY, (orjson.dumps(docs),))
            documents.keep_contents(conn, [d for op in ops for d in op.new.documents])
        kpis.on_received(conn, received)
        return out
