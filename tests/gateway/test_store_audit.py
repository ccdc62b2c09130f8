"""The audit log in SqliteStore: one hash chain across writes, batches and reopens; append-only by trigger;
tampering found by verify_audit and by `lienthong audit verify`."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.cli import main
from gateway.store import AuditCheck, AuditEntry, AuditRecord, SqliteStore, is_postgres_url
from gateway.store import audit as audit_sql
from gateway.store.dialect import PgConnection, is_postgres
from gateway.store.migrations import MIGRATIONS
from tests.gateway.conftest import CONF


def entry(i: int, *, client: str = "centre-hanoi", dossier: str | None = None, **detail: Any) -> AuditEntry:
    return AuditEntry(
        client_id=client,
        action="read",
        outcome="allowed" if i % 3 else "denied",
        basis="own" if i % 3 else "no-proof",
        dossier_id=dossier if dossier is not None else f"d-{i % 4}",
        detail={"i": i, **detail},
    )


# What a refused write raises, in SQLite and in PostgreSQL.
INTEGRITY = (sqlite3.IntegrityError, psycopg.IntegrityError)


async def raw(path: str | Path, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    """Run fn on a connection of our own, as someone with the file (or the database) in hand would, off
    the event loop."""

    def run() -> Any:
        postgres = is_postgres_url(str(path))
        conn: Any = PgConnection.connect(str(path)) if postgres else sqlite3.connect(path, isolation_level=None)
        try:
            return fn(conn)
        finally:
            conn.close()

    return await asyncio.to_thread(run)


def untrigger(conn: sqlite3.Connection) -> None:
    on = " ON audit" if is_postgres(conn) else ""
    for name in ("audit_no_update", "audit_no_delete", "audit_follows_last"):
        conn.execute(f"DROP TRIGGER {name}{on}")


async def whole_log(store: SqliteStore) -> list[AuditRecord]:
    return await store.audit_log(limit=1_000_000)


def recomputed(r: AuditRecord) -> str:
    """What anyone holding the records can compute: the chain needs nothing but the fields."""
    fields = (r.seq, r.at.isoformat(), r.client_id, r.action, r.outcome, r.basis, r.dossier_id, r.detail)
    return audit_sql.record_hash(r.prev_hash, fields)


# -- the chain ---------------------------------------------------------------------------------------


async def test_the_chain_links_across_writes_and_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    before = datetime.now(UTC)
    for rounds in (range(0, 3), range(3, 6)):  # the second time on a reopened store
        store = SqliteStore(path)
        await store.open()
        try:
            for i in rounds:
                await store.audit([entry(i), entry(i, client="centre-hcm", nested={"b": 1, "a": [1, 2]})])
        finally:
            await store.close()
    store = SqliteStore(path)
    await store.open()
    try:
        records = await whole_log(store)
        check = await store.verify_audit()
    finally:
        await store.close()
    assert [r.seq for r in records] == list(range(1, 13))
    assert records[0].prev_hash == audit_sql.GENESIS
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(records))
    assert all(recomputed(r) == r.hash for r in records)
    assert all(before <= r.at <= datetime.now(UTC) and r.at.tzinfo is not None for r in records)
    assert records[1].detail == {"i": 0, "nested": {"a": [1, 2], "b": 1}}
    assert (check.ok, check.checked, check.first_bad, check.reason) == (True, 12, None, None)


async def test_concurrent_calls_make_one_unbroken_chain(store: SqliteStore) -> None:
    before = store.commits
    calls = 120
    await asyncio.gather(*(store.audit([entry(i, call=i, k=k) for k in range(1 + i % 3)]) for i in range(calls)))
    assert store.commits - before < calls  # grouped: batch_max=8 puts several calls in one commit
    records = await whole_log(store)
    assert len(records) == sum(1 + i % 3 for i in range(calls))
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert await store.verify_audit() == AuditCheck(True, len(records), None, None)
    # A call's entries stay together, in the order given.
    by_call: dict[int, list[tuple[int, int]]] = {}
    for r in records:
        by_call.setdefault(r.detail["call"], []).append((r.seq, r.detail["k"]))
    for got in by_call.values():
        assert [k for _, k in got] == list(range(len(got)))
        assert [s for s, _ in got] == list(range(got[0][0], got[0][0] + len(got)))


async def test_a_call_of_more_records_than_one_statement_holds_keeps_one_chain(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_sql, "_ROWS_PER_STATEMENT", 7)  # 25 records: four statements, the last short
    await store.audit([entry(i, nullable=None) for i in range(25)])
    records = await whole_log(store)
    assert [r.seq for r in records] == list(range(1, 26))
    assert all(recomputed(r) == r.hash for r in records)
    assert [r.detail["i"] for r in records] == list(range(25))
    assert records[0].detail == {"i": 0, "nullable": None} and records[0].dossier_id == "d-0"
    assert await store.verify_audit() == AuditCheck(True, 25, None, None)


async def test_audit_writes_beside_other_writes_in_one_batch(store: SqliteStore) -> None:
    other = store._write(lambda conn: conn.execute("SELECT 1").fetchone()[0])
    await asyncio.gather(other, *(store.audit([entry(i)]) for i in range(20)))
    assert (await store.verify_audit()).checked == 20


async def test_records_written_later_join_the_chain_and_the_writes_around_them(store: SqliteStore) -> None:
    """`audit_later` (the look-ups' records): queued at once, awaited after the agency's answer; under load
    they wait for company, yet each is committed, chained and verified like any other record."""
    store._writer.patience = 5.0  # only a caller awaiting its record may end the gathering
    pending = [store.audit_later([entry(i, lookup=i)]) for i in range(12)]  # twelve look-ups in flight
    around = asyncio.gather(*(store.audit([entry(100 + i)]) for i in range(3)))  # an opened dossier, say
    await asyncio.wait_for(around, 5.0)
    for p in pending:  # each look-up's agency answered: its record is committed before anything leaves
        await asyncio.wait_for(p, 5.0)
    records = await whole_log(store)
    assert sorted(r.detail["lookup"] for r in records if "lookup" in r.detail) == list(range(12))
    assert await store.verify_audit() == AuditCheck(True, 15, None, None)
    with pytest.raises(ValueError, match="outcome"):  # a bad entry fails at once, nothing queued
        store.audit_later([AuditEntry("c", "lookup", "maybe", "lookup-scope")])


async def test_a_bad_entry_fails_its_caller_and_writes_nothing(store: SqliteStore) -> None:
    before = store.commits
    with pytest.raises(ValueError, match="outcome"):
        await store.audit([entry(1), AuditEntry("c", "read", "maybe", "own")])
    with pytest.raises(TypeError):
        await store.audit([AuditEntry("c", "read", "allowed", "own", detail={"when": object()})])
    await store.audit([])
    assert store.commits == before
    assert await whole_log(store) == []
    assert (await store.verify_audit()).ok


async def test_verify_walks_the_log_in_pages(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.audit([entry(i) for i in range(10)])
    pages: list[int] = []
    real_page = audit_sql.page

    def page(conn: sqlite3.Connection, after: int, limit: int) -> list[sqlite3.Row]:
        pages.append(after)
        return real_page(conn, after, limit)

    monkeypatch.setattr(audit_sql, "PAGE", 3)
    monkeypatch.setattr(audit_sql, "page", page)
    assert (await store.verify_audit()).checked == 10
    assert pages == [0, 3, 6, 9, 10]


# -- append-only -------------------------------------------------------------------------------------


async def test_update_and_delete_are_refused(store: SqliteStore) -> None:
    await store.audit([entry(i) for i in range(3)])
    for sql in ("UPDATE audit SET detail = '{}' WHERE seq = 2", "DELETE FROM audit WHERE seq = 3"):
        with pytest.raises(INTEGRITY, match="the audit log is append-only"):
            await raw(store.path, lambda conn, sql=sql: conn.execute(sql))
        with pytest.raises(INTEGRITY, match="the audit log is append-only"):
            await store._write(lambda conn, sql=sql: conn.execute(sql))
    # Neither can an old row be replaced by an insert (its implicit delete fires no delete trigger).
    replace = "INSERT OR REPLACE INTO audit SELECT * FROM audit WHERE seq = 2"
    if is_postgres_url(store.path):  # PostgreSQL's replacing insert is an update, refused above
        replace = "INSERT INTO audit SELECT * FROM audit WHERE seq = 2 ON CONFLICT (seq) DO UPDATE SET hash = 'x'"
    with pytest.raises(INTEGRITY, match=r"must follow the last one|append-only"):
        await raw(store.path, lambda conn: conn.execute(replace))
    assert (await store.verify_audit()).checked == 3


async def test_an_insert_that_does_not_follow_the_last_record_is_refused(store: SqliteStore) -> None:
    await store.audit([entry(1)])
    [first] = await whole_log(store)
    insert = (
        "INSERT INTO audit (seq, at, client_id, action, outcome, basis, dossier_id, detail, prev_hash, hash) "
        "VALUES (?, '2026-01-01T00:00:00+00:00', 'x', 'read', 'allowed', 'own', NULL, '{}', ?, ?)"
    )
    for seq, prev in ((3, first.hash), (2, audit_sql.GENESIS)):  # a gap; a fork from the start
        with pytest.raises(INTEGRITY, match="must follow the last one"):
            await raw(store.path, lambda conn, seq=seq, prev=prev: conn.execute(insert, (seq, prev, "f" * 64)))
    assert len(await whole_log(store)) == 1


# -- tampering ---------------------------------------------------------------------------------------


async def tampered(store: SqliteStore, *sql: str) -> AuditCheck:
    def run(conn: sqlite3.Connection) -> None:
        untrigger(conn)
        for statement in sql:
            conn.execute(statement)

    await store.audit([entry(i) for i in range(8)])
    await raw(store.path, run)
    return await store.verify_audit()


async def test_a_changed_detail_is_found(store: SqliteStore) -> None:
    check = await tampered(store, """UPDATE audit SET detail = '{"i": 99}' WHERE seq = 5""")
    assert (check.ok, check.first_bad, check.checked) == (False, 5, 5)
    assert check.reason == "its hash does not match its contents"


async def test_a_changed_field_with_its_hash_recomputed_is_found_at_the_next_record(store: SqliteStore) -> None:
    await store.audit([entry(i) for i in range(4)])
    [*_, r] = await store.audit_log(limit=3)
    forged = (r.seq, r.at.isoformat(), "someone-else", r.action, r.outcome, r.basis, r.dossier_id, r.detail)
    digest = audit_sql.record_hash(r.prev_hash, forged)

    def run(conn: sqlite3.Connection) -> None:
        untrigger(conn)
        conn.execute("UPDATE audit SET client_id = 'someone-else', hash = ? WHERE seq = 3", (digest,))

    await raw(store.path, run)
    check = await store.verify_audit()
    assert (check.first_bad, check.reason) == (4, "its prev_hash is not the hash of record 3")


async def test_a_deleted_record_is_found(store: SqliteStore) -> None:
    check = await tampered(store, "DELETE FROM audit WHERE seq = 4")
    assert (check.ok, check.first_bad, check.reason) == (False, 5, "record 4 missing before it")


async def test_records_deleted_from_the_start_are_found(store: SqliteStore) -> None:
    check = await tampered(store, "DELETE FROM audit WHERE seq <= 2")
    assert (check.ok, check.first_bad, check.reason) == (False, 3, "records 1 to 2 missing before it")


async def test_an_unreadable_detail_is_found(store: SqliteStore) -> None:
    check = await tampered(store, "UPDATE audit SET detail = 'not json' WHERE seq = 2")
    assert check.first_bad == 2
    assert check.reason is not None and check.reason.startswith("its fields cannot be read")


async def test_tampering_past_the_first_page_is_found(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_sql, "PAGE", 3)
    check = await tampered(store, "DELETE FROM audit WHERE seq = 7")
    assert (check.first_bad, check.checked) == (8, 7)


# -- reading -----------------------------------------------------------------------------------------


async def test_filter_by_dossier_and_client(store: SqliteStore) -> None:
    await store.audit([entry(i, client="centre-hanoi" if i % 2 else "centre-hcm") for i in range(12)])
    await store.audit([AuditEntry("centre-hanoi", "list", "allowed", "own", detail={"count": 12})])

    async def seqs(**kw: Any) -> list[int]:
        return [r.seq for r in await store.audit_log(**kw)]

    assert await seqs(dossier_id="d-1") == [2, 6, 10]
    assert await seqs(client_id="centre-hcm") == [1, 3, 5, 7, 9, 11]
    assert await seqs(client_id="centre-hanoi", dossier_id="d-3") == [4, 8, 12]
    assert await seqs(client_id="centre-hanoi", dossier_id="d-2") == []
    assert await seqs(after=10) == [11, 12, 13]
    assert await seqs(after=2, limit=2) == [3, 4]
    assert await seqs(client_id="centre-hanoi", after=8) == [10, 12, 13]
    [listed] = await store.audit_log(after=12)
    assert (listed.action, listed.dossier_id, listed.detail, listed.outcome) == ("list", None, {"count": 12}, "allowed")


async def test_a_store_of_schema_3_gains_the_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "old.db"

    def schema_3(conn: sqlite3.Connection) -> None:
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            conn.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")

    def schema(conn: sqlite3.Connection) -> tuple[int, set[tuple[str, str]]]:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        names = conn.execute("SELECT type, name FROM sqlite_master WHERE tbl_name = 'audit' AND type != 'table'")
        return version, set(names.fetchall())

    await raw(path, schema_3)
    store = SqliteStore(path)
    await store.open()
    try:
        await store.audit([entry(1)])
        assert (await store.verify_audit()).checked == 1
    finally:
        await store.close()
    assert await raw(path, schema) == (
        len(MIGRATIONS),
        {
            ("index", "audit_dossier"),
            ("index", "audit_denied"),
            ("trigger", "audit_no_update"),
            ("trigger", "audit_no_delete"),
            ("trigger", "audit_follows_last"),
        },
    )


# -- the command -------------------------------------------------------------------------------------


async def lienthong(*argv: str) -> int:
    # In a thread: the command runs its own event loop, as it does from a shell.
    return await asyncio.to_thread(main, list(argv))


async def test_audit_verify_and_list_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.db"
    monkeypatch.setenv("LIENTHONG_DB", str(path))
    # A serving gateway holds the file meanwhile: the command shares it.
    serving = SqliteStore(path, exclusive=True)
    await serving.open()
    try:
        await serving.audit([entry(i) for i in range(5)])
        assert await lienthong("audit", "verify", "--conf", str(CONF)) == 0
        out = capsys.readouterr().out.splitlines()
        [last] = await serving.audit_log(after=4)
        assert out == ["audit log: 5 records, chain intact", f"head: record 5, hash {last.hash}"]

        assert await lienthong("audit", "list", "--conf", str(CONF), "--dossier", "d-1", "--limit", "1") == 0
        [line] = capsys.readouterr().out.splitlines()
        assert line.split()[0] == "2" and "centre-hanoi" in line and "dossier=d-1" in line
        assert line.endswith('{"i": 1}')
    finally:
        await serving.close()

    await raw(path, untrigger)
    await raw(path, lambda conn: conn.execute("""UPDATE audit SET detail = '{"i": 7}' WHERE seq = 3"""))
    assert await lienthong("audit", "verify", "--conf", str(CONF)) == 1
    assert capsys.readouterr().out == (
        "audit log: record 3 does not verify: its hash does not match its contents (3 records walked)\n"
    )


async def test_audit_commands_without_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "none.db"))
    assert await lienthong("audit", "verify", "--conf", str(CONF)) == 1
    assert "no store at" in capsys.readouterr().err
    assert not await asyncio.to_thread((tmp_path / "none.db").exists)


async def test_refused_accesses_come_newest_first(store: SqliteStore) -> None:
    entries = [
        AuditEntry("centre-hcm", "read", "denied" if i % 2 else "allowed", "wrong-proof" if i % 2 else "own", f"d{i}")
        for i in range(7)
    ]
    await store.audit(entries)
    refused = await store.refused_accesses(limit=2)
    assert [(r.seq, r.dossier_id, r.outcome) for r in refused] == [(6, "d5", "denied"), (4, "d3", "denied")]
    assert len(await store.refused_accesses()) == 3
