"""The civil-status simulator on its own: envelope answers and codes, de-duplication, signed callbacks,
new personal ids, register numbering, faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from lxml import etree

from adapters.signing import HmacSigner, HmacVerifier
from contracts.identifiers import check_personal_id
from gateway.errors import MalformedAnswer
from gateway.sdk.simulation import RNG, Faults, SimulatorOptions
from plugins.justice import envelope, plugin, wire
from plugins.justice.connector import JusticeSettings
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.justice.simulator import ENTRIES_PER_BOOK, KEY_ID, create_simulator, new_personal_id, result_xml
from tests.plugins.justice.test_wire import dossier, sample

SECRET = "justice-simulator-test-secret-1"
BIRTH = "/api/hotich/v1/khai-sinh"
DEATH = "/api/hotich/v1/khai-tu"
Client = TestClient[Any, Any]


@pytest.fixture
async def sim(aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    options = SimulatorOptions(callback_api_key="cb-key", secret=SECRET, processing_delay=0.01, faults=Faults())
    return await aiohttp_client(create_simulator(options))


def request_body(
    code: str = BIRTH_REGISTRATION, rid: str = "req-1", url: str = "http://127.0.0.1:9/cb", **xml: str
) -> bytes:
    service, text = wire.request_xml(dossier(sample(code)))
    for old, new in xml.items():
        text = text.replace(old, new)
    return orjson.dumps(envelope.request(rid, service, url, text))


async def post(client: Client, path: str, body: bytes, secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **HmacSigner(KEY_ID, secret)("POST", path, body)}
    resp = await client.post(path, data=body, headers=headers)
    return resp.status, await resp.json()


async def test_signature_refused_with_code_100(sim: Client) -> None:
    status, answer = await post(sim, BIRTH, request_body(), secret="not-the-agency-secret-0001")
    assert (status, answer["errorCode"], answer["status"]) == (401, "100", "error")
    unsigned = await sim.post(BIRTH, data=request_body())
    assert (await unsigned.json())["errorCode"] == "100"


async def test_receipt_and_deduplication(sim: Client) -> None:
    first = await post(sim, BIRTH, request_body(rid="a"))
    again = await post(sim, BIRTH, request_body(rid="a"))
    other = await post(sim, DEATH, request_body(DEATH_REGISTRATION, rid="b"))
    assert first == again
    status, answer = first
    assert (status, answer["errorCode"], answer["status"]) == (200, "0", "success")
    assert wire.receipt(answer["data"].encode(), max_bytes=10_000) == "HT-0000001"
    assert wire.receipt(other[1]["data"].encode(), max_bytes=10_000) == "HT-0000002"
    stats = await (await sim.get("/_sim/stats")).json()
    assert (stats["accepted"], stats["duplicates"]) == (2, 1)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (BIRTH, b"{not json", "Dữ liệu không hợp lệ"),
        (BIRTH, orjson.dumps({"requestId": "x"}), "Dữ liệu không hợp lệ"),
        (BIRTH, orjson.dumps({"requestId": "x", "data": "<a><b></a>"}), "not well-formed"),
        (BIRTH, orjson.dumps({"requestId": "x", "data": '<!DOCTYPE a [<!ENTITY e "e">]><a/>'}), "DOCTYPE"),
        (DEATH, request_body(), "gửi nhầm dịch vụ"),
        (BIRTH, request_body(url=""), "thiếu callbackUrl"),
        (BIRTH, request_body(**{"<GioiTinh>1</GioiTinh>": "<GioiTinh>M</GioiTinh>"}), "GioiTinh"),
    ],
)
async def test_data_errors_are_code_500(sim: Client, path: str, body: bytes, message: str) -> None:
    status, answer = await post(sim, path, body)
    assert (status, answer["errorCode"]) == (200, "500")
    assert message in answer["message"]


def birth_with(path: str, value: str) -> bytes:
    root = etree.fromstring(wire.request_xml(dossier(sample(BIRTH_REGISTRATION)))[1])
    el = root.find(path)
    assert el is not None
    el.text = value
    return orjson.dumps(envelope.request("r", "DangKyKhaiSinh", "http://cb", etree.tostring(root, encoding="unicode")))


async def test_bad_dates_and_provinces_are_code_500(sim: Client) -> None:
    assert "không phải ngày" in (await post(sim, BIRTH, birth_with("TreEm/NgaySinh", "20/11/2026")))[1]["message"]
    assert "mã tỉnh" in (await post(sim, BIRTH, birth_with("NoiDangKy/MaTinh", "03")))[1]["message"]


async def test_unknown_person_is_code_201(sim: Client) -> None:
    mother = sample(BIRTH_REGISTRATION)["form"]["mother"]["personal_id"]
    stranger = mother[:6] + "000000"
    status, answer = await post(sim, BIRTH, request_body(**{mother: stranger}))
    assert (status, answer["errorCode"]) == (200, "201")
    assert stranger in answer["message"]


async def test_result_is_called_back_signed(sim: Client, aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    got: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        await got.put((dict(request.headers), await request.read()))
        return web.json_response({"received": 1, "applied": 1})

    app = web.Application()
    app.router.add_post("/v1/callbacks/justice", receive)
    gateway = await aiohttp_client(app)
    await post(sim, BIRTH, request_body(url=str(gateway.make_url("/v1/callbacks/justice"))))
    headers, body = await asyncio.wait_for(got.get(), 5)
    assert headers["X-Api-Key"] == "cb-key"
    assert HmacVerifier({KEY_ID: SECRET}).verify("POST", "/v1/callbacks/justice", headers, body) == KEY_ID
    answer = orjson.loads(body)
    assert (answer["errorCode"], answer["status"]) == ("0", "success")
    root = etree.fromstring(answer["data"].encode())
    assert (root.tag, root.findtext("LoaiViec"), root.findtext("TrangThai")) == (
        "KetQuaHoTich",
        "KHAI_SINH",
        "HOAN_THANH",
    )
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["callbacks_ok"] == 1


def test_new_personal_ids_agree_and_never_repeat() -> None:
    app = create_simulator(SimulatorOptions(seed=3))
    app[RNG] = random.Random(3)
    seen = set()
    for province, born, gender in [("01", date(2026, 11, 1), "1"), ("79", date(2026, 1, 9), "2")] * 50:
        pid = new_personal_id(app, province, born, gender)
        check_personal_id(pid, date_of_birth=born, gender=wire.GENDER_FROM_WIRE[gender])
        assert pid[:3] == "0" + province
        seen.add(pid)
    assert len(seen) == 100


def test_register_numbers_books_and_pages() -> None:
    app = create_simulator(SimulatorOptions())
    death = etree.fromstring(wire.request_xml(dossier(sample(DEATH_REGISTRATION)))[1])
    cells = []
    for i in range(ENTRIES_PER_BOOK + 3):
        entry = result_xml(app, "KHAI_TU", death, f"HT-{i}")
        cells.append(
            (entry.findtext("DangKy/So"), str(entry.findtext("DangKy/Quyen"))[:2], entry.findtext("DangKy/Trang"))
        )
    assert cells[:3] == [("1", "01", "1"), ("2", "01", "1"), ("3", "01", "2")]
    assert cells[ENTRIES_PER_BOOK] == (str(ENTRIES_PER_BOOK + 1), "02", "1")
    birth = etree.fromstring(wire.request_xml(dossier(sample(BIRTH_REGISTRATION)))[1])
    assert result_xml(app, "KHAI_SINH", birth, "x").findtext("DangKy/So") == "1"  # each register counts on its own


async def test_faults(sim: Client) -> None:
    await sim.post("/_sim/faults", json={"malformed_rate": 1.0})
    resp = await sim.post(BIRTH, data=request_body())
    answer = await resp.json()
    assert answer["errorCode"] == "0"
    with pytest.raises(MalformedAnswer, match="not well-formed"):
        wire.receipt(answer["data"].encode(), max_bytes=10_000)
    await sim.post("/_sim/faults", json={"malformed_rate": 0.0, "down": True})
    assert (await sim.post(BIRTH, data=request_body())).status == 503
    assert (await sim.get("/health")).status == 503


def test_plugin_registers_kind_and_procedures() -> None:
    [kind] = plugin.register_agency_kinds()
    assert (kind.name, kind.protocol, kind.settings_model, kind.lookups) == ("justice", "rest", JusticeSettings, ())
    assert kind.simulator is create_simulator
    procs = {p.code: p for p in plugin.register_procedures()}
    assert set(procs) == {"1.001193", "1.000656"}
    assert procs["1.001193"].required_components == ("TK-KS",)


# -- documents -----------------------------------------------------------------------------------------


async def test_documents_are_checked_and_counted(sim: Client) -> None:
    assert (await post(sim, BIRTH, request_body(rid="docs-1")))[1]["errorCode"] == "0"
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["documents_ok"] == 1 and "documents_refused" not in stats


def birth_documents(change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(wire.request_xml(dossier(sample(BIRTH_REGISTRATION)))[1])
    change(root)
    return orjson.dumps(envelope.request("r", "DangKyKhaiSinh", "http://cb", etree.tostring(root, encoding="unicode")))


def _drop_declaration(root: etree._Element) -> None:
    listing = root.find("DanhSachTaiLieu")
    assert listing is not None
    for doc in listing.findall("TaiLieu"):
        if doc.findtext("MaThanhPhan") == "TK-KS":
            listing.remove(doc)


def _set(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        el = root.find(f"DanhSachTaiLieu/TaiLieu/{path}")
        assert el is not None
        el.text = value

    return change


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_drop_declaration, "TK-KS: required by procedure 1.001193 and missing"),
        (_set("Sha256", "0" * 64), "the content's sha256 is not the declared one"),
        (_set("NoiDung", "JVBERi0xLjQK"), "received 9"),  # another, shorter document
        (_set("LoaiTep", "image/png"), "image/png is not accepted"),
    ],
)
async def test_a_registration_without_its_documents_whole_is_refused(
    sim: Client, change: Callable[[etree._Element], None], problem: str
) -> None:
    status, answer = await post(sim, BIRTH, birth_documents(change))
    assert (status, answer["errorCode"]) == (200, "500")
    assert problem in answer["message"], answer
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["documents_refused"] == 1 and "accepted" not in stats
