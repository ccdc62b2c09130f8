"""The audit log of accesses to dossiers in SQLite: append-only and hash-chained.

Each record's hash is sha256(prev_hash + canonical JSON of its fields), the canonical JSON being orjson
with sorted keys over seq, at, client_id, action, outcome, basis, dossier_id and detail. A record
continues from the last row's hash, read inside the writer's transaction: the single writer thread
serialises the chain, and another process writing the file waits for the write lock (BEGIN IMMEDIATE)
and then reads the head it must follow.

Triggers (migration 4) refuse UPDATE and DELETE, and an INSERT that does not follow the last record.
Whoever can drop the triggers can rewrite rows; the chain then shows where (`Walk`), unless the whole
tail after the change was rebuilt too, or rows were cut off the end. With an audit key, the last record
of every batch carries the writer's seal (seals.py, migration 6): a rebuilt tail or an appended record
then fails its seal, and signed checkpoints kept outside the database (gateway/checkpoints.py) show a
log cut short.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.store import multirow
from gateway.store.base import AuditCheck, AuditEntry, AuditRecord
from gateway.store.seals import AuditKey, AuditVerifier
from gateway.store.writer import Batchable

GENESIS = "0" * 64  # the prev_hash of the first record
OUTCOMES = frozenset({"allowed", "denied"})
PAGE = 1000  # records per read while walking the chain

_COLUMNS = "seq, at, client_id, action, outcome, basis, dossier_id, detail, prev_hash, hash, sealed_from, seal"
_WIDTH = _COLUMNS.count(",") + 1
_ROWS_PER_STATEMENT = multirow.ROWS_PER_STATEMENT


@functools.lru_cache(maxsize=128)
def _insert_many(n: int) -> str:
    """All the rows of a batch in one statement, as plain parameters. A JSON array per row taken apart by
    json_extract (as accept.py does) parses each row twelve times: 18.6 µs of the writer's CPU per record
    with its share of the commit (28 records a commit), against 12.1 this way."""
    row = "(" + ", ".join("?" * _WIDTH) + ")"
    return f"INSERT INTO audit ({_COLUMNS}) VALUES " + ", ".join([row] * n)


_HEAD = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"

# The hashed fields, in the order of the tuples below; the JSON itself has its keys sorted.
_FIELDS = ("seq", "at", "client_id", "action", "outcome", "basis", "dossier_id", "detail")
Prepared = tuple[str, str, str, str, str | None, str]  # client_id, action, outcome, basis, dossier_id, detail JSON


def record_hash(prev_hash: str, fields: Sequence[Any]) -> str:
    """The hash of a record: its fields in _FIELDS order, detail already parsed (a dict)."""
    canonical = orjson.dumps(dict(zip(_FIELDS, fields, strict=True)), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def prepare(entry: AuditEntry) -> Prepared:
    """Checked and serialised on the caller's side, so a bad entry fails its caller and never the batch."""
    if entry.outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be 'allowed' or 'denied', not {entry.outcome!r}")
    detail = orjson.dumps(dict(entry.detail), option=orjson.OPT_SORT_KEYS).decode()  # TypeError if not JSON
    return (entry.client_id, entry.action, entry.outcome, entry.basis, entry.dossier_id, detail)


def append(conn: sqlite3.Connection, entries: Sequence[Prepared], key: AuditKey | None = None) -> None:
    """Chain the entries onto the last record, inside the caller's (the writer's) transaction; with a key,
    seal the last one for the whole batch."""
    head = conn.execute(_HEAD).fetchone()
    seq, prev = (head[0], head[1]) if head is not None else (0, GENESIS)
    first = seq + 1
    at = datetime.now(UTC).isoformat()
    rows: list[list[Any]] = []
    for client_id, action, outcome, basis, dossier_id, detail in entries:
        seq += 1
        # Hashed from the detail as read back, so that a verifier re-reading the row computes the same.
        digest = record_hash(prev, (seq, at, client_id, action, outcome, basis, dossier_id, orjson.loads(detail)))
        rows.append([seq, at, client_id, action, outcome, basis, dossier_id, detail, prev, digest, None, None])
        prev = digest
    if key is not None and rows:
        rows[-1][-2:] = [first, key.seal(first, seq, prev)]
    for chunk in multirow.chunks(rows, _ROWS_PER_STATEMENT):
        conn.execute(_insert_many(len(chunk)), [value for row in chunk for value in row])


class AppendAudit(Batchable):
    """One `Store.audit` call; the calls of a batch are chained together: two statements for all of them."""

    def __init__(self, entries: list[Prepared], key: AuditKey | None = None) -> None:
        self.entries = entries
        self.key = key

    def __call__(self, conn: sqlite3.Connection) -> None:
        append(conn, self.entries, self.key)

    @classmethod
    def run_many(cls, conn: sqlite3.Connection, ops: Sequence[Any]) -> list[Any]:
        append(conn, [e for op in ops for e in op.entries], ops[0].key)
        return [None] * len(ops)


