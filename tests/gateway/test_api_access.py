"""An applicant comes back to another centre: it opens the dossier with the applicant's id and returns the
result there; every opening, allowed or refused, is in the hash-chained audit log."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.api.access import APPLICANT_HEADER, PROOF_GUARD, ProofGuard
from gateway.api.keys import STORE
from gateway.store.base import NewBundle, NewBundleStep, NewDossier
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status


async def submit_and_finish(harness: GatewayHarness, body: dict[str, Any]) -> str:
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers("centre-hanoi"))
    assert resp.status == 202, await resp.text()
    did: str = (await resp.json())["id"]
    assert (await wait_status(harness, did, 9))["status"] == 9
    return did


async def test_another_centre_opens_a_dossier_only_with_the_applicants_id(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(0)
    pid = body["applicant"]["personal_id"]
    did = await submit_and_finish(harness, body)
    other = "079090001234" if pid != "079090001234" else "001090001234"

    for proof in (None, other):  # no proof, or somebody else's id: the dossier does not exist for hcm
        headers = harness.headers("centre-hcm", **({APPLICANT_HEADER: proof} if proof else {}))
        for path in (f"/v1/dossiers/{did}", f"/v1/dossiers/{did}/events", f"/v1/dossiers/{did}/results/0"):
            resp = await harness.client.get(path, headers=headers)
            assert resp.status == 404, path
            assert (await resp.json())["type"] == "urn:lienthong:problem:not-found"

    proof = harness.headers("centre-hcm", **{APPLICANT_HEADER: pid})
    got = await harness.client.get(f"/v1/dossiers/{did}", headers=proof)
    assert got.status == 200 and (await got.json())["code"]
    events = await harness.client.get(f"/v1/dossiers/{did}/events", headers=proof)
    assert [e["status"] for e in (await events.json())["events"]] == [2, 4, 9]
    result = await harness.client.get(f"/v1/dossiers/{did}/results/0", headers=proof)
    assert result.status == 200 and (await result.read()).startswith(b"%PDF")
    # The receiving centre needs no proof; the list of another centre never shows the dossier.
    assert (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers("centre-hanoi"))).status == 200
    listed = await (await harness.client.get("/v1/dossiers", headers=proof)).json()
    assert did not in {d["id"] for d in listed["items"]}


async def test_the_result_is_returned_at_another_centre(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(1)
    did = await submit_and_finish(harness, body)
    await harness.set_faults(down=True)  # this one stays with the gateway (status 2): nothing to hand over
    unfinished = await harness.client.post("/v1/dossiers", json=submission(2), headers=harness.headers())
    unfinished_id = (await unfinished.json())["id"]

    refused = await harness.client.post(f"/v1/dossiers/{did}/return", headers=harness.headers("centre-hcm"))
    assert refused.status == 404  # without the applicant, hcm cannot hand anything over
    proof = harness.headers("centre-hcm", **{APPLICANT_HEADER: body["applicant"]["personal_id"]})
    note = {"note": "Người nộp nhận kết quả tại Trung tâm phục vụ hành chính công TP HCM"}
    resp = await harness.client.post(f"/v1/dossiers/{did}/return", json=note, headers=proof)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == 10
    again = await harness.client.post(f"/v1/dossiers/{did}/return", json=note, headers=proof)
    assert again.status == 200 and (await again.json())["status"] == 10  # once, however often it is said

    events = (await (await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers())).json())[
        "events"
    ]
    assert [e["status"] for e in events] == [2, 4, 9, 10]
    assert (events[-1]["actor"], events[-1]["note"]) == ("centre-hcm", note["note"])
    assert events[-1]["data"] == {"returned_at_centre": "centre-hcm", "received_at_centre": "centre-hanoi"}

    # The portal sees the hand-over date (NgayTra).
    feed = await (await harness.client.get("/v1/feed?limit=1000", headers=harness.headers("portal"))).json()
    record = [it["dossier"] for it in feed["items"] if it["dossier"]["TrangThaiHoSo"] == "10"]
    assert record and record[-1]["NgayTra"] and len(record[-1]["NgayTra"]) == 14

    bad = await harness.client.post(f"/v1/dossiers/{did}/return", json={"note": 5}, headers=proof)
    assert bad.status == 422 and (await bad.json())["errors"][0]["path"] == "note"
    early = await harness.client.post(f"/v1/dossiers/{unfinished_id}/return", headers=harness.headers())
    assert early.status == 409 and (await early.json())["type"] == "urn:lienthong:problem:illegal-transition"
    assert (await harness.client.post(f"/v1/dossiers/{did}/return", headers=harness.headers("portal"))).status == 403


async def test_every_opening_is_in_the_audit_log_and_the_chain_verifies(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(3)
    pid = body["applicant"]["personal_id"]
    did = await submit_and_finish(harness, body)
    hcm = harness.headers("centre-hcm")
    await harness.client.get(f"/v1/dossiers/{did}", headers=hcm)
    await harness.client.get(f"/v1/dossiers/{did}", headers={**hcm, APPLICANT_HEADER: "001090009999"})
    await harness.client.get(f"/v1/dossiers/{did}/events", headers={**hcm, APPLICANT_HEADER: pid})
    await harness.client.get("/v1/feed", headers=harness.headers("portal"))

    admin = harness.headers("operator")
    log = await (await harness.client.get(f"/v1/admin/audit?dossier={did}", headers=admin)).json()
    mine = [(r["client"], r["action"], r["outcome"], r["basis"]) for r in log["items"]]
    assert ("centre-hcm", "read", "denied", "no-proof") in mine
    assert ("centre-hcm", "read", "denied", "wrong-proof") in mine
    assert ("centre-hcm", "events", "allowed", "applicant-proof") in mine
    assert all(r["dossier_id"] == did for r in log["items"])
    assert pid not in orjson.dumps(log).decode()  # the log says who looked, not whom they looked up
    seqs = [r["seq"] for r in log["items"]]
    assert seqs == sorted(seqs)

    everything = await (await harness.client.get("/v1/admin/audit?limit=1000", headers=admin)).json()
    assert ("portal", "feed", "allowed", "all-dossiers") in {
        (r["client"], r["action"], r["outcome"], r["basis"]) for r in everything["items"]
    }
    chain = everything["items"]
    assert all(a["hash"] == b["prev_hash"] for a, b in itertools.pairwise(chain))
    verify = await (await harness.client.get("/v1/admin/audit/verify", headers=admin)).json()
    assert verify["ok"] is True and verify["checked"] >= len(chain) and verify["first_bad"] is None
    assert (await harness.client.get("/v1/admin/audit", headers=hcm)).status == 403


def test_the_proof_guard_counts_wrong_ids_per_centre_within_its_window() -> None:
    now = [1000.0]
    guard = ProofGuard(failures=3, window=60.0, clock=lambda: now[0])
    for _ in range(2):
        guard.failed("centre-hcm")
    assert guard.wait_for("centre-hcm") == 0.0  # two wrong ids: the third try is still allowed
    now[0] += 10
    guard.failed("centre-hcm")
    assert guard.wait_for("centre-hcm") == 50.0  # until the first of the three leaves the window
    assert guard.wait_for("centre-danang") == 0.0  # another centre is not held back
    now[0] += 50
    assert guard.wait_for("centre-hcm") == 0.0


async def test_a_centre_that_keeps_guessing_must_wait_and_it_is_in_the_log(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(4)
    pid = body["applicant"]["personal_id"]
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers("centre-hanoi"))
    did = (await resp.json())["id"]
    limit = harness.app[PROOF_GUARD].failures
    for i in range(limit):
        guess = f"99999999{i:04d}"  # never a real id: 99 is no province
        got = await harness.client.get(
            f"/v1/dossiers/{did}", headers=harness.headers("centre-hcm", **{APPLICANT_HEADER: guess})
        )
        assert got.status == 404
    # Now even the right id must wait; the centre that received it and other centres are not held back.
    held = await harness.client.get(
        f"/v1/dossiers/{did}", headers=harness.headers("centre-hcm", **{APPLICANT_HEADER: pid})
    )
    assert held.status == 429 and int(held.headers["Retry-After"]) > 0
    assert (await held.json())["type"] == "urn:lienthong:problem:too-many-requests"
    other = harness.headers("centre-danang", **{APPLICANT_HEADER: pid})
    assert (await harness.client.get(f"/v1/dossiers/{did}", headers=other)).status == 200
    assert (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers("centre-hanoi"))).status == 200

    log = await (await harness.client.get(f"/v1/admin/audit?dossier={did}", headers=harness.headers("operator"))).json()
    hcm = [r["basis"] for r in log["items"] if r["client"] == "centre-hcm"]
    assert hcm == ["wrong-proof"] * limit + ["too-many-wrong-proofs"]


# -- no existence oracle ----------------------------------------------------------------------------

MISSING = ("000.00.01.H26-261120-9999", "3b0e7c36-7d3f-4b55-9a39-000000000000")


async def test_refused_and_missing_dossiers_answer_alike_and_are_both_audited(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers("centre-hanoi"))
    existing = (await resp.json())["id"]
    answers = []
    for ref in (existing, *MISSING):
        for path in (f"/v1/dossiers/{ref}", f"/v1/dossiers/{ref}/events", f"/v1/dossiers/{ref}/results/0"):
            got = await harness.client.get(path, headers=harness.headers("centre-hcm"))
            body = await got.json(content_type=None)
            answers.append((got.status, body["type"], body["title"], body["detail"].replace(ref, "<ref>")))
    assert len(set(answers)) == 1 and answers[0][0] == 404, answers
    log = await (
        await harness.client.get("/v1/admin/audit?client=centre-hcm", headers=harness.headers("operator"))
    ).json()
    refused = [(r["dossier_id"], r["basis"], r["detail"].get("ref")) for r in log["items"]]
    assert refused == [(existing, "no-proof", None)] * 3 + [
        (None, "not-found", ref) for ref in MISSING for _ in range(3)
    ]
    assert all(r["outcome"] == "denied" for r in log["items"])


async def test_a_locked_out_centre_waits_alike_for_existing_and_missing_dossiers(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(4)
    pid = body["applicant"]["personal_id"]
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers("centre-hanoi"))
    existing = (await resp.json())["id"]
    # Wrong ids for dossiers that do not exist count as much as for one that does: guessing codes is guessing.
    for i in range(harness.app[PROOF_GUARD].failures):
        got = await harness.client.get(
            f"/v1/dossiers/{MISSING[i % 2]}", headers=harness.headers("centre-hcm", **{APPLICANT_HEADER: pid})
        )
        assert got.status == 404
    for ref in (existing, *MISSING):
        held = await harness.client.get(
            f"/v1/dossiers/{ref}", headers=harness.headers("centre-hcm", **{APPLICANT_HEADER: pid})
        )
        assert held.status == 429, await held.text()
        assert int(held.headers["Retry-After"]) > 0
    log = await (
        await harness.client.get("/v1/admin/audit?client=centre-hcm", headers=harness.headers("operator"))
    ).json()
    assert [r["basis"] for r in log["items"]][-3:] == ["too-many-wrong-proofs"] * 3


async def test_refused_and_missing_bundles_answer_alike_and_are_audited(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    bid = uuid.uuid4()
    step = NewBundleStep("only", _new_dossier(submission(0)), {})
    await harness.app[STORE].create_bundle(
        NewBundle(bid, "test", "test", "centre-hanoi", datetime.now(UTC), [step], None, "h")
    )
    answers = []
    refs = (str(bid), str(uuid.uuid4()), "not-a-uuid")
    for ref in refs:
        for method, path in (("GET", ""), ("POST", "/retry"), ("POST", "/cancel")):
            got = await harness.client.request(
                method, f"/v1/bundles/{ref}{path}", headers=harness.headers("centre-hcm")
            )
            body = await got.json(content_type=None)
            answers.append((got.status, body["type"], body["detail"].replace(ref, "<ref>")))
    assert len(set(answers)) == 1 and answers[0][0] == 404, answers
    log = await (
        await harness.client.get("/v1/admin/audit?client=centre-hcm", headers=harness.headers("operator"))
    ).json()
    seen = [(r["action"], r["outcome"], r["basis"], r["detail"]) for r in log["items"]]
    missing = refs[1]
    expected = []
    for detail, basis in (
        ({"bundle_id": str(bid)}, "other-client"),
        ({"bundle_ref": missing}, "not-found"),
        ({"bundle_ref_sha256": hashlib.sha256(b"not-a-uuid").hexdigest()[:32]}, "not-found"),
    ):
        for action in ("bundle", "bundle-retry", "bundle-cancel"):
            expected.append((action, "denied", basis, detail))
    assert seen == expected
    # The owner sees it, and that is audited too.
    own = await harness.client.get(f"/v1/bundles/{bid}", headers=harness.headers("centre-hanoi"))
    assert own.status == 200


def _new_dossier(sub: dict[str, Any]) -> NewDossier:
    now = datetime.now(UTC)
    return NewDossier(
        id=uuid.uuid4(),
        receiving_unit="000.00.01.H26",
        day=now.date(),
        procedure_code=sub["procedure_code"],
        procedure_name="Đăng ký cư trú",
        client_id="centre-hanoi",
        agency="police",
        endpoint="national",
        received_at=now,
        due_at=now,
        submission=sub,
        idempotency_key=None,
        body_hash="h",
    )


async def test_a_reference_that_is_no_dossier_code_is_audited_as_a_hash(harness: GatewayHarness) -> None:
    got = await harness.client.get("/v1/dossiers/079090001234", headers=harness.headers("centre-hcm"))
    assert got.status == 404
    log = await (
        await harness.client.get("/v1/admin/audit?client=centre-hcm", headers=harness.headers("operator"))
    ).json()
    [record] = log["items"]
    assert record["detail"] == {"ref_sha256": hashlib.sha256(b"079090001234").hexdigest()[:32]}
    assert "079090001234" not in orjson.dumps(log).decode()
