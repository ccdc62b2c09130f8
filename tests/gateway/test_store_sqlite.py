"""SqliteStore on its own: grouped commits, dossier codes, idempotency, status updates, the outbox's leases."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contracts import DossierStatus
from contracts.calendar import VN_TZ, WorkCalendar, add_working_days, supplement_deadline, working_days_between
from contracts.dossier import PortalRefusal
from gateway.connector import AgencyUpdate, SubmitReceipt
from gateway.errors import IdempotencyConflict, IllegalTransition, ServiceUnavailable, WrongAgency
from gateway.store import PostgresStore, SqliteStore, is_postgres_url, replay
from gateway.store.base import (
    AuditEntry,
    DocumentRef,
    DossierBrief,
    NewBundle,
    NewBundleStep,
    NewDossier,
    ReplayedRequest,
    ReplayKey,
    UpdateSource,
)
from gateway.store.dialect import translate
from gateway.store.events import insert_event
from gateway.store.migrations import MIGRATIONS, SchemaTooNew
from gateway.store.supplements import record_request
from tests.gateway.conftest import DAY, RECEIVED

S = DossierStatus
POLICE = UpdateSource.of_agency("police", "national")


def _count_committed(path: str, ids: list[str]) -> int:
    """Read with a connection of our own: only committed rows are visible to it."""
    marks = ",".join("?" * len(ids))
    if is_postgres_url(path):
        with psycopg.connect(path) as pg:
            row = pg.execute(translate(f"SELECT COUNT(*) FROM dossiers WHERE id IN ({marks})").sql, ids).fetchone()
            assert row is not None
            return int(row[0])
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM dossiers WHERE id IN ({marks})", ids).fetchone()[0])
    finally:
        conn.close()


def update(did: uuid.UUID, status: DossierStatus, event_id: str, **kw: Any) -> AgencyUpdate:
    return AgencyUpdate(event_id=event_id, dossier_id=did, status=status, **kw)


async def statuses(store: SqliteStore, did: uuid.UUID) -> list[int]:
    return [int(e.status) for e in await store.events(did)]


# -- grouped commits ---------------------------------------------------------------------------------


async def test_concurrent_creates_share_commits(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    before = store.commits
    seen_at_return: list[tuple[int, int]] = []

    async def one(i: int) -> str:
        outcome = await store.create_dossier(new(i))
        did = str(outcome.dossier.id)
        # Returned: the dossier is durable, visible to a connection that is not the store's.
        seen_at_return.append((store.commits, await asyncio.to_thread(_count_committed, store.path, [did])))
        return did

    ids = await asyncio.gather(*(one(i) for i in range(50)))
    commits = store.commits - before
    assert 7 <= commits < 50  # batch_max=8: at least ceil(50/8) commits, far fewer than one each
    assert all(c > before and n == 1 for c, n in seen_at_return)
    assert await asyncio.to_thread(_count_committed, store.path, ids) == 50


async def test_small_documents_of_one_batch_are_kept_once_each(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    """A batch's inline documents go in together: the same bytes named by several dossiers (in the batch,
    twice in one dossier, or already stored) make one row, and every dossier names its own."""

    def doc(body: bytes, code: str = "TK01") -> DocumentRef:
        return DocumentRef(code, f"{code}.pdf", "application/pdf", len(body), hashlib.sha256(body).hexdigest(),
                           "inline", content=body)  # fmt: skip

    shared, earlier = b"%PDF-1.7 shared form", b"%PDF-1.7 kept before"
    await store.create_dossier(dataclasses.replace(new(99), documents=(doc(earlier),)))
    made = [
        dataclasses.replace(new(i), documents=(doc(shared), doc(f"%PDF-1.7 own {i}".encode(), "GT02"), doc(earlier)))
        for i in range(12)
    ]
    made[0] = dataclasses.replace(made[0], documents=(doc(shared), doc(shared, "GT02")))
    commits = store.commits
    await asyncio.gather(*(store.create_dossier(n) for n in made))
    assert store.commits - commits < 12  # some of them shared a commit
    for body in (shared, earlier, *(f"%PDF-1.7 own {i}".encode() for i in range(1, 12))):
        assert await store.document_content(hashlib.sha256(body).hexdigest()) == body
    for n in made:
        named = await store._read(
            lambda conn, did=str(n.id): conn.execute(
                "SELECT sha256 FROM dossier_documents WHERE dossier_id = ? ORDER BY position", (did,)
            ).fetchall()
        )
        assert [r[0] for r in named] == [x.sha256 for x in n.documents]


async def test_one_failing_write_spoils_no_other(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    first = (await store.create_dossier(new(0, key="k"))).dossier
    results = await asyncio.gather(
        store.create_dossier(new(1, key="k", body=b"other")),  # conflict, in the same batch as the next
        store.create_dossier(new(2)),
        return_exceptions=True,
    )
    assert isinstance(results[0], IdempotencyConflict)
    assert not isinstance(results[1], BaseException)
    assert results[1].created and results[1].dossier.code.endswith("-0002")
    assert first.code.endswith("-0001")


async def test_a_batch_answers_each_dossier_as_a_read_would(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    # Concurrent creates share a transaction (written together); what each returns is what is stored.
    outcomes = await asyncio.gather(*(store.create_dossier(new(i, key=f"k{i}")) for i in range(20)))
    assert all(o.created for o in outcomes)
    for o in outcomes:
        assert await store.get_dossier(str(o.dossier.id)) == o.dossier
        assert o.brief == DossierBrief.of(o.dossier)  # the answer's brief, read from the same rows
    assert sorted(o.dossier.code for o in outcomes) == [f"000.00.01.H26-261120-{n:04d}" for n in range(1, 21)]


async def test_a_key_used_twice_in_one_batch_creates_one_dossier(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    results = await asyncio.gather(
        store.create_dossier(new(0, key="twice", body=b"A")),
        store.create_dossier(new(0, key="twice", body=b"A")),
        store.create_dossier(new(1, key="other")),
    )
    assert [r.created for r in results] == [True, False, True]
    assert results[1].dossier.id == results[0].dossier.id
    assert len(await store.jobs()) == 2


async def test_a_write_failing_after_taking_a_code_leaves_no_gap(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    first = await store.create_dossier(new(0))
    twin = dataclasses.replace(new(1), id=first.dossier.id)  # its dossier row fails after its code was taken
    results = await asyncio.gather(store.create_dossier(twin), store.create_dossier(new(2)), return_exceptions=True)
    assert isinstance(results[0], sqlite3.IntegrityError | psycopg.IntegrityError)
    assert not isinstance(results[1], BaseException)
    assert results[1].dossier.code == "000.00.01.H26-261120-0002"
    assert len(await store.jobs()) == 2


# -- dossier codes -----------------------------------------------------------------------------------


async def test_code_sequence_per_unit_and_day(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    codes = [
        (await store.create_dossier(n)).dossier.code
        for n in (new(0), new(1), new(2, unit="000.00.01.H58"), new(3, day=DAY + timedelta(days=1)), new(0))
    ]
    assert codes == [
        "000.00.01.H26-261120-0001",
        "000.00.01.H26-261120-0002",
        "000.00.01.H58-261120-0001",
        "000.00.01.H26-261121-0001",
        "000.00.01.H26-261120-0003",
    ]
    by_code = await store.get_dossier("000.00.01.H58-261120-0001")
    assert by_code is not None and by_code.receiving_unit == "000.00.01.H58"


async def test_created_dossier_is_received_with_a_pending_job(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    n = new(0)
    d = (await store.create_dossier(n)).dossier
    assert (d.id, d.status, d.client_id, d.agency) == (n.id, S.RECEIVED, "centre-hanoi", "police")
    assert d.due_at == n.due_at and d.received_at == RECEIVED
    assert d.delivery is not None and (d.delivery.state, d.delivery.attempts) == ("pending", 0)
    events = await store.events(d.id)
    assert [(e.status, e.actor, e.data) for e in events] == [(S.RECEIVED, "centre-hanoi", {"code": d.code})]
    [job] = await store.jobs()
    assert (job.dossier_id, job.step, job.state, job.idempotency_key) == (d.id, "submit", "pending", f"{d.id}:submit")


# -- idempotency -------------------------------------------------------------------------------------


async def test_idempotency(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    first = await store.create_dossier(new(0, key="ticket-1", body=b"A"))
    again = await store.create_dossier(new(0, key="ticket-1", body=b"A"))
    assert (first.created, again.created) == (True, False)
    assert again.dossier.id == first.dossier.id
    assert again.brief == first.brief == DossierBrief.of(first.dossier)
    with pytest.raises(IdempotencyConflict) as err:
        await store.create_dossier(new(1, key="ticket-1", body=b"B"))
    assert err.value.extra == {"dossier_id": str(first.dossier.id)}
    other_client = await store.create_dossier(new(0, key="ticket-1", body=b"A", client="centre-hcm"))
    assert other_client.created and other_client.dossier.id != first.dossier.id
    listed = await store.list_dossiers(client_id="centre-hanoi", status=None, limit=10)
    assert [d.id for d in listed] == [first.dossier.id]
    assert len(await store.jobs()) == 2


# -- agency updates ----------------------------------------------------------------------------------


async def test_apply_update_dedupes_by_event_id(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    d = (await store.create_dossier(new(0))).dossier
    first = await store.apply_update(update(d.id, S.PROCESSING, "ev-1", agency_ref="CA-1"), source=POLICE)
    again = await store.apply_update(update(d.id, S.PROCESSING, "ev-1"), source=POLICE)
    assert (first.applied, first.status) == (True, 4)
    assert (again.applied, again.status) == (False, 4)
    assert await statuses(store, d.id) == [2, 4]
    # The same event id on another dossier is another event.
    other = (await store.create_dossier(new(1))).dossier
    assert (await store.apply_update(update(other.id, S.PROCESSING, "ev-1"), source=POLICE)).applied
    got = await store.get_dossier(str(d.id))
    assert got is not None and got.agency_ref == "CA-1"


async def test_update_by_code_implies_receipt(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    d = (await store.create_dossier(new(0))).dossier
    upd = AgencyUpdate(event_id="x", dossier_code=d.code, status=S.FINISHED, note="done")
    assert (await store.apply_update(upd, source=POLICE)).applied
    assert await statuses(store, d.id) == [2, 4, 9]
    got = await store.get_dossier(d.code)
    assert got is not None and got.status == S.FINISHED


async def test_illegal_transition_raises_and_changes_nothing(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    d = (await store.create_dossier(new(0))).dossier
    await store.apply_update(update(d.id, S.FINISHED, "e1"), source=POLICE)
    with pytest.raises(IllegalTransition) as err:
        await store.apply_update(update(d.id, S.STOPPED, "e2"), source=POLICE)
    assert str(err.value).startswith("a dossier in status 9 (finished) cannot move to 8 (stopped)")
    assert await statuses(store, d.id) == [2, 4, 9]
    # The refused event id was not recorded: a later legal event may use it.
    assert (await store.apply_update(update(d.id, S.RETURNED, "e2"), source=POLICE)).applied


async def test_update_for_an_unknown_dossier(store: SqliteStore) -> None:
    with pytest.raises(LookupError, match=r"no dossier 000\.00\.01\.H26-261120-0042"):
        await store.apply_update(
            AgencyUpdate(event_id="e", dossier_code="000.00.01.H26-261120-0042", status=S.PROCESSING), source=POLICE
        )


# -- the outbox --------------------------------------------------------------------------------------


async def test_claims_respect_free_slots_per_agency(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    for i in range(5):
        await store.create_dossier(new(i, agency="police"))
    for i in range(3):
        await store.create_dossier(new(i, agency="land"))
    got = await store.claim_jobs("w1", {"police": 2, "land": 0}, 60)
    assert [j.agency for j in got] == ["police", "police"]
    assert all(j.state == "leased" and j.attempts == 1 for j in got)
    got = await store.claim_jobs("w1", {"police": 10, "land": 1}, 60)
    assert sorted(j.agency for j in got) == ["land", "police", "police", "police"]
    assert await store.claim_jobs("w1", {"police": 10, "land": -1}, 60) == []
    assert len(await store.claim_jobs("w1", {"land": 10}, 60)) == 2
    assert [j.state for j in await store.jobs()] == ["leased"] * 8


async def test_fail_job_retry_then_dead_then_replay(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    d = (await store.create_dossier(new(0))).dossier
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    assert not await store.fail_job(job.id, "someone-else", "boom", None)
    assert await store.fail_job(job.id, "w1", "AgencyUnavailable: 503", time.time() + 3600)
    assert not await store.fail_job(job.id, "w1", "late", None)  # no longer leased
    assert await store.claim_jobs("w1", {"police": 1}, 60) == []  # not due for an hour
    [pending] = await store.jobs("pending")
    assert (pending.attempts, pending.last_error) == (1, "AgencyUnavailable: 503")

    await make_due(store)
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    assert job.attempts == 2
    assert await store.fail_job(job.id, "w1", "AgencyRejected: 422", None)
    [dead] = await store.jobs("dead")
    assert (dead.id, dead.attempts, dead.last_error) == (job.id, 2, "AgencyRejected: 422")
    assert await store.claim_jobs("w1", {"police": 1}, 60) == []
    got = await store.get_dossier(str(d.id))
    assert got is not None and got.delivery is not None and got.delivery.state == "dead"

    assert await store.replay_dead([job.id + 100]) == 0
    assert await store.replay_dead([job.id]) == 1
    assert await store.replay_dead() == 0
    [again] = await store.jobs("pending")
    assert (again.id, again.attempts) == (job.id, 0)
    assert len(await store.claim_jobs("w1", {"police": 1}, 60)) == 1


async def test_complete_job(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    d = (await store.create_dossier(new(0))).dossier
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    receipt = SubmitReceipt(agency_ref="CA-0000001")
    assert not (await store.complete_job(job.id, "w2", receipt, actor="agency:police")).recorded
    assert (await store.complete_job(job.id, "w1", receipt, actor="agency:police")).recorded
    assert not (await store.complete_job(job.id, "w1", receipt, actor="agency:police")).recorded  # already done
    got = await store.get_dossier(str(d.id))
    assert got is not None
    assert (got.status, got.agency_ref, got.delivery and got.delivery.state) == (
        S.PROCESSING,
        "CA-0000001",
        "delivered",
    )
    assert await statuses(store, d.id) == [2, 4]


async def test_release_leases(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    for i in range(3):
        await store.create_dossier(new(i))
    assert len(await store.claim_jobs("w1", {"police": 2}, 60)) == 2
    assert await store.release_leases() == 2
    assert [j.state for j in await store.jobs()] == ["pending"] * 3
    counts = await store.counts()
    assert counts["jobs_by_state"] == {"pending": 3}
    assert counts["dossiers_by_status"] == {2: 3}


async def test_released_deliveries_go_first(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    interrupted = [(await store.create_dossier(new(i))).dossier.id for i in range(2)]
    assert len(await store.claim_jobs("w1", {"police": 2}, 60)) == 2
    later = [(await store.create_dossier(new(i))).dossier.id for i in range(2, 4)]
    assert await store.release_leases() == 2
    first = await store.claim_jobs("w2", {"police": 2}, 60)
    assert sorted(j.dossier_id for j in first) == sorted(interrupted)
    assert sorted(j.dossier_id for j in await store.claim_jobs("w2", {"police": 2}, 60)) == sorted(later)


# -- outages: endpoints left out of claims, the retry budget, replays by agency and time ---------------


async def land(store: SqliteStore, new: Callable[..., NewDossier], office: str, i: int) -> uuid.UUID:
    return (await store.create_dossier(dataclasses.replace(new(i, agency="land"), endpoint=office))).dossier.id


async def test_a_claim_leaves_out_the_endpoints_not_named(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    order = {}
    for i in range(3):
        for office in ("hanoi", "hcm", "danang"):
            order[await land(store, new, office, i)] = (office, i)
    # Two endpoints at once: the oldest due across them, none of the office left out.
    got = await store.claim_jobs("w1", {"land": 3}, 60, endpoints={"land": {"hcm": 3, "danang": 3}})
    assert [order[j.dossier_id] for j in got] == [("hcm", 0), ("danang", 0), ("hcm", 1)]
    assert await store.release_leases() == 3
    # Hanoi's breaker is open (left out), Da Nang is probed (one job), Ho Chi Minh City goes as usual.
    got = await store.claim_jobs("w1", {"land": 8}, 60, endpoints={"land": {"hcm": 8, "danang": 1}})
    assert sorted(j.endpoint for j in got) == ["danang", "hcm", "hcm", "hcm"]
    assert await store.claim_jobs("w1", {"land": 8}, 60, endpoints={"land": {"hcm": 8}}) == []
    # The agency's free slots bound the endpoints together; a probe is taken first.
    got = await store.claim_jobs("w1", {"land": 2}, 60, endpoints={"land": {"hanoi": 2, "danang": 1}})
    assert sorted(j.endpoint for j in got) == ["danang", "hanoi"]
    assert await store.pending_by_endpoint() == {("land", "hanoi"): 2, ("land", "danang"): 1}


async def test_the_retry_budget_counts_only_the_time_a_job_is_tried(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    await store.create_dossier(new(0))
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    assert (job.failing_since, job.held) == (None, 0.0)
    before = time.time()
    assert await store.fail_job(job.id, "w1", "AgencyUnavailable: 503", time.time() - 100)  # due 100 s ago
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    # It failed first just now; the 100 s it waited past its due time (held: nobody sent it) are not spent.
    assert job.failing_since is not None and before <= job.failing_since <= time.time()
    assert 100 <= job.held < 101
    first = job.failing_since
    assert await store.fail_job(job.id, "w1", "AgencyTimeout", time.time() + 3600)
    [pending] = await store.jobs("pending")
    assert (pending.failing_since, pending.held) == (first, job.held)  # the first failure is kept
    await make_due(store)
    assert await store.unclaim_job(pending.id, "w1") is False  # not leased: nothing to give back
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    held = job.held
    # Given back unsent (its endpoint became held meanwhile): the attempt is not counted, the wait not twice.
    assert await store.unclaim_job(job.id, "w1")
    [back] = await store.jobs("pending")
    assert (back.state, back.attempts, back.held) == ("pending", job.attempts - 1, held)
    [again] = await store.claim_jobs("w1", {"police": 1}, 60)
    assert again.attempts == job.attempts and again.held - held < 1


async def test_replay_by_agency_endpoint_and_time_of_death(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    await store.create_dossier(new(0))
    await land(store, new, "hanoi", 1)
    await land(store, new, "hcm", 2)
    for job in await store.claim_jobs("w1", {"police": 1, "land": 2}, 60):
        assert await store.fail_job(job.id, "w1", "AgencyRejected: 422", None)
    assert await store.replay_dead(agency="land", since=time.time() + 60) == 0  # none died after that
    entry = AuditEntry("operator", "replay", "allowed", "admin", detail={"agency": "land"})
    assert await store.replay_dead(agency="land", endpoint="hcm", since=time.time() - 60, audit=entry) == 1
    assert [(j.agency, j.endpoint) for j in await store.jobs("pending")] == [("land", "hcm")]
    assert [j.agency for j in await store.jobs("dead", agency="land")] == ["land"]
    assert [j.agency for j in await store.jobs("dead", since=time.time() + 60)] == []
    [replayed] = await store.jobs("pending")
    assert (replayed.attempts, replayed.failing_since, replayed.held) == (0, None, 0.0)
    [record] = await store.audit_log()
    assert (record.client_id, record.action, record.detail) == ("operator", "replay", {"agency": "land", "replayed": 1})


# -- supplements ------------------------------------------------------------------------------------


async def test_supplement_request_without_a_deadline_gets_seven_working_days(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    d = (await store.create_dossier(new(0))).dossier
    asked = datetime(2026, 12, 4, 10, 0, tzinfo=VN_TZ)
    upd = update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", at=asked, note="Thiếu giấy tờ", data={"items": ["CT07"]})
    await store.apply_update(upd, source=POLICE)
    got = await store.get_dossier(str(d.id))
    assert got is not None
    [request] = got.supplements
    assert (request.requested_by, request.items, request.note) == ("police", ["CT07"], "Thiếu giấy tờ")
    assert request.due_at == supplement_deadline(asked) == datetime(2026, 12, 15, 10, 0, tzinfo=VN_TZ)
    assert (await store.events(d.id))[-1].data["due_at"] == request.due_at.isoformat()


async def test_answering_a_supplement_moves_the_due_date_by_the_days_waited(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    d = (await store.create_dossier(new(0))).dossier
    # Asked three working days ago, with the agency's own deadline.
    asked = working_days_ago(3)
    due = asked + timedelta(days=9)
    upd = update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", at=asked, data={"items": ["CT07"], "due_at": due.isoformat()})
    await store.apply_update(upd, source=POLICE)
    before = await store.get_dossier(str(d.id))
    assert before is not None and before.supplements[0].due_at == due

    after = await store.answer_supplement(d.id, {"note": "x", "attachments": [{"name": "CT07"}]}, actor="centre")
    assert after.status == S.PROCESSING
    assert after.due_at == add_working_days(before.due_at, 3)
    [request] = after.supplements
    assert request.answered_at is not None
    assert (request.dossier_due_before, request.dossier_due_after) == (before.due_at, after.due_at)
    event = (await store.events(d.id))[-1]
    moved = (datetime.fromisoformat(event.data["old_due_at"]), datetime.fromisoformat(event.data["new_due_at"]))
    assert moved == (before.due_at, after.due_at)
    [job] = [j for j in await store.jobs("pending") if j.step != "submit"]
    assert (job.step, job.inputs["note"]) == ("supplement-1", "x")


async def test_a_supplement_not_brought_in_time_refuses_the_dossier_once(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    late, answered, waiting = [(await store.create_dossier(new(i))).dossier for i in range(3)]
    asked = datetime(2026, 12, 4, 10, 0, tzinfo=VN_TZ)
    for d in (late, answered, waiting):
        upd = update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", at=asked, data={"items": ["CT07"]})
        await store.apply_update(upd, source=POLICE)
    await store.answer_supplement(answered.id, {"note": "x", "attachments": [{"name": "CT07"}]}, actor="centre")
    due = supplement_deadline(asked)  # 15/12/2026 10:00, seven working days later

    assert await store.expire_supplements(due - timedelta(minutes=1)) == []
    assert sorted(await store.expire_supplements(due + timedelta(minutes=1))) == sorted([late.id, waiting.id])
    for d in (late, waiting):
        last = (await store.events(d.id))[-1]
        assert (last.status, last.actor) == (S.REJECTED, "gateway")
        assert last.note == "the documents asked for were not supplied by 15/12/2026 10:00"
        assert last.data["items"] == ["CT07"]
    assert (await store.expire_supplements(due + timedelta(days=30))) == []  # once, however often it runs
    got = await store.get_dossier(str(answered.id))
    assert got is not None and got.status == S.PROCESSING
    with pytest.raises(IllegalTransition):  # too late to answer now
        await store.answer_supplement(late.id, {"note": "y", "attachments": [{"name": "CT07"}]}, actor="centre")

    # The agency still holds each refused case open: one withdrawal job per dossier tells it, once.
    withdrawals = [j for j in await store.jobs(state="pending", limit=1000) if j.step == "withdraw"]
    assert sorted(j.dossier_id for j in withdrawals) == sorted([late.id, waiting.id])
    for job in withdrawals:
        assert (job.agency, job.idempotency_key) == (late.agency, f"{job.dossier_id}:withdraw")
        assert job.inputs["reason"] == "the documents asked for were not supplied by 15/12/2026 10:00"
        assert job.inputs["items"] == ["CT07"]


async def test_an_answer_restores_the_status_the_request_interrupted(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    answer = {"note": "x", "attachments": [{"name": "CT07", "component_code": "CT07", "size": 3}]}
    # Processing (4) when asked: processing again.
    d = (await store.create_dossier(new(0))).dossier
    await store.apply_update(update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", data={"items": ["CT07"]}), source=POLICE)
    assert (await store.answer_supplement(d.id, answer, actor="centre-hanoi")).status == S.PROCESSING
    assert await statuses(store, d.id) == [2, 4, 5, 4]
    # In transfer (0) when asked: in transfer again, not processing.
    t = (await store.create_dossier(new(1))).dossier
    await store.apply_update(update(t.id, S.IN_TRANSFER, "lt-1"), source=POLICE)
    await store.apply_update(update(t.id, S.SUPPLEMENT_REQUESTED, "bs-1", data={"items": ["CT07"]}), source=POLICE)
    answered = await store.answer_supplement(t.id, answer, actor="centre-hanoi")
    assert answered.status == S.IN_TRANSFER
    assert await statuses(store, t.id) == [2, 4, 0, 5, 0]
    [request] = answered.supplements
    assert (request.answered_by, [doc.name for doc in request.documents]) == ("centre-hanoi", ["CT07"])

    # Asked at reception (2), before any agency took it: received (2) again (5 -> 2).
    r = (await store.create_dossier(new(2))).dossier

    def ask_at_reception(conn: sqlite3.Connection, event_id: str) -> None:
        upd = update(r.id, S.SUPPLEMENT_REQUESTED, event_id, data={"items": ["CT07"]})
        data = dict(upd.data)
        record_request(conn, str(r.id), "centre-hanoi", upd, data)
        insert_event(conn, str(r.id), int(S.SUPPLEMENT_REQUESTED), "centre-hanoi", "", data, event_id)

    await store._write(lambda conn: ask_at_reception(conn, "desk-1"))
    assert (await store.answer_supplement(r.id, answer, actor="centre-hanoi")).status == S.RECEIVED
    assert await statuses(store, r.id) == [2, 5, 2]
    # The agency's own word may do the same: 5 -> 2 for it, and only for it.
    await store._write(lambda conn: ask_at_reception(conn, "desk-2"))
    outcome = await store.apply_update(update(r.id, S.RECEIVED, "back-at-desk"), source=POLICE)
    assert (outcome.applied, outcome.status) == (True, int(S.RECEIVED))
    await store.apply_update(update(d.id, S.SUPPLEMENT_REQUESTED, "bs-2", data={"items": ["CT08"]}), source=POLICE)
    with pytest.raises(IllegalTransition, match=r"cannot move to 2 \(received\); allowed: 0 .*4 \(processing\)"):
        await store.apply_update(update(d.id, S.RECEIVED, "not-at-desk"), source=POLICE)


async def test_a_second_supplement_request_is_flagged(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    """The national portal counts a dossier asked for documents more than once as late."""
    d = (await store.create_dossier(new(0))).dossier
    d = d.model_copy(update={"due_at": datetime.now(UTC) + timedelta(days=30)})
    await store._write(
        lambda conn: conn.execute("UPDATE dossiers SET due_at = ? WHERE id = ?", (d.due_at.isoformat(), str(d.id)))
    )
    await store.apply_update(update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", data={"items": ["CT07"]}), source=POLICE)
    once = await store.get_dossier(str(d.id))
    assert once is not None and not once.overdue and not once.supplements[0].repeated
    assert "repeated_supplement" not in (await store.events(d.id))[-1].data
    await store.answer_supplement(d.id, {"note": "x", "attachments": [{"name": "CT07"}]}, actor="centre-hanoi")
    await store.apply_update(update(d.id, S.SUPPLEMENT_REQUESTED, "bs-2", data={"items": ["CT08"]}), source=POLICE)
    twice = await store.get_dossier(str(d.id))
    assert twice is not None
    assert [r.repeated for r in twice.supplements] == [False, True]
    assert (await store.events(d.id))[-1].data["repeated_supplement"] == 2
    assert twice.overdue  # well before its due date
    assert twice.due_at > datetime.now(UTC)


async def test_supplement_deadlines_follow_the_calendar_the_store_is_given(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    asked = datetime(2026, 12, 4, 10, 0, tzinfo=VN_TZ)  # Friday; seven working days: Tuesday 15 December
    d = (await store.create_dossier(new(0))).dossier
    await store.apply_update(
        update(d.id, S.SUPPLEMENT_REQUESTED, "bs-1", at=asked, data={"items": ["CT07"]}), source=POLICE
    )
    store.use_calendar(lambda: WorkCalendar.of(days_off=[date(2026, 12, 8)]))
    e = (await store.create_dossier(new(1))).dossier
    await store.apply_update(
        update(e.id, S.SUPPLEMENT_REQUESTED, "bs-1", at=asked, data={"items": ["CT07"]}), source=POLICE
    )
    got = [await store.get_dossier(str(x.id)) for x in (d, e)]
    assert [g.supplements[0].due_at for g in got if g is not None] == [
        datetime(2026, 12, 15, 10, 0, tzinfo=VN_TZ),
        datetime(2026, 12, 16, 10, 0, tzinfo=VN_TZ),  # the operator's day off on Tuesday 8 December
    ]


async def test_a_portal_refusal_is_kept_on_the_dossier_until_cleared(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    a, b = [(await store.create_dossier(new(i))).dossier for i in range(2)]
    refusal = PortalRefusal(
        at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        service="DongBoHoSoMC",
        error_code="1",
        message=f"Hồ sơ {a.code}: trường NgayHenTra không hợp lệ",
        field="NgayHenTra",
    )
    assert await store.record_portal_refusal([a.code, "000.00.01.H26-261120-9999"], refusal) == 1
    got = await store.get_dossier(a.code)
    assert got is not None and got.portal_refusal == refusal
    assert [x.portal_refusal for x in await store.list_dossiers(client_id=None, status=None, limit=10)].count(
        refusal
    ) == 1
    assert (await store.feed(after=0, limit=10))[0].dossier.portal_refusal == refusal
    assert await store.clear_portal_refusals([a.code, b.code]) == 1
    assert await store.clear_portal_refusals([a.code]) == 0
    got = await store.get_dossier(a.code)
    assert got is not None and got.portal_refusal is None


def working_days_ago(n: int) -> datetime:
    now = day = datetime.now(VN_TZ)
    while working_days_between(day.date(), now.date()) < n:
        day -= timedelta(days=1)
    return day


# -- bundles -----------------------------------------------------------------------------------------


async def test_a_step_whose_input_is_missing_is_dead_until_retried(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    first, second = new(0), new(1)
    bid = uuid.uuid4()
    steps = [NewBundleStep("a", first, {}), NewBundleStep("b", second, {"number": "a.register_number"})]
    await store.create_bundle(NewBundle(bid, "t", "test", "centre-hanoi", RECEIVED, steps, None, "h"))
    await store.apply_update(update(first.id, S.FINISHED, "a-1"), source=POLICE)  # no outputs
    view = await store.get_bundle(str(bid))
    assert view is not None
    assert (view.state, view.actions) == ("action_required", ["retry", "cancel_remaining"])
    [dead] = await store.jobs("dead")
    assert (dead.dossier_id, dead.attempts, dead.inputs) == (second.id, 0, {"number": "a.register_number"})
    assert dead.last_error == "earlier steps did not provide a.register_number"
    # Still missing: the retry dead-letters it again rather than send the reference as a value.
    assert await store.retry_bundle(bid) == 0
    assert [j.inputs for j in await store.jobs("dead")] == [{"number": "a.register_number"}]
    # The agency reports the output after all; now the retry resolves it.
    late = update(first.id, S.FINISHED, "a-2", outputs={"register_number": "17"})
    await store.apply_update(late, source=POLICE)
    assert await store.retry_bundle(bid) == 1
    [ready] = [j for j in await store.jobs("pending") if j.dossier_id == second.id]
    assert (ready.dossier_id, ready.inputs, ready.last_error) == (second.id, {"number": "17"}, None)


async def test_a_database_of_the_first_schema_is_migrated(tmp_path: Path, new: Callable[..., NewDossier]) -> None:
    path = tmp_path / "old.db"

    def first_schema() -> None:
        conn = sqlite3.connect(path)
        conn.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
        conn.close()

    def version() -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()

    await asyncio.to_thread(first_schema)
    store = SqliteStore(path)
    await store.open()
    try:
        d = (await store.create_dossier(new(0))).dossier
        assert d.supplements == []
    finally:
        await store.close()
    assert await asyncio.to_thread(version) == len(MIGRATIONS) == 15

    def indexes() -> set[str]:
        conn = sqlite3.connect(path)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        finally:
            conn.close()

    assert {"jobs_dossier", "jobs_endpoint_pending"} <= await asyncio.to_thread(indexes)


async def make_due(store: SqliteStore) -> None:
    """Every pending job is due now, instead of at its retry time."""
    await store._write(lambda conn: conn.execute("UPDATE jobs SET next_at = 0 WHERE state = 'pending'").rowcount)


async def test_a_second_serving_store_is_refused_and_writes_nothing(
    tmp_path: Path, new: Callable[..., NewDossier]
) -> None:
    first = SqliteStore(tmp_path / "one.db", exclusive=True)
    await first.open()
    try:
        second = SqliteStore(tmp_path / "one.db", exclusive=True)
        with pytest.raises(ServiceUnavailable):
            await second.open()
        with pytest.raises(RuntimeError, match="not open"):
            await second.create_dossier(new(0))
        assert (await first.create_dossier(new(0))).created
    finally:
        await first.close()


# -- trust boundaries and failure handling -----------------------------------------------------------


async def test_an_update_touches_only_dossiers_routed_to_its_agency_and_endpoint(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    police = (await store.create_dossier(new(0))).dossier
    land = (await store.create_dossier(dataclasses.replace(new(1, agency="land"), endpoint="hanoi"))).dossier
    for target, source in [
        (police, UpdateSource.of_agency("land", "hanoi")),
        (police, UpdateSource.of_agency("police", "regional")),  # the right agency, another endpoint
        (land, UpdateSource.of_agency("land", "hcm")),  # another office of the same agency
        (land, UpdateSource.of_agency("police")),
    ]:
        with pytest.raises(WrongAgency) as err:
            await store.apply_update(update(target.id, S.FINISHED, "x"), source=source)
        assert err.value.dossier_id == str(target.id) and err.value.event_id == "x"
    # An agency that names no endpoint (a callback) is bound by its instance; the gateway by nothing.
    assert (await store.apply_update(update(land.id, S.PROCESSING, "y"), source=UpdateSource.of_agency("land"))).applied
    assert (await store.apply_update(update(police.id, S.FINISHED, "z"), source=POLICE)).applied
    returned = AgencyUpdate(event_id="r", dossier_id=police.id, status=S.RETURNED)
    assert (await store.apply_update(returned, source=UpdateSource("centre-hcm"))).applied
    assert await statuses(store, police.id) == [2, 4, 9, 10]
    assert await statuses(store, land.id) == [2, 4]


async def test_a_replay_key_is_refused_within_its_window_only(
    store: SqliteStore, new: Callable[..., NewDossier], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = (await store.create_dossier(new(0))).dossier
    key = ReplayKey("police", "kid:nonce-1", window=60)
    await store.apply_updates([update(d.id, S.PROCESSING, "e1")], source=POLICE, replay=key)
    with pytest.raises(ReplayedRequest):
        await store.apply_updates([], source=POLICE, replay=key)
    # Another agency's key of the same value is another key.
    await store.apply_updates([], source=POLICE, replay=ReplayKey("justice", "kid:nonce-1", window=60))
    # Past its window (written an hour ago), the key is taken again, then refused within its new window.
    await store._write(lambda conn: conn.execute("UPDATE replay_keys SET seen_at = seen_at - 3600"))
    await store.apply_updates([], source=POLICE, replay=key)
    with pytest.raises(ReplayedRequest):
        await store.apply_updates([], source=POLICE, replay=key)
    # Keys past their window are swept as new keys come, at most once a second.
    await store._write(lambda conn: conn.execute("UPDATE replay_keys SET seen_at = seen_at - 3600"))
    monkeypatch.setattr(replay, "_pruned_at", 0.0)
    await store.apply_updates([], source=POLICE, replay=ReplayKey("police", "kid:nonce-2", window=60))
    kept = await store._read(lambda c: c.execute("SELECT scope, key FROM replay_keys").fetchall())
    assert [tuple(r) for r in kept] == [("police", "kid:nonce-2")]


async def test_a_receipt_superseded_by_later_news_completes_the_job(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    d = (await store.create_dossier(new(0))).dossier
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    # Meanwhile the agency's polled events finished the dossier; the redelivered submit's receipt still
    # says "financial obligation" (6): 9 -> 6 is illegal, the answer is old news, the job is done.
    await store.apply_update(update(d.id, S.FINISHED, "polled-9"), source=POLICE)
    receipt = SubmitReceipt(agency_ref="T-1", updates=[update(d.id, S.FINANCIAL_OBLIGATION, "receipt-6")])
    completion = await store.complete_job(job.id, "w1", receipt, actor="agency:police")
    assert completion.recorded
    assert list(completion.skipped) == ["receipt-6"]
    assert completion.skipped["receipt-6"].startswith("superseded: a dossier in status 9 (finished) cannot move to 6")
    assert [j.state for j in await store.jobs()] == ["done"]
    assert await statuses(store, d.id) == [2, 4, 9]


async def test_expired_leases_are_reclaimed_and_live_ones_left_alone(
    store: SqliteStore, new: Callable[..., NewDossier]
) -> None:
    for i in range(2):
        await store.create_dossier(new(i))
    [expired] = await store.claim_jobs("dead-process", {"police": 1}, -1)  # its lease has already run out
    [live] = await store.claim_jobs("other-process", {"police": 1}, 60)
    assert await store.reclaim_expired_leases() == 1
    jobs = {j.id: j for j in await store.jobs()}
    assert (jobs[expired.id].state, jobs[expired.id].attempts) == ("pending", 1)  # the attempt counts
    assert jobs[expired.id].last_error == "the lease expired before the outcome was recorded"
    assert jobs[live.id].state == "leased"
    assert await store.reclaim_expired_leases() == 0
    # The dead process's late completion changes nothing: the job is someone else's now.
    assert not (await store.complete_job(expired.id, "dead-process", SubmitReceipt(), actor="agency:police")).recorded
    [again] = await store.claim_jobs("w2", {"police": 1}, 60)
    assert (again.id, again.attempts) == (expired.id, 2)


async def test_an_undone_claim_gives_back_its_attempt(store: SqliteStore, new: Callable[..., NewDossier]) -> None:
    await store.create_dossier(new(0))
    [job] = await store.claim_jobs("w1", {"police": 1}, 60)
    assert await store.unclaim_jobs("w2", [job.id]) == 0  # not w2's to undo
    assert await store.unclaim_jobs("w1", [job.id]) == 1
    [back] = await store.jobs()
    assert (back.state, back.attempts) == ("pending", 0)
    assert await store.unclaim_jobs("w1", []) == 0


async def test_the_probe_commits(store: SqliteStore) -> None:
    await store.probe()
    await store.probe()
    rows_ = await store._read(lambda c: c.execute("SELECT id, length(payload) FROM store_probe").fetchall())
    assert [tuple(r) for r in rows_] == [(1, 16 * 1024)]


async def test_a_schema_newer_than_known_is_refused(store: SqliteStore) -> None:
    """Both backends: a store written by a newer Lienthong is not opened (nor written) by this one."""
    newer = len(MIGRATIONS) + 1
    if isinstance(store, PostgresStore):
        await store._write(lambda conn: conn.execute("UPDATE schema_version SET version = ?", (newer,)))
        again: SqliteStore = PostgresStore(store.url)
    else:
        await store._write(lambda conn: conn.execute(f"PRAGMA user_version = {newer}"))
        again = SqliteStore(store.path)
    with pytest.raises(SchemaTooNew, match=f"schema version {newer}, newer than this Lienthong knows"):
        await again.open()
    await again.close()
