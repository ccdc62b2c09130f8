"""`lienthong store copy`: a whole SQLite store into an empty PostgreSQL database, in one transaction.

Every table of the SQLite file is copied, parents before children (its foreign keys say the order), rows
in primary-key order, so the audit log's triggers see each record follow the last. The identity
sequences then continue after the copied ids, and the caller checks the copy: the same number of rows in
every table and the audit chain verifying on PostgreSQL (PostgresStore.verify_audit).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from gateway.store.dialect import PgConnection
from gateway.store.migrations import MIGRATIONS, migrate_postgres

CHUNK = 1000  # rows read and written at a time


class CopyRefused(Exception):
    """The copy was not started: the source or the target is not as a copy needs (nothing was written)."""


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied


def _tables(src: sqlite3.Connection) -> list[str]:
    """The source's tables, each after those it refers to."""
    names = [
        r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    graph = {n: {r[2] for r in src.execute(f"PRAGMA foreign_key_list({n})") if r[2] != n} for n in names}
    return list(TopologicalSorter(graph).static_order())


def _key_order(src: sqlite3.Connection, table: str) -> str:
    keys = sorted((r[5], r[1]) for r in src.execute(f"PRAGMA table_info({table})") if r[5] > 0)
    return ", ".join(name for _, name in keys) if keys else "rowid"


def copy_store(source: Path, target_url: str) -> CopyReport:
    """Copy the SQLite store at `source` into the (empty) PostgreSQL database at `target_url`. Blocking."""
    if not source.exists():
        raise CopyRefused(f"no SQLite store at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = PgConnection.connect(target_url)
    try:
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
        if version != len(MIGRATIONS):
            # Read-only here: an older file is migrated by this Lienthong first, a newer one is refused.
            raise CopyRefused(
                f"the SQLite store has schema version {version}, this Lienthong {len(MIGRATIONS)}: "
                "open it once with this Lienthong (serve, or any store command) first"
            )
        migrate_postgres(dst)
        held = dst.raw.execute("SELECT EXISTS (SELECT 1 FROM dossiers) OR EXISTS (SELECT 1 FROM audit)").fetchone()
        if held is not None and held[0]:
            raise CopyRefused("the PostgreSQL database already holds a store: copy into an empty one")
        report = CopyReport()
        tables = _tables(src)
        with dst.raw.transaction():
            for table in tables:
                report.rows[table] = _copy_table(src, dst, table)
            _continue_identities(dst, tables)
        return report
    finally:
        src.close()
        dst.close()


def _copy_table(src: sqlite3.Connection, dst: PgConnection, table: str) -> int:
    target_columns = {
        r[0]
        for r in dst.raw.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
    }
    columns = [r[1] for r in src.execute(f"PRAGMA table_info({table})") if r[1] in target_columns]
    if not target_columns or not columns:
        return 0
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    cur = src.execute(f"SELECT {names} FROM {table} ORDER BY {_key_order(src, table)}")
    copied = 0
    while rows := cur.fetchmany(CHUNK):
        dst.executemany(insert, [tuple(_value(v) for v in row) for row in rows])
        copied += len(rows)
    return copied


def _value(v: Any) -> Any:
    return bytes(v) if isinstance(v, memoryview) else v


def _continue_identities(dst: PgConnection, tables: list[str]) -> None:
    for table, column in dst.raw.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall():
        if table in tables:
            dst.raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
            )
