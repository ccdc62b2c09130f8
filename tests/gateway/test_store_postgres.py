"""PostgresStore with several processes on one database: each store below has connections of its own (a
writer, readers, a listener), as another gateway process would; the store operations themselves are tested
on both backends by the parametrised `store` fixture (test_store_sqlite.py and the others)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import psycopg
import pytest

from contracts import DossierStatus
from gateway.errors import StorageUnavailable
from gateway.store import PostgresStore
from gateway.store import postgres as pg_module
from gateway.store import updates as updates_sql
from gateway.store.base import AuditEntry, NewDossier
from gateway.store.postgres import StoreUnreachable
from tests.gateway.test_store_sqlite import POLICE, update

S = DossierStatus


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Open another "process" on the test's database."""
    async with AsyncExitStack() as stack:

        async def open_one() -> PostgresStore:
            s = PostgresStore(pg_url, batch_max=16, readers=2)
            await s.open()
            stack.push_async_callback(s.close)
            return s

        yield open_one


async def test_claims_from_two_processes_never_lease_a_job_twice(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    a, b = await stores(), await stores()
    await asyncio.gather(*(a.create_dossier(new(i)) for i in range(120)))
    claimed: list[int] = []

    async def claim_all(store: PostgresStore, owner: str) -> None:
        while got := await store.claim_jobs(owner, {"police": 3}, 60):
            claimed.extend(j.id for j in got)

    await asyncio.gather(*(claim_all(s, f"{name}-{i}") for i in range(3) for name, s in (("a", a), ("b", b))))
    assert len(claimed) == 120 and len(set(claimed)) == 120


async def test_an_expired_lease_is_reclaimed_by_another_process(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    a, b = await stores(), await stores()
    await a.create_dossier(new(0))
    [job] = await a.claim_jobs("a", {"police": 1}, 0.2)
    assert await b.claim_jobs("b", {"police": 1}, 60) == []  # leased: not b's to take
    await asyncio.sleep(0.3)
    assert await b.reclaim_expired_leases() == 1
    [again] = await b.claim_jobs("b", {"police": 1}, 60)
    assert again.id == job.id and again.attempts == 2
    assert not await a.fail_job(job.id, "a", "too late", time.time())  # a's lease is gone


async def test_codes_keys_and_the_audit_chain_under_concurrent_processes(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    procs = [await stores() for _ in range(3)]
    n = 60

    async def submit(store: PostgresStore, i: int) -> tuple[str, str]:
        # Every submission is sent to two processes with the same key (a client retrying elsewhere).
        outcome = await store.create_dossier(
            dataclasses.replace(new(i, key=f"k-{i}", body=str(i).encode()), id=uuid.UUID(int=i + 1))
        )
        await store.audit([AuditEntry("centre-hanoi", "read", "allowed", "own", str(outcome.dossier.id))])
        return str(outcome.dossier.id), outcome.dossier.code

    jobs = [submit(procs[(i + k) % 3], i) for i in range(n) for k in (0, 1)]
    random.shuffle(jobs)
    results = await asyncio.gather(*jobs)
    by_id: dict[str, set[str]] = {}
    for did, code in results:
        by_id.setdefault(did, set()).add(code)
    assert len(by_id) == n and all(len(codes) == 1 for codes in by_id.values())  # one dossier per key
    numbers = sorted(int(next(iter(c)).rsplit("-", 1)[1]) for c in by_id.values())
    assert numbers == list(range(1, n + 1))  # gap-free, no duplicate
    check = await procs[0].verify_audit()
    assert check.ok and check.checked == 2 * n


async def test_a_commit_in_one_process_wakes_the_others(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    a, b = await stores(), await stores()
    woken = asyncio.Event()
    a.on_remote_events(woken.set)
    await asyncio.sleep(0.5)  # a's LISTEN is in place
    await b.create_dossier(new(0))
    async with asyncio.timeout(5):
        await woken.wait()


async def test_a_role_runs_in_one_process_and_moves_when_it_dies(
    stores: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_module, "ROLE_RETRY", 0.2)
    a, b = await stores(), await stores()
    running: list[str] = []
    lock_pid: dict[str, int] = {}
    b_runs = asyncio.Event()

    def role(name: str) -> Callable[[], Any]:
        async def run() -> None:
            running.append(name)
            if name == "b":
                b_runs.set()
            await asyncio.Event().wait()

        return run

    task_a = asyncio.create_task(a.hold_role("poll:tax:national", role("a")))
    await asyncio.sleep(0.5)
    task_b = asyncio.create_task(b.hold_role("poll:tax:national", role("b")))
    await asyncio.sleep(1.0)
    assert running == ["a"]
    # a's connection to the server is cut (its process died, its machine went away): the server
    # releases the lock, a stops the role, b takes it.
    with psycopg.connect(a.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
        ).fetchall()
        assert len(rows) == 1
        lock_pid["a"] = rows[0][0]
        admin.execute("SELECT pg_terminate_backend(%s)", (lock_pid["a"],))
    async with asyncio.timeout(10):
        await b_runs.wait()
    # a, its connection back, waits for the role again instead of running it beside b.
    await asyncio.sleep(1.0)
    assert running == ["a", "b"]
    for t in (task_a, task_b):
        t.cancel()
    await asyncio.gather(task_a, task_b, return_exceptions=True)


async def test_a_feed_follower_sees_every_event_once_while_eight_processes_commit_late(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    first = await stores()
    dossiers = [(await first.create_dossier(new(i))).dossier.id for i in range(40)]
    writers = [await stores() for _ in range(8)]
    reader = await stores()

    async def write(store: PostgresStore, did: uuid.UUID) -> None:
        for n, status in enumerate((S.PROCESSING, S.FINISHED)):
            u = update(did, status, f"{did}-{n}")

            def op(conn: Any, u: Any = u) -> Any:
                out = updates_sql.apply_all(conn, [u], POLICE, None)
                time.sleep(random.uniform(0, 0.03))  # committed late: after events other writers commit
                return out

            await store._write_events(op)

    seen: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:
        after = 0
        while True:
            page = await reader.feed(after=after, limit=50)
            for item in page:
                seen.append(item.event.seq)
                after = item.event.seq
            if done.is_set() and not page:
                return
            await asyncio.sleep(0.005)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(writers[i % 8], did) for i, did in enumerate(dossiers)))
    done.set()
    await follower
    everything = [item.event.seq for item in await reader.feed(after=0, limit=10_000)]
    assert len(everything) == 40 * 3
    assert Counter(seen) == Counter(everything)  # each event once, none missed


async def test_a_cut_connection_fails_one_write_then_the_store_goes_on(
    stores: Callable[[], Any], new: Callable[..., NewDossier]
) -> None:
    """The server ends the store's connections (a restart, a failover): the write on the dead connection
    answers StorageUnavailable (503) and keeps nothing; the next one reconnects and commits."""
    store = await stores()
    await store.create_dossier(new(0))
    with psycopg.connect(store.url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    outcomes = []
    for i in range(1, 4):
        try:
            outcomes.append((await store.create_dossier(new(i))).created)
        except StorageUnavailable:
            outcomes.append(False)
    assert outcomes[-2:] == [True, True]
    got = await store.list_dossiers(client_id=None, status=None, limit=10)
    assert len(got) == 1 + sum(outcomes)


async def test_a_database_that_does_not_answer_is_a_clear_error() -> None:
    store = PostgresStore("postgresql://gw:secret@127.0.0.1:1/lienthong")
    with pytest.raises(StoreUnreachable) as err:
        await store.open()
    assert str(err.value).startswith("cannot reach the PostgreSQL store postgresql://gw@127.0.0.1:1/lienthong")
    assert "secret" not in str(err.value)
    await store.close()


async def test_a_batch_is_pipelined_and_a_late_error_spoils_no_other_write(stores: Callable[[], Any]) -> None:
    """A batch's writes go to the server without waiting for each answer (psycopg's pipeline mode): a
    statement that fails is known only at the next read. The batch is then rolled back and run again one
    write at a time, unpipelined: the others commit, the failing one alone fails."""
    store = await stores()
    writer = store._writer
    await writer.write(lambda conn: conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    started, release = threading.Event(), threading.Event()

    def blocker(conn: Any) -> None:
        started.set()
        release.wait(10)

    modes: list[str] = []

    def first(conn: Any) -> None:
        modes.append(conn.raw.info.pipeline_status.name)
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'a')")

    def duplicate(conn: Any) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'again')")  # read nothing: its error comes later

    def second(conn: Any) -> int:
        conn.execute("INSERT INTO t (k, v) VALUES (2, 'b')")
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])

    held = asyncio.ensure_future(writer.write(blocker))
    await asyncio.to_thread(started.wait, 10)
    pending = [writer.submit(op) for op in (first, duplicate, second)]  # one batch, queued behind the blocker
    release.set()
    await held
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert modes == ["ON", "OFF"]  # pipelined together, then one at a time after the error
    assert results[0] is None and results[2] == 2
    assert isinstance(results[1], psycopg.errors.UniqueViolation)
    rows = await store._read(lambda conn: conn.execute("SELECT k, v FROM t ORDER BY k").fetchall())
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]


async def test_a_pipelined_row_count_is_that_of_its_statement(stores: Callable[[], Any]) -> None:
    store = await stores()

    def op(conn: Any) -> tuple[str, int, int]:
        conn.execute("CREATE TABLE u (k INTEGER PRIMARY KEY)")
        for k in (1, 2, 3):
            conn.execute("INSERT INTO u (k) VALUES (?)", (k,))
        updated = conn.execute("UPDATE u SET k = k + 10 WHERE k > ?", (1,)).rowcount
        deleted = conn.execute("DELETE FROM u WHERE k > ?", (12,)).rowcount
        return conn.raw.info.pipeline_status.name, updated, deleted

    assert await store._writer.write(op) == ("ON", 2, 1)
