"""The portal simulator: its key, its checks of what is pushed, its view, its faults and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.sandbox.portal_sim import PUSH_PATH, create_portal_simulator
from gateway.sdk.simulation import SimulatorOptions

KEY = "test-portal-key"


def item(seq: int, code: str, status: int) -> dict[str, Any]:
    stamp = "20250301080000"
    return {
        "seq": seq,
        "progress": {
            "MaHoSo": code,
            "NguoiXuLy": "gateway",
            "NoiDungXuLy": "ok",
            "ThoiDiemXuLy": stamp,
            "TrangThai": status,
            "NgayHenTra": stamp,
        },
        "dossier": {
            "MaHoSo": code,
            "MaTTHC": "1.004227",
            "TenTTHC": "Đăng ký thường trú",
            "MaLinhVuc": "cu-tru",
            "KenhThucHien": 1,
            "ChuHoSo": "Nguyễn Văn A",
            "LoaiDoiTuong": 1,
            "SoGiayToChuHoSo": "001090000001",
            "DinhDanhCHS": [{"LoaiDinhDanh": 1, "SoDinhDanh": "001090000001"}],
            "TaiKhoanDuocXacThucVoiVNeID": 1,
            "TrichYeuHoSo": "x",
            "NgayNopHoSo": stamp,
            "NgayTiepNhan": stamp,
            "NgayHenTra": stamp,
            "TrangThaiHoSo": status,
            "DonViXuLy": "Bộ Công an",
            "NoiNopHoSo": "000.00.01.H26",
            "HinhThuc": 0,
            "TaiLieuNop": [],
            "DanhSachLePhi": [],
            "DuocThanhToanTrucTuyen": 0,
            "DanhSachHoSoBoSung": [],
            "DanhSachGiayToKetQua": [],
        },
    }


@pytest.fixture
async def portal() -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(create_portal_simulator(SimulatorOptions(secret=KEY)), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def push(portal: TestClient[Any, Any], items: list[dict[str, Any]], key: str = KEY) -> tuple[int, Any]:
    body = {"items": items, "next_after": items[-1]["seq"] if items else 0}
    resp = await portal.post(PUSH_PATH, json=body, headers={"X-Api-Key": key})
    return resp.status, await resp.json() if resp.content_type == "application/json" else await resp.text()


async def test_it_keeps_the_latest_record_and_counts_repeats(portal: TestClient[Any, Any]) -> None:
    assert await push(portal, [item(1, "A", 2), item(2, "B", 2)]) == (200, {"received": 2, "next_after": 2})
    assert (await push(portal, [item(2, "B", 2), item(3, "A", 4)]))[0] == 200  # seq 2 again: at least once
    view = await (await portal.get("/_sim/view")).json()
    assert {code: d["TrangThaiHoSo"] for code, d in view["dossiers"].items()} == {"A": 4, "B": 2}
    assert view["statuses"] == {"A": [2, 4], "B": [2]}
    assert (view["progress_records"], view["last_seq"]) == (3, 3)
    stats = await (await portal.get("/_sim/stats")).json()
    assert (stats["pushes"], stats["items"], stats["duplicates"]) == (2, 4, 1)
    assert "out_of_order" not in stats


async def test_it_checks_the_key_and_the_body(portal: TestClient[Any, Any]) -> None:
    assert (await push(portal, [item(1, "A", 2)], key="wrong"))[0] == 401
    bad = item(1, "A", 2)
    del bad["dossier"]["MaTTHC"]
    status, answer = await push(portal, [bad])
    assert status == 422 and "MaTTHC" in answer["error"]
    resp = await portal.post(PUSH_PATH, data=b"{", headers={"X-Api-Key": KEY})
    assert resp.status == 422
    resp = await portal.post(PUSH_PATH, json={"items": [item(1, "A", 2)], "next_after": 5}, headers={"X-Api-Key": KEY})
    assert resp.status == 422
    assert (await (await portal.get("/_sim/view")).json())["dossiers"] == {}


async def test_refusals_and_faults(portal: TestClient[Any, Any]) -> None:
    assert (await portal.post("/_sim/refuse", json={"status": 500})).status == 422  # only 4xx
    assert (await portal.post("/_sim/refuse", json={"status": 409})).status == 200
    assert (await push(portal, [item(1, "A", 2)]))[0] == 409
    assert (await portal.post("/_sim/refuse", json={"status": None})).status == 200
    assert (await portal.post("/_sim/faults", json={"malformed_rate": 1.0})).status == 200
    resp = await portal.post(PUSH_PATH, json={"items": [item(1, "A", 2)], "next_after": 1}, headers={"X-Api-Key": KEY})
    assert resp.status == 200 and not (await resp.text()).endswith("}")
    assert (await portal.post("/_sim/faults", json={"malformed_rate": 0.0, "down": True})).status == 200
    assert (await push(portal, [item(1, "A", 2)]))[0] == 503
    stats = await (await portal.get("/_sim/stats")).json()
    assert (stats["refused"], stats["malformed"], stats["refused_down"]) == (1, 1, 1)
    assert (await (await portal.get("/_sim/view")).json())["dossiers"] == {}  # nothing kept by any of them
