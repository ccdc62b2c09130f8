"""POST /v1/callbacks/police: signed status changes from the agency, the state machine, repeats, refusals."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from adapters.signing import HmacSigner
from contracts import DossierStatus, ResultDocument
from contracts.calendar import VN_TZ, supplement_deadline
from gateway.api.keys import STORE
from gateway.connector import AgencyUpdate
from gateway.errors import IllegalTransition, InvalidResult
from gateway.plugin_manager import Registry
from gateway.store.base import ReplayKey, UpdateSource
from tests.gateway.conftest import SECRET, GatewayHarness
from tests.gateway.faults import StoreFaults
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status

Make = Callable[[int], dict[str, Any]]
PATH = "/v1/callbacks/police"


def event(code: str, status: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "maSuKien": event_id,
        "maHoSo": code,
        "trangThai": status,
        "ghiChu": f"test {status}",
        "thoiGian": datetime.now(VN_TZ).strftime("%Y%m%d%H%M%S"),
        **extra,
    }


def signed(body: bytes, *, secret: str = SECRET, path: str = PATH, key_id: str = "lienthong-gateway") -> dict[str, str]:
    return {"Content-Type": "application/json", **HmacSigner(key_id, secret)("POST", path, body)}


async def post(
    h: GatewayHarness,
    data: dict[str, Any] | bytes,
    *,
    who: str = "police-callbacks",
    sign: dict[str, str] | None = None,
    path: str = PATH,
) -> Any:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    headers = sign if sign is not None else signed(body)
    return await h.client.post(path, data=body, headers=h.headers(who, **headers))


async def _submit(h: GatewayHarness, body: dict[str, Any]) -> dict[str, Any]:
    resp = await h.client.post("/v1/dossiers", json=body, headers=h.headers())
    assert resp.status == 202
    data: dict[str, Any] = await resp.json()
    return data


async def _events(h: GatewayHarness, did: str) -> list[int]:
    body = await (await h.client.get(f"/v1/dossiers/{did}/events", headers=h.headers())).json()
    return [e["status"] for e in body["events"]]


@pytest.fixture
async def undelivered(harness: GatewayHarness, submission: Make) -> dict[str, Any]:
    """A dossier the police simulator never receives (it is down), so only our callbacks move it."""
    await harness.set_faults(down=True)
    return await _submit(harness, submission(0))


async def test_status_changes_are_applied_in_order(harness: GatewayHarness, undelivered: dict[str, Any]) -> None:
    code, did = undelivered["code"], undelivered["id"]
    items = ["Bản sao giấy chứng nhận quyền sử dụng đất"]
    resp = await post(harness, event(code, "YEU_CAU_BO_SUNG", "e1", maTiepNhan="CA-9", yeuCauBoSung=items))
    assert resp.status == 200
    assert await resp.json() == {"received": 1, "applied": 1}
    assert (await post(harness, event(code, "DANG_XU_LY", "e2"))).status == 200
    assert (await post(harness, event(code, "HOAN_THANH", "e3"))).status == 200
    # The supplement request overtook our record of the agency's receipt: processing (4) is implied.
    assert await _events(harness, did) == [2, 4, 5, 4, 9]
    dossier = await (await harness.client.get(f"/v1/dossiers/{did}", headers=harness.headers())).json()
    assert (dossier["status"], dossier["agency_ref"]) == (9, "CA-9")
    events = await (await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers())).json()
    supplement = events["events"][2]
    assert supplement["actor"] == "agency:police"
    # The agency named no deadline: the default one (7 working days) is recorded with the request.
    due = supplement_deadline(datetime.fromisoformat(supplement["at"]))
    assert supplement["data"] == {"items": items, "due_at": due.isoformat()}
    assert dossier["supplements"][0]["items"] == items
    assert supplement["note"] == "test YEU_CAU_BO_SUNG"


async def test_finished_then_refused_is_an_illegal_transition(harness: GatewayHarness, submission: Make) -> None:
    accepted = await _submit(harness, submission(0))
    final = await wait_status(harness, accepted["id"], 9)
    assert final["status"] == 9
    code, ref = accepted["code"], final["agency_ref"]
    again = await post(harness, event(code, "HOAN_THANH", f"{ref}-HT2", maTiepNhan=ref))
    assert await again.json() == {"received": 1, "applied": 1}
    resp = await post(harness, event(code, "TU_CHOI", f"{ref}-TC", maTiepNhan=ref))
    problem = await assert_problem(resp, 409, "illegal-transition")
    assert problem["detail"] == ("a dossier in status 9 (finished) cannot move to 8 (stopped); allowed: 10 (returned)")
    assert await _events(harness, accepted["id"]) == [2, 4, 9, 9]


async def test_repeated_event_is_applied_once(harness: GatewayHarness, submission: Make) -> None:
    accepted = await _submit(harness, submission(0))
    final = await wait_status(harness, accepted["id"], 9)
    ref = final["agency_ref"]
    # The simulator already delivered the event "<ref>-HT"; the agency sends it once more.
    resp = await post(harness, event(accepted["code"], "HOAN_THANH", f"{ref}-HT", maTiepNhan=ref))
    assert resp.status == 200
    assert await resp.json() == {"received": 1, "applied": 0}
    assert await _events(harness, accepted["id"]) == [2, 4, 9]


async def test_result_documents_are_kept_without_content_in_events(
    harness: GatewayHarness, undelivered: dict[str, Any]
) -> None:
    result = {
        "tenGiayTo": "Xác nhận thông tin cư trú",
        "maThanhPhan": "KQ_CT",
        "soGiayTo": "CT-1",
        "loaiTep": "application/pdf",
        "kichThuoc": 3,
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "noiDungBase64": "YWJj",
    }
    resp = await post(harness, event(undelivered["code"], "HOAN_THANH", "r1", ketQua=result))
    assert await resp.json() == {"received": 1, "applied": 1}
    dossier = await (await harness.client.get(f"/v1/dossiers/{undelivered['id']}", headers=harness.headers())).json()
    assert [(r["name"], r["result_code"], r["content_base64"]) for r in dossier["results"]] == [
        ("Xác nhận thông tin cư trú", "CT-1", "YWJj")
    ]
    events = await (
        await harness.client.get(f"/v1/dossiers/{undelivered['id']}/events", headers=harness.headers())
    ).json()
    assert events["events"][-1]["data"]["results"][0]["result_code"] == "CT-1"
    assert "content_base64" not in events["events"][-1]["data"]["results"][0]


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["unsigned", "wrong-secret", "wrong-key-id", "other-path", "tampered"])
async def test_bad_signature_is_401(harness: GatewayHarness, undelivered: dict[str, Any], case: str) -> None:
    body = orjson.dumps(event(undelivered["code"], "DANG_XU_LY", "s1"))
    headers = {
        "unsigned": {"Content-Type": "application/json"},
        "wrong-secret": signed(body, secret="another-secret-of-16-chars"),
        "wrong-key-id": signed(body, key_id="someone-else"),
        "other-path": signed(body, path="/v1/callbacks/land"),
        "tampered": signed(body.replace(b"DANG_XU_LY", b"HOAN_THANH")),
    }[case]
    resp = await post(harness, body, sign=headers)
    problem = await assert_problem(resp, 401, "unauthenticated")
    assert problem["detail"].startswith("police callback signature rejected: ")
    assert await _events(harness, undelivered["id"]) == [2]


async def test_replayed_request_is_401(harness: GatewayHarness, undelivered: dict[str, Any]) -> None:
    body = orjson.dumps(event(undelivered["code"], "DANG_XU_LY", "once"))
    headers = signed(body)
    assert (await post(harness, body, sign=headers)).status == 200
    problem = await assert_problem(await post(harness, body, sign=headers), 401, "unauthenticated")
    assert problem["detail"] == "police callback signature rejected: nonce already used"


async def test_callback_client_for_another_agency_is_403(harness: GatewayHarness, undelivered: dict[str, Any]) -> None:
    path = "/v1/callbacks/land"
    body = orjson.dumps(event(undelivered["code"], "DANG_XU_LY", "x1"))
    resp = await post(harness, body, sign=signed(body, path=path), path=path)
    problem = await assert_problem(resp, 403, "forbidden")
    assert problem["detail"] == "client 'police-callbacks' may post callbacks for 'police' only"


async def test_centre_cannot_post_callbacks(harness: GatewayHarness, undelivered: dict[str, Any]) -> None:
    resp = await post(harness, event(undelivered["code"], "HOAN_THANH", "x2"), who="centre-hanoi")
    await assert_problem(resp, 403, "forbidden")
    assert await _events(harness, undelivered["id"]) == [2]


async def test_unknown_dossier_is_404(harness: GatewayHarness) -> None:
    resp = await post(harness, event("000.00.01.H26-251122-9999", "DANG_XU_LY", "u1"))
    problem = await assert_problem(resp, 404, "not-found")
    assert problem["detail"] == "no dossier 000.00.01.H26-251122-9999"


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"not json", "police callback is not JSON"),
        (orjson.dumps({"maHoSo": "000.00.01.H26-251122-0001", "trangThai": "DANG_XU_LY"}), "maSuKien"),
        (
            orjson.dumps(
                {
                    "maSuKien": "1",
                    "maHoSo": "000.00.01.H26-251122-0001",
                    "trangThai": "DA_HUY",
                    "thoiGian": "20251122090000",
                }
            ),
            "DA_HUY",
        ),
    ],
)
async def test_unreadable_event_is_400(harness: GatewayHarness, payload: bytes, detail: str) -> None:
    resp = await post(harness, payload)
    problem = await assert_problem(resp, 400, "invalid-request")
    assert detail in problem["detail"]


# -- a callback that met a store fault, replays ----------------------------------------------------------


async def test_a_callback_whose_apply_failed_is_applied_once_when_sent_again(
    store_faults: StoreFaults, harness: GatewayHarness, undelivered: dict[str, Any]
) -> None:
    body = orjson.dumps(event(undelivered["code"], "DANG_XU_LY", "resent-1"))
    headers = signed(body)
    store_faults.fail_commits("INSERT INTO replay_keys", times=1)  # the disk is full for this one commit
    failed = await post(harness, body, sign=headers)
    problem = await assert_problem(failed, 503, "storage-unavailable")
    assert failed.headers["Retry-After"] == "5"
    assert "nothing of this request was kept" in problem["detail"]
    assert await _events(harness, undelivered["id"]) == [2]
    # The agency sends the very same request again (same nonce, same signature): applied, once.
    again = await post(harness, body, sign=headers)
    assert (again.status, await again.json()) == (200, {"received": 1, "applied": 1})
    assert await _events(harness, undelivered["id"]) == [2, 4]
    replayed = await post(harness, body, sign=headers)
    await assert_problem(replayed, 401, "unauthenticated")
    assert await _events(harness, undelivered["id"]) == [2, 4]
    assert store_faults.failed_commits == 1


async def test_a_replay_after_a_restart_is_refused(
    harness: GatewayHarness, undelivered: dict[str, Any], registry: Registry
) -> None:
    body = orjson.dumps(event(undelivered["code"], "DANG_XU_LY", "before-restart"))
    headers = signed(body)
    assert (await post(harness, body, sign=headers)).status == 200
    await harness.restart(registry)  # the nonce is in the store, not in the process that saw it
    problem = await assert_problem(await post(harness, body, sign=headers), 401, "unauthenticated")
    assert problem["detail"] == "police callback signature rejected: nonce already used"
    assert await _events(harness, undelivered["id"]) == [2, 4]
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    [record] = [r for r in audit["items"] if r["outcome"] == "denied"]
    assert (record["client"], record["action"], record["basis"]) == ("police-callbacks", "callback", "replayed")
    # A fresh request of the agency (a new nonce) is taken as ever.
    fresh = orjson.dumps(event(undelivered["code"], "HOAN_THANH", "after-restart"))
    assert (await post(harness, fresh)).status == 200


async def test_the_updates_of_one_callback_are_applied_all_or_none(
    store_faults: StoreFaults, harness: GatewayHarness, undelivered: dict[str, Any]
) -> None:
    # A first event is fine, the second one moves the dossier where it cannot go: neither is kept, and
    # the nonce is not spent, so the agency may send a corrected request.
    store = harness.app[STORE]
    did = uuid.UUID(undelivered["id"])
    good = AgencyUpdate(event_id="a", dossier_id=did, status=DossierStatus.FINISHED)
    bad = AgencyUpdate(event_id="b", dossier_id=did, status=DossierStatus.SUPPLEMENT_REQUESTED)
    key = ReplayKey("police", "k:n-1", 900)
    with pytest.raises(IllegalTransition):
        await store.apply_updates([good, bad], source=UpdateSource.of_agency("police"), replay=key)
    assert await _events(harness, undelivered["id"]) == [2]
    assert len(await store.apply_updates([good], source=UpdateSource.of_agency("police"), replay=key)) == 1
    assert await _events(harness, undelivered["id"]) == [2, 4, 9]


# -- result documents are checked when applied -------------------------------------------------------


def _result(content: bytes, **change: Any) -> dict[str, Any]:
    return {
        "tenGiayTo": "Xác nhận thông tin cư trú",
        "maThanhPhan": "KQ_CT",
        "soGiayTo": "CT-2",
        "loaiTep": "application/pdf",
        "kichThuoc": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "noiDungBase64": base64.b64encode(content).decode(),
    } | change


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"noiDungBase64": "%%% not base64 %%%"}, "results.0.content_base64", "is not valid base64"),
        ({"kichThuoc": 99}, "results.0.size", "says 99 bytes but the content has 8"),
        ({"sha256": "0" * 64}, "results.0.sha256", "does not match the content"),
        ({"noiDungBase64": None}, "results.0.content_base64", "a result needs its content (content_base64) or a url"),
        ({"tenGiayTo": "Kết quả\x00"}, "results.0.name", "control characters are not allowed (U+0000 at position 7)"),
    ],
)
async def test_a_result_that_does_not_hold_what_it_declares_is_refused_when_applied(
    harness: GatewayHarness, undelivered: dict[str, Any], change: dict[str, Any], path: str, message: str
) -> None:
    result = _result(b"%PDF-1.4", **change)
    resp = await post(harness, event(undelivered["code"], "HOAN_THANH", "bad-result", ketQua=result))
    problem = await assert_problem(resp, 422, "invalid-result")
    assert problem["errors"] == [{"path": path, "message": message, "code": "invalid_result"}]
    assert await _events(harness, undelivered["id"]) == [2]  # not finished, nothing to download later
    dossier = await (await harness.client.get(f"/v1/dossiers/{undelivered['id']}", headers=harness.headers())).json()
    assert dossier["results"] == []
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    assert [(r["action"], r["basis"]) for r in audit["items"] if r["outcome"] == "denied"] == [
        ("callback", "invalid-result")
    ]


async def test_a_result_given_by_url_redirects_to_it(harness: GatewayHarness, undelivered: dict[str, Any]) -> None:
    url = "https://ketqua.dichvucong.gov.vn/giay-to/CT-3.pdf"
    doc = ResultDocument(name="Xác nhận cư trú", component_code="KQ_CT", size=1234, sha256="c" * 64, url=url)
    update = AgencyUpdate(
        event_id="by-url", dossier_id=uuid.UUID(undelivered["id"]), status=DossierStatus.FINISHED, results=[doc]
    )
    await harness.app[STORE].apply_update(update, source=UpdateSource.of_agency("police"))
    path = f"/v1/dossiers/{undelivered['id']}/results/0"
    resp = await harness.client.get(path, headers=harness.headers(), allow_redirects=False)
    assert resp.status == 302, await resp.text()
    assert resp.headers["Location"] == url
    # Not a URL the gateway would send a browser to: refused when the agency sent it.
    bad = doc.model_copy(update={"url": "javascript:alert(1)"})
    with pytest.raises(InvalidResult):
        await harness.app[STORE].apply_update(
            update.model_copy(update={"event_id": "by-bad-url", "results": [bad]}),
            source=UpdateSource.of_agency("police"),
        )
