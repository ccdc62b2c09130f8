"""POST /v1/callbacks/police: signed status changes from the agency, the state machine, repeats, refusals."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from adapters.signing import HmacSigner
from contracts.calendar import VN_TZ, supplement_deadline
from tests.gateway.conftest import SECRET, GatewayHarness
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
