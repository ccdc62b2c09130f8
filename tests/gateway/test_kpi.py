"""Centre performance: the figures of a seeded set of dossiers whose due and finish dates straddle a
holiday (1-2 January 2026) and a make-up Saturday (10 January 2026) equal the values worked out by hand;
the league follows the configured weights; a rebuild from the events gives the same figures."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts import DossierStatus as S
from contracts.calendar import NATIONAL, VN_TZ, preload
from gateway import kpi
from gateway.connector import AgencyUpdate
from gateway.store import SqliteStore
from gateway.store.base import NewDossier, UpdateSource
from plugins.police.demo import demo_dossiers

POLICE = UpdateSource.of_agency("police", "national")
HANOI, HCM = "000.00.01.H26", "000.00.01.H58"
FROM, TO = date(2025, 12, 31), date(2026, 1, 31)


# Read once, outside the event loop (the demo data comes from the plugin's files).
SUBMISSION = demo_dossiers(7, 1)[0]
preload(range(2025, 2027))


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)  # type: ignore[misc]


async def seed(store: SqliteStore, unit: str, client: str, received: datetime, days: int, **sub: Any) -> uuid.UUID:
    submission = copy.deepcopy(SUBMISSION) | sub
    new = NewDossier(
        id=uuid.uuid4(),
        receiving_unit=unit,
        day=received.date(),
        procedure_code=submission["procedure_code"],
        procedure_name="Đăng ký thường trú",
        client_id=client,
        agency="police",
        endpoint="national",
        received_at=received,
        due_at=NATIONAL.add_working_days(received, days),
        submission=submission,
        idempotency_key=None,
        body_hash=hashlib.sha256(str(received).encode()).hexdigest(),
    )
    return (await store.create_dossier(new)).dossier.id


async def move(store: SqliteStore, did: uuid.UUID, status: S, at: datetime, source: UpdateSource = POLICE) -> None:
    data = {"items": ["CT01"]} if status == S.SUPPLEMENT_REQUESTED else {}
    upd = AgencyUpdate(event_id=f"{did}-{int(status)}", dossier_id=did, status=status, at=at, data=data)
    await store.apply_update(upd, source=source)


PAID = [{"code": "LP", "name": "Lệ phí đăng ký cư trú", "amount": 20000, "paid_online": True}]


async def seeded(store: SqliteStore) -> None:
    # Hà Nội. A: received Wednesday 31/12/2025, 3 working days: 1-2 January are off, so due Wednesday 7/1;
    # finished Tuesday 6/1: on time, in 2 working days (5/1, 6/1).
    a = await seed(store, HANOI, "centre-hanoi", vn(2025, 12, 31, 9), 3)
    await move(store, a, S.FINISHED, vn(2026, 1, 6, 15))
    # B: received Thursday 8/1, 2 working days: Friday 9/1 and the make-up Saturday 10/1, so due Saturday
    # 10/1 10:00; finished Monday 12/1: late (it would be on time without the make-up day), 3 working days.
    b = await seed(store, HANOI, "centre-hanoi", vn(2026, 1, 8, 10), 2)
    await move(store, b, S.FINISHED, vn(2026, 1, 12, 9))
    # Hồ Chí Minh City. C: received Monday 5/1, due Monday 12/1, asked for documents, still open (late now).
    c = await seed(store, HCM, "centre-hcm", vn(2026, 1, 5, 8, 30), 5)
    await move(store, c, S.SUPPLEMENT_REQUESTED, vn(2026, 1, 6, 9))
    # D: received 5/1, finished Friday 9/1 (4 working days), handed over at a Hà Nội centre.
    d = await seed(store, HCM, "centre-hcm", vn(2026, 1, 5, 9), 5)
    await move(store, d, S.FINISHED, vn(2026, 1, 9, 16))
    await move(store, d, S.RETURNED, vn(2026, 1, 12, 8), UpdateSource("centre-hanoi"))
    # E: received 6/1 with its fee paid online, finished 7/1 (1 working day), handed over where received.
    e = await seed(store, HCM, "centre-hcm", vn(2026, 1, 6, 14), 5, fees=PAID)
    await move(store, e, S.FINISHED, vn(2026, 1, 7, 11))
    await move(store, e, S.RETURNED, vn(2026, 1, 8, 8), UpdateSource("centre-hcm"))


EXPECTED = {
    HANOI: {
        "received": 2,
        "finished": 2,
        "on_time": 1,
        "late": 1,
        "on_time_rate": 0.5,
        "in_progress": 0,
        "in_progress_late": 0,
        "avg_working_days": 2.5,
        "p90_working_days": 3,
        "supplements": 0,
        "returned": 0,
        "returned_elsewhere": 0,
        "returned_elsewhere_share": None,
        "with_fees": 0,
        "paid_online": 0,
        "paid_online_share": None,
    },
    HCM: {
        "received": 3,
        "finished": 2,
        "on_time": 2,
        "late": 0,
        "on_time_rate": 1.0,
        "in_progress": 1,
        "in_progress_late": 1,
        "avg_working_days": 2.5,
        "p90_working_days": 4,
        "supplements": 1,
        "returned": 2,
        "returned_elsewhere": 1,
        "returned_elsewhere_share": 0.5,
        "with_fees": 1,
        "paid_online": 1,
        "paid_online_share": 1.0,
    },
}


async def report(store: SqliteStore, by: str, start: date = FROM, end: date = TO) -> dict[str, dict[str, Any]]:
    lines = kpi.report(await store.kpi_rows(by, start, end, datetime.now(UTC)))
    return {ln.pop("item"): ln for ln in lines}


async def test_kpis_per_centre_equal_the_hand_computed_values(store: SqliteStore) -> None:
    await seeded(store)
    assert await report(store, "centre") == EXPECTED


async def test_kpis_per_agency_procedure_and_province_add_up(store: SqliteStore) -> None:
    await seeded(store)
    [police] = (await report(store, "agency")).values()
    assert (police["received"], police["finished"], police["on_time"], police["late"]) == (5, 4, 3, 1)
    assert (police["avg_working_days"], police["p90_working_days"]) == (2.5, 4)  # 2, 3, 4, 1
    assert sum(line["received"] for line in (await report(store, "procedure")).values()) == 5
    provinces = await report(store, "province")
    assert sum(line["finished"] for line in provinces.values()) == 4 and all(len(p) == 2 for p in provinces)


async def test_the_period_counts_each_figure_on_its_own_day(store: SqliteStore) -> None:
    await seeded(store)
    # From 1 January: A's reception (31/12) is outside, its finish (6/1) inside.
    hanoi = (await report(store, "centre", date(2026, 1, 1), TO))[HANOI]
    assert (hanoi["received"], hanoi["finished"]) == (1, 2)
    # Up to 8 January: B's finish (12/1) and D's hand-over elsewhere (12/1) are outside.
    early = await report(store, "centre", FROM, date(2026, 1, 8))
    assert (early[HANOI]["finished"], early[HANOI]["late"]) == (1, 0)
    assert (early[HCM]["returned"], early[HCM]["returned_elsewhere"]) == (1, 0)
    # Open dossiers are counted now, whatever the period.
    assert early[HCM]["in_progress"] == 1


async def test_a_rebuild_from_the_events_gives_the_same_figures(store: SqliteStore) -> None:
    await seeded(store)
    before = {by: await report(store, by) for by in ("centre", "agency", "procedure", "province")}
    assert await store.rebuild_kpis() == 5
    assert {by: await report(store, by) for by in before} == before


def line(item: str, finished: int, on_time: int, received: int = 0) -> dict[str, Any]:
    return {
        "item": item,
        "finished": finished,
        "received": received or finished,
        "on_time_rate": on_time / finished if finished else None,
    }


def test_the_league_follows_the_configured_weights() -> None:
    # A: small and always on time; B: three times the volume, 80% on time; C: too few to rank.
    now = [line("A", 10, 10), line("B", 30, 24), line("C", 0, 0, received=4)]
    before = [line("A", 10, 5), line("B", 10, 10)]
    on_time = kpi.league(now, before, kpi.LeagueSettings(on_time_weight=1.0, volume_weight=0.0))
    assert [(s.centre, s.rank) for s in on_time] == [("A", 1), ("B", 2), ("C", None)]
    assert on_time[0].movement == 1 and on_time[1].movement == -1  # A was second, B first
    volume = kpi.league(now, before, kpi.LeagueSettings(on_time_weight=0.3, volume_weight=0.7))
    # A: 0.3 * 1.0 + 0.7 * 10/30 = 0.5333; B: 0.3 * 0.8 + 0.7 * 1 = 0.94
    assert [(s.centre, s.rank, s.score) for s in volume[:2]] == [("B", 1, 0.94), ("A", 2, 0.533333)]
    assert volume[0].movement == 0  # B was first before too, with these weights


def test_percentile_is_the_nearest_rank() -> None:
    assert kpi.percentile(Counter({1: 9, 20: 1}), 0.9) == 1
    assert kpi.percentile(Counter({1: 8, 20: 2}), 0.9) == 20
    assert kpi.percentile(Counter(), 0.9) is None


@pytest.mark.parametrize(
    ("start", "end"), [(date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 3, 1), date(2026, 3, 1))]
)
def test_the_previous_period_has_the_same_length(start: date, end: date) -> None:
    p_start, p_end = kpi.previous_period(start, end)
    assert (p_end - p_start) == (end - start) and (start - p_end).days == 1


async def test_a_due_date_moved_by_a_supplement_answer_decides_lateness(store: SqliteStore) -> None:
    now = datetime.now(UTC)
    received = now - timedelta(days=20)
    did = await seed(store, HANOI, "centre-hanoi", received, 3)  # due about a fortnight ago
    asked = AgencyUpdate(
        event_id="ask-1",
        dossier_id=did,
        status=S.SUPPLEMENT_REQUESTED,
        at=received + timedelta(days=1),
        data={"items": ["CT01"], "due_at": (now + timedelta(days=5)).isoformat()},
    )
    await store.apply_update(asked, source=POLICE)
    today = now.astimezone(VN_TZ).date()
    line = (await report(store, "centre", today, today))[HANOI]
    assert (line["in_progress"], line["in_progress_late"]) == (1, 1)
    # The clock stopped from the request to the answer (about 13 working days): due again in a few days.
    await store.answer_supplement(did, {"note": "bổ sung", "attachments": [{"name": "CT01"}]}, actor="centre-hanoi")
    line = (await report(store, "centre", today, today))[HANOI]
    assert (line["in_progress"], line["in_progress_late"]) == (1, 0)


async def test_submissions_committed_together_are_each_counted(store: SqliteStore) -> None:
    day = vn(2026, 1, 5, 9)
    units = [HANOI, HCM] * 20
    fees = [PAID if i % 4 == 0 else [] for i in range(40)]
    await asyncio.gather(*(seed(store, u, "c", day, 3, fees=f) for u, f in zip(units, fees, strict=True)))
    assert store.commits < 40  # grouped: several dossiers per transaction
    lines = await report(store, "centre", day.date(), day.date())
    assert {u: (ln["received"], ln["with_fees"], ln["in_progress"]) for u, ln in lines.items()} == {
        HANOI: (20, 10, 20),
        HCM: (20, 0, 20),
    }
    [police] = (await report(store, "agency", day.date(), day.date())).values()
    assert (police["received"], police["paid_online"]) == (40, 10)
