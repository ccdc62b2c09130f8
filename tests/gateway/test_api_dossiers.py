"""POST/GET /v1/dossiers: acceptance, dossier codes, due dates in working days, idempotency."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.calendar import VN_TZ, add_working_days, working_days_between
from gateway.api.keys import STORE
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status

Make = Callable[[int], dict[str, Any]]


def with_procedure(body: dict[str, Any], code: str) -> dict[str, Any]:
    body["procedure_code"] = code
    return body


async def test_accepted_dossier_summary(harness: GatewayHarness, submission: Make) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert resp.status == 202
    body = await resp.json()
    assert resp.headers["Location"] == f"/v1/dossiers/{body['id']}"
    assert "Idempotent-Replayed" not in resp.headers
    today = datetime.now(VN_TZ).strftime("%y%m%d")
    assert re.fullmatch(rf"000\.00\.01\.H26-{today}-\d{{4}}", body["code"])
    assert body["status"] == 2
    assert body["status_label"] == "received"
    assert body["agency"] == "police"


async def test_codes_follow_each_other_per_centre(harness: GatewayHarness, submission: Make) -> None:
    codes = []
    for i, who in enumerate(["centre-hanoi", "centre-hanoi", "centre-hcm"]):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers(who))
        codes.append((await resp.json())["code"])
    assert [c.rsplit("-", 1)[1] for c in codes] == ["0001", "0002", "0001"]
    assert codes[2].startswith("000.00.01.H58-")


@pytest.mark.parametrize(("code", "days"), [("1.004194", 7), ("1.004203", 3)])
async def test_due_at_is_working_days_after_receipt(
    harness: GatewayHarness, submission: Make, code: str, days: int
) -> None:
    resp = await harness.client.post(
        "/v1/dossiers", json=with_procedure(submission(0), code), headers=harness.headers()
    )
    accepted = await resp.json()
    dossier = await (await harness.client.get(f"/v1/dossiers/{accepted['id']}", headers=harness.headers())).json()
    received = datetime.fromisoformat(dossier["received_at"])
    due = datetime.fromisoformat(accepted["due_at"])
    assert datetime.fromisoformat(dossier["due_at"]) == due
    assert due == add_working_days(received, days)
    due_local = due.astimezone(VN_TZ)  # the API speaks UTC; working days are Vietnamese calendar days
    assert due_local.weekday() < 5
    counted_from = received.astimezone(VN_TZ).date()
    # Received on a non-working day: counting starts on the next working day, which is day 0.
    assert working_days_between(counted_from, due_local.date()) in (days, days + 1)


class _FrozenDatetime(datetime):
    frozen: datetime

    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:
        return cls.fromtimestamp(cls.frozen.timestamp(), tz)


@pytest.mark.parametrize(
    ("received", "code", "due"),
    [
        # Friday before the National Day holidays (Mon 1 and Tue 2 September 2025).
        (datetime(2025, 8, 29, 10, 0, tzinfo=VN_TZ), "1.004203", datetime(2025, 9, 5, 10, 0, tzinfo=VN_TZ)),
        (datetime(2025, 8, 29, 10, 0, tzinfo=VN_TZ), "1.004194", datetime(2025, 9, 11, 10, 0, tzinfo=VN_TZ)),
        # Received on a Saturday: the count starts on the next working day (Wednesday) at 08:00.
        (datetime(2025, 8, 30, 9, 30, tzinfo=VN_TZ), "1.004203", datetime(2025, 9, 8, 8, 0, tzinfo=VN_TZ)),
    ],
)
async def test_due_at_skips_weekends_and_holidays(
    harness: GatewayHarness,
    submission: Make,
    monkeypatch: pytest.MonkeyPatch,
    received: datetime,
    code: str,
    due: datetime,
) -> None:
    frozen = type("Frozen", (_FrozenDatetime,), {"frozen": received})
    monkeypatch.setattr("gateway.intake.datetime", frozen)
    resp = await harness.client.post(
        "/v1/dossiers", json=with_procedure(submission(0), code), headers=harness.headers()
    )
    body = await resp.json()
    assert datetime.fromisoformat(body["due_at"]) == due
    assert body["code"] == f"000.00.01.H26-{received:%y%m%d}-0001"
    dossier = await (await harness.client.get(f"/v1/dossiers/{body['code']}", headers=harness.headers())).json()
    assert datetime.fromisoformat(dossier["received_at"]) == received.astimezone(UTC)
    assert dossier["overdue"] is True  # due in 2025: late whether or not the agency has finished it since


async def test_dossier_read_by_id_and_by_code(harness: GatewayHarness, submission: Make) -> None:
    body = submission(2)
    accepted = await (await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())).json()
    by_id = await (await harness.client.get(f"/v1/dossiers/{accepted['id']}", headers=harness.headers())).json()
    by_code = await (await harness.client.get(f"/v1/dossiers/{accepted['code']}", headers=harness.headers())).json()
    assert (by_id["id"], by_id["code"]) == (by_code["id"], by_code["code"]) == (accepted["id"], accepted["code"])
    assert by_id["client_id"] == "centre-hanoi"
    assert by_id["receiving_unit"] == "000.00.01.H26"
    assert by_id["submission"]["applicant"]["personal_id"] == body["applicant"]["personal_id"]
    assert by_id["procedure_name"].startswith("Đăng ký")


async def test_list_filters_by_status(harness: GatewayHarness, submission: Make) -> None:
    ids = []
    for i in range(2):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers())
        ids.append((await resp.json())["id"])
    for did in ids:
        assert (await wait_status(harness, did, 9))["status"] == 9
    finished = await (await harness.client.get("/v1/dossiers?status=9", headers=harness.headers())).json()
    assert sorted(d["id"] for d in finished["items"]) == sorted(ids)
    received = await (await harness.client.get("/v1/dossiers?status=2", headers=harness.headers())).json()
    assert received["items"] == []
    limited = await (await harness.client.get("/v1/dossiers?limit=1", headers=harness.headers())).json()
    assert len(limited["items"]) == 1
    bad = await harness.client.get("/v1/dossiers?status=done", headers=harness.headers())
    assert (await assert_problem(bad, 400, "invalid-request"))["errors"][0]["path"] == "query.status"


# -- idempotency ------------------------------------------------------------------------------------


async def test_same_key_same_body_replays(harness: GatewayHarness, submission: Make) -> None:
    headers = harness.headers(**{"Idempotency-Key": "counter-7-ticket-0042"})
    first = await harness.client.post("/v1/dossiers", json=submission(0), headers=headers)
    again = await harness.client.post("/v1/dossiers", json=submission(0), headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    a, b = await first.json(), await again.json()
    assert b["id"] == a["id"] and b["code"] == a["code"]
    assert again.headers["Location"] == f"/v1/dossiers/{a['id']}"
    listed = await (await harness.client.get("/v1/dossiers", headers=harness.headers())).json()
    assert [d["id"] for d in listed["items"]] == [a["id"]]
    await wait_status(harness, a["id"], 9)
    assert (await harness.sim_stats())["accepted"] == 1


async def test_same_key_other_body_conflicts(harness: GatewayHarness, submission: Make) -> None:
    headers = harness.headers(**{"Idempotency-Key": "k-1"})
    first = await (await harness.client.post("/v1/dossiers", json=submission(0), headers=headers)).json()
    resp = await harness.client.post("/v1/dossiers", json=submission(1), headers=headers)
    problem = await assert_problem(resp, 409, "idempotency-key-reused")
    assert problem["dossier_id"] == first["id"]
    listed = await (await harness.client.get("/v1/dossiers", headers=harness.headers())).json()
    assert len(listed["items"]) == 1


async def test_keys_belong_to_one_client(harness: GatewayHarness, submission: Make) -> None:
    hanoi = await harness.client.post(
        "/v1/dossiers", json=submission(0), headers=harness.headers("centre-hanoi", **{"Idempotency-Key": "shared"})
    )
    hcm = await harness.client.post(
        "/v1/dossiers", json=submission(0), headers=harness.headers("centre-hcm", **{"Idempotency-Key": "shared"})
    )
    assert (hanoi.status, hcm.status) == (202, 202)
    assert (await hanoi.json())["id"] != (await hcm.json())["id"]


async def test_without_key_each_post_is_a_new_dossier(harness: GatewayHarness, submission: Make) -> None:
    a = await (await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())).json()
    b = await (await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())).json()
    assert a["id"] != b["id"]


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_key_length_is_checked(harness: GatewayHarness, submission: Make, key: str) -> None:
    resp = await harness.client.post(
        "/v1/dossiers", json=submission(0), headers=harness.headers(**{"Idempotency-Key": key})
    )
    problem = await assert_problem(resp, 400, "invalid-request")
    assert problem["errors"][0]["path"] == "headers.Idempotency-Key"


# -- failures the centre can see ----------------------------------------------------------------------


async def wait_delivery(harness: GatewayHarness, did: str, state: str) -> dict[str, Any]:
    for _ in range(200):
        body: dict[str, Any] = await (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers())).json()
        if body["delivery"]["state"] == state:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery of {did} stayed {body['delivery']}")


# No breaker to hold the delivery, and a retry budget shorter than the first backoff: the second attempt is
# the last.
@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_BREAKER_FAILURES": "0", "LIENTHONG_GIVE_UP_AFTER": "0.01"}])
async def test_a_dead_delivery_shows_on_the_dossier_and_in_the_list(harness: GatewayHarness, submission: Make) -> None:
    ok = await (await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())).json()
    await wait_status(harness, ok["id"], 9)
    await harness.set_faults(down=True)
    resp = await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())
    dead = await wait_delivery(harness, (await resp.json())["id"], "dead")
    assert dead["status"] == 2
    assert dead["delivery"]["attempts"] == 2
    assert "AgencyUnavailable" in dead["delivery"]["last_error"] and "503" in dead["delivery"]["last_error"]

    listed = await (await harness.client.get("/v1/dossiers?delivery=dead", headers=harness.headers())).json()
    assert [(d["id"], d["delivery"]["state"]) for d in listed["items"]] == [(dead["id"], "dead")]
    assert listed["items"][0]["delivery"]["last_error"] == dead["delivery"]["last_error"]
    delivered = await (await harness.client.get("/v1/dossiers?delivery=delivered", headers=harness.headers())).json()
    assert [d["id"] for d in delivered["items"]] == [ok["id"]]
    everything = await (await harness.client.get("/v1/dossiers", headers=harness.headers())).json()
    assert {d["delivery"]["state"] for d in everything["items"]} == {"dead", "delivered"}
    other = await (await harness.client.get("/v1/dossiers?delivery=dead", headers=harness.headers("centre-hcm"))).json()
    assert other["items"] == []  # a centre sees its own dossiers only
    overview = await (await harness.client.get("/v1/admin/overview", headers=harness.headers("operator"))).json()
    assert overview["undeliverable"] == 1


async def test_the_delivery_filter_is_checked(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/dossiers?delivery=lost", headers=harness.headers())
    body = await assert_problem(resp, 400, "invalid-request")
    assert body["errors"][0]["path"] == "query.delivery"


def damage(db: str, sha256: str) -> None:
    """A small document is kept in the database with its dossier: change its bytes there."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            assert (
                conn.execute(
                    "UPDATE documents SET content = ? WHERE sha256 = ?", (b"%PDF-1.4 damaged", sha256)
                ).rowcount
                == 1
            )
    finally:
        conn.close()