def record(row: sqlite3.Row) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        at=datetime.fromisoformat(row["at"]),
        client_id=row["client_id"],
        action=row["action"],
        outcome=row["outcome"],
        basis=row["basis"],
        dossier_id=row["dossier_id"],
        detail=orjson.loads(row["detail"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        sealed_from=row["sealed_from"],
        seal=row["seal"],
    )


def log(
    conn: sqlite3.Connection, after: int, limit: int, dossier_id: str | None, client_id: str | None
) -> list[AuditRecord]:
    sql, args = "SELECT * FROM audit WHERE seq > ?", list[Any]([after])
    if dossier_id is not None:
        sql += " AND dossier_id = ?"
        args.append(dossier_id)
    if client_id is not None:
        sql += " AND client_id = ?"
        args.append(client_id)
    sql += " ORDER BY seq LIMIT ?"
    return [record(r) for r in conn.execute(sql, (*args, limit)).fetchall()]


def refused(conn: sqlite3.Connection, limit: int) -> list[AuditRecord]:
    """The latest refused accesses, newest first (a partial index holds only those)."""
    cur = conn.execute("SELECT * FROM audit WHERE outcome = 'denied' ORDER BY seq DESC LIMIT ?", (limit,))
    return [record(r) for r in cur.fetchall()]


def page(conn: sqlite3.Connection, after: int, limit: int) -> list[sqlite3.Row]:
    """Raw rows for the walk: a record that no longer parses must still be reported, not raise."""
    return conn.execute("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """The last record's seq and hash ((0, GENESIS) for an empty log)."""
    row = conn.execute(_HEAD).fetchone()
    return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)


def hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


class Walk:
    """Checks the chain a page at a time, keeping only the last record's seq and hash between pages.

    With a verifier it checks the seals too: each one's signature, and that they tile the log (every
    record after the first sealed one is covered by exactly one seal, the last record included).
    `expected` holds hashes signed checkpoints recorded (seq -> (hash, which checkpoint)). A walk may
    start after a known record (`seq`, `hash`), e.g. at a checkpoint, with `sealed_to` the last record
    known to be sealed.
    """

    def __init__(
        self,
        verifier: AuditVerifier | None = None,
        expected: Mapping[int, tuple[str, str]] | None = None,
        *,
        seq: int = 0,
        hash: str = GENESIS,
        sealed_to: int | None = None,
    ) -> None:
        self.seq = seq
        self.hash = hash
        self.checked = 0
        self.verifier = verifier
        self.expected = expected or {}
        self.sealed_to = sealed_to  # None until the first seal: records before it predate sealing
        self.first_sealed: int | None = None

    def check(self, rows: Sequence[sqlite3.Row]) -> AuditCheck | None:
        """None while every row verifies; the failed check at the first that does not."""
        for row in rows:
            self.checked += 1
            seq = row["seq"]
            reason = self._fault(row) or self._seal_fault(row)
            if reason is not None:
                return AuditCheck(ok=False, checked=self.checked, first_bad=seq, reason=reason)
            self.seq, self.hash = seq, row["hash"]
        return None

    def result(self) -> AuditCheck:
        if self.verifier is not None and self.sealed_to is not None and self.seq > self.sealed_to:
            first = self.sealed_to + 1
            what = f"record {first} has" if first == self.seq else f"records {first} to {self.seq} have"
            return AuditCheck(
                ok=False,
                checked=self.checked,
                first_bad=first,
                reason=f"{what} no seal at the end of the log: not written by the gateway",
            )
        return AuditCheck(ok=True, checked=self.checked, first_bad=None, reason=None)

    def _fault(self, row: sqlite3.Row) -> str | None:
        seq = row["seq"]
        if seq != self.seq + 1:
            missing = f"record {self.seq + 1}" if seq == self.seq + 2 else f"records {self.seq + 1} to {seq - 1}"
            return f"{missing} missing before it"
        if row["prev_hash"] != self.hash:
            return f"its prev_hash is not the hash of record {self.seq}" if self.seq else "its prev_hash is not zero"
        try:
            fields = [row[name] for name in _FIELDS[:-1]] + [orjson.loads(row["detail"])]
            digest = record_hash(str(row["prev_hash"]), fields)
        except (orjson.JSONDecodeError, TypeError, UnicodeEncodeError) as exc:
            return f"its fields cannot be read: {exc}"
        if digest != row["hash"]:
            return "its hash does not match its contents"
        signed = self.expected.get(seq)
        if signed is not None and signed[0] != digest:
            return f"its hash is not the one {signed[1]} signed: the log was rewritten up to here"
        return None

    def _seal_fault(self, row: sqlite3.Row) -> str | None:
        if self.verifier is None or row["seal"] is None:
            return None
        seq, sealed_from = row["seq"], row["sealed_from"]
        if self.sealed_to is not None and sealed_from != self.sealed_to + 1:
            if sealed_from > self.sealed_to + 1:
                first, last = self.sealed_to + 1, sealed_from - 1
                what = f"record {first} before it has" if first == last else f"records {first} to {last} before it have"
                return f"{what} no seal: not written by the gateway"
            return f"its seal claims records from {sealed_from}, but an earlier seal covers up to {self.sealed_to}"
        if not isinstance(sealed_from, int) or not self.verifier.seal_valid(
            str(row["seal"]), sealed_from, seq, row["hash"]
        ):
            return "its seal does not verify with the audit key: it was forged or the records it covers were changed"
        if self.first_sealed is None:
            self.first_sealed = sealed_from
        self.sealed_to = seq
        return None
