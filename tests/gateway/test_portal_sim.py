"""The portal simulator speaks the portal's protocol: login and session, the services, the error codes,
its view, its faults and refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts import DossierStatus
from contracts.portal import RecordContext, portal_dossier, portal_progress
from gateway.sandbox.portal_sim import LOGIN_PATH, SERVICE_PATH, create_portal_simulator
from gateway.sdk.simulation import SimulatorOptions
from tests.contracts.test_portal import HISTORY, dossier

PASSWORD = "test-portal-password"
UNIT = "000.00.00.H29"
CTX = RecordContext(sector="Hộ tịch", sector_code="HOTICH", handled_by="Sở Tư pháp")


def record(code: str, status: DossierStatus = DossierStatus.FINISHED) -> dict[str, Any]:
    d = dossier(status, code=code)
    out: dict[str, Any] = json.loads(portal_dossier(d, HISTORY, CTX).model_dump_json())
    return out


def step(code: str, i: int) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(portal_progress(dossier(code=code), HISTORY[i], CTX).model_dump_json())
    return out


A, B = "000.00.01.H58-261201-0007", "000.00.01.H58-261201-0008"


@pytest.fixture
async def portal() -> AsyncIterator[TestClient[Any, Any]]:
    options = SimulatorOptions(secret=PASSWORD, settings={"username": "lt", "madonvi": UNIT, "session_ttl": 0.5})
    client = TestClient(TestServer(create_portal_simulator(options), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def login(portal: TestClient[Any, Any], password: str = PASSWORD) -> dict[str, Any]:
    resp = await portal.post(LOGIN_PATH, json={"username": "lt", "password": password}, headers={"dstcode": "x"})
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def call(portal: TestClient[Any, Any], session: str, service: str, **body: Any) -> dict[str, Any]:
    resp = await portal.post(SERVICE_PATH, json={"session": session, "madonvi": UNIT, "service": service, **body})
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


async def view(portal: TestClient[Any, Any]) -> dict[str, Any]:
    body: dict[str, Any] = await (await portal.get("/_sim/view")).json()
    return body


async def stats(portal: TestClient[Any, Any]) -> dict[str, Any]:
    body: dict[str, Any] = await (await portal.get("/_sim/stats")).json()
    return body


async def test_login_gives_a_session_that_ends(portal: TestClient[Any, Any]) -> None:
    assert await login(portal, "wrong") == {"error_code": 6, "message": "Sai tên đăng nhập hoặc mật khẩu"}
    answer = await login(portal)
    assert answer["error_code"] == 0 and len(answer["session"]) > 20
    session = answer["session"]
    assert (await call(portal, session, "TraCuuHoSo", mahoso=A)) == {
        "error_code": 0,
        "message": "Thành công",
        "result": [],
    }
    assert (await call(portal, "forged", "TraCuuHoSo", mahoso=A))["error_code"] == 2
    await asyncio.sleep(0.6)  # session_ttl
    expired = await call(portal, session, "TraCuuHoSo", mahoso=A)
    assert expired == {"error_code": 2, "message": "Phiên làm việc (session) không hợp lệ hoặc đã hết hạn"}
    again = (await login(portal))["session"]
    assert (await (await portal.post("/_sim/sessions", json={})).json()) == {"ended": 1}
    assert (await call(portal, again, "TraCuuHoSo", mahoso=A))["error_code"] == 2


async def test_create_update_and_progress(portal: TestClient[Any, Any]) -> None:
    session = (await login(portal))["session"]
    created = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[record(A, DossierStatus.RECEIVED)])
    assert created == {"error_code": 0, "message": "Đồng bộ thành công"}
    # A create of a dossier the portal has is refused, as the provincial system expects ("đã tồn tại").
    again = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[record(A), record(B)])
    assert again == {"error_code": 3, "message": f"Hồ sơ {A} đã tồn tại"}
    missing = await call(portal, session, "DongBoHoSoMC", isUpdating="True", data=[record(A), record(B)])
    assert missing == {"error_code": 4, "message": f"Hồ sơ {B} không tồn tại"}
    assert (await call(portal, session, "DongBoHoSoMC", isUpdating="True", data=[record(A)]))["error_code"] == 0
    assert (await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[record(B)]))["error_code"] == 0
    progress = [step(A, 0), step(A, 1), step(B, 0)]
    assert (await call(portal, session, "CapNhatTienDoHoSoMC", data=progress))["error_code"] == 0
    assert (await call(portal, session, "CapNhatTienDoHoSoMC", data=[step(A, 1), step(A, 2)]))["error_code"] == 0
    stray = await call(portal, session, "CapNhatTienDoHoSoMC", data=[step("000.00.01.H58-261201-0009", 0)])
    assert stray["error_code"] == 4

    seen = await view(portal)
    assert seen["dossiers"] == {A: record(A), B: record(B)}  # the latest record of each, as the portal upserts
    assert seen["statuses"] == {A: ["2", "4", "9"], B: ["2"]}
    assert seen["progress_records"] == 4
    counted = await stats(portal)
    assert (counted["creates"], counted["updates"], counted["duplicates"], counted["refused"]) == (2, 1, 1, 3)
    found = await call(portal, session, "TraCuuHoSo", mahoso=A)
    assert found["result"] == [record(A)]


async def test_it_checks_what_it_is_sent(portal: TestClient[Any, Any]) -> None:
    session = (await login(portal))["session"]
    bad = dict(record(A), TrangThaiHoSo=9)  # a number: both sources send strings
    answer = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[record(B), bad])
    assert answer["error_code"] == 1
    assert answer["message"].startswith(f"Hồ sơ {A}: trường TrangThaiHoSo không hợp lệ")
    dated = dict(record(A), NgayHenTra="2026-12-02 17:00")
    answer = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[dated])
    assert answer["message"].startswith(f"Hồ sơ {A}: trường NgayHenTra không hợp lệ")
    nested = record(A)
    nested["DinhDanhCHS"][0]["LoaiDinhDanh"] = 1
    answer = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[nested])
    assert answer["message"].startswith(f"Hồ sơ {A}: trường DinhDanhCHS.0.LoaiDinhDanh không hợp lệ")
    assert (await call(portal, session, "DongBoHoSoMC", data=[record(A)]))["error_code"] == 1  # no isUpdating
    assert (await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[]))["error_code"] == 1
    assert (await call(portal, session, "XoaHoSo", data=[record(A)]))["error_code"] == 5
    other_unit = await portal.post(
        SERVICE_PATH, json={"session": session, "madonvi": "000.00.00.H01", "service": "TraCuuHoSo"}
    )
    assert (await other_unit.json())["error_code"] == 5
    not_json = await portal.post(SERVICE_PATH, data=b"{", headers={"Content-Type": "application/json"})
    assert (await not_json.json())["error_code"] == 1
    assert (await view(portal))["dossiers"] == {}  # nothing of a refused call is kept


async def test_refusals_and_faults(portal: TestClient[Any, Any]) -> None:
    session = (await login(portal))["session"]
    assert (await portal.post("/_sim/refuse", json={"status": 500})).status == 422  # only 4xx
    assert (await portal.post("/_sim/refuse", json={"error_code": 0})).status == 422
    assert (await portal.post("/_sim/refuse", json={"status": 409})).status == 200
    resp = await portal.post(SERVICE_PATH, json={"session": session, "madonvi": UNIT, "service": "TraCuuHoSo"})
    assert resp.status == 409
    assert (await portal.post("/_sim/refuse", json={"error_code": 1, "field": "NgayHenTra"})).status == 200
    answer = await call(portal, session, "DongBoHoSoMC", isUpdating="False", data=[record(A)])
    assert answer == {"error_code": 1, "message": f"Hồ sơ {A}: trường NgayHenTra không hợp lệ"}
    assert (await portal.post("/_sim/refuse", json={"error_code": 7, "message": "Hệ thống bận"})).status == 200
    assert (await call(portal, session, "CapNhatTienDoHoSoMC", data=[step(A, 0)])) == {
        "error_code": 7,
        "message": "Hệ thống bận",
    }
    assert (await portal.post("/_sim/refuse", json={})).status == 200
    assert (await portal.post("/_sim/faults", json={"malformed_rate": 1.0})).status == 200
    resp = await portal.post(SERVICE_PATH, json={"session": session, "madonvi": UNIT, "service": "TraCuuHoSo"})
    assert resp.status == 200 and not (await resp.text()).endswith("}")
    assert (await portal.post("/_sim/faults", json={"malformed_rate": 0.0, "down": True})).status == 200
    assert (await portal.post(LOGIN_PATH, json={})).status == 503
    counted = await stats(portal)
    assert (counted["refused_http"], counted["malformed"], counted["refused_down"]) == (1, 1, 1)
    assert (await view(portal))["dossiers"] == {}  # nothing kept by any of them