async def test_an_agency_refusing_the_documents_is_a_failure_the_centre_sees(
    harness: GatewayHarness, submission: Make
) -> None:
    # A declaration kept by the gateway is damaged (a disk fault) after a first dossier went out with it; a
    # second dossier brings the same declaration, stored once: the agency refuses it for good, and the
    # centre sees why.
    first = await (await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())).json()
    assert (await wait_status(harness, first["id"], 9))["delivery"]["state"] == "delivered"
    await asyncio.to_thread(damage, harness.app[STORE].path, submission(1)["attachments"][0]["sha256"])  # type: ignore[attr-defined]
    resp = await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())
    dead = await wait_delivery(harness, (await resp.json())["id"], "dead")
    assert dead["delivery"]["attempts"] == 1  # a refusal is not retried
    error = dead["delivery"]["last_error"]
    assert error.startswith("AgencyRejected: police: HTTP 422") and "TK01" in error and "received 16" in error, error
    assert (await harness.sim_stats())["documents_refused"] == 1


async def test_a_gateway_without_a_wallet_refuses_the_wallet_at_intake(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    consent = {"given_at": "2026-12-01T09:00:00+07:00", "channel": "vneid_app", "reference": "VNEID-CONSENT-1"}
    sub = submission(0) | {"return_method": 2, "wallet_consent": consent}
    resp = await harness.client.post("/v1/dossiers", json=sub, headers=harness.headers())
    problem = await resp.json()
    assert resp.status == 422, problem
    assert [(e["path"], e["code"]) for e in problem["errors"]] == [("return_method", "wallet_unavailable")]


async def test_the_overview_says_how_old_its_counts_are(harness: GatewayHarness, submission: Make) -> None:
    """A small store's counts are current; a store whose count takes long reuses it, and the overview (and
    the console, which shows it) says how old the counts are."""

    async def overview() -> dict[str, Any]:
        return await (await harness.client.get("/v1/admin/overview", headers=harness.headers("operator"))).json()

    def received(o: dict[str, Any]) -> int:
        return sum(s["count"] for s in o["dossiers_by_status"])

    first = await overview()
    assert received(first) == 0 and first["counts_age_seconds"] < 1.0
    datetime.fromisoformat(first["counted_at"])
    await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert received(await overview()) == 1  # counted again: a small store's count is quick

    costly = harness.app[STORE]._counts  # type: ignore[attr-defined]
    costly.slow = 0.0  # as if every count took long: reused for 20 times what it took
    costly.reuse = 1e6
    kept = await overview()
    await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())
    await asyncio.sleep(0.2)
    again = await overview()
    assert received(again) == received(kept) == 1 and again["counted_at"] == kept["counted_at"]
    assert again["counts_age_seconds"] >= 0.2
