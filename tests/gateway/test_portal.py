"""Pushing the status feed to the national portal in its protocol: real gateway, real portal simulator,
real SQLite.

Every change reaches the portal in order whatever the portal does meanwhile (down, failing, slow,
answering nonsense, refusing with a 4xx or with a non-zero error_code, ending sessions); a refusal that
names a dossier's field shows on the dossier; a restart resumes after the last acknowledged push; a
shutdown does not wait for a hanging push.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.api.keys import PORTAL_PUSHER, STORE
from gateway.app import create_app
from gateway.config import Config, load_config
from gateway.config.model import PortalSettings
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from gateway.portal import CURSOR
from gateway.sandbox.demo import DEMO_KEYS, portal_agrees
from gateway.sandbox.portal_sim import LOGIN_PATH, SERVICE_PATH, create_portal_simulator
from gateway.sdk.simulation import Faults, SimulatorOptions
from gateway.store import SqliteStore
from plugins.police.simulator import create_simulator
from tests.gateway.conftest import CONF, SECRET

PORTAL_KEY = "test-portal-push-key-0001"  # the password the gateway logs in with
PORTAL_UNIT = "000.00.00.H01"
BATCH = 2  # small, so a few dossiers make several pushes


@dataclass
class Rig:
    """The police simulator, the portal simulator, and a gateway that can be stopped and started again."""

    config: Config
    registry: Registry
    police: TestServer
    portal: TestServer
    gw_port: int
    db: Path
    session: aiohttp.ClientSession  # the test's own, to reach the portal while the gateway is stopped
    client: TestClient[Any, Any] | None = None

    @property
    def app(self) -> web.Application:
        assert self.client is not None
        app: web.Application = self.client.app
        return app

    async def start(self, **portal: Any) -> TestClient[Any, Any]:
        settings = PortalSettings(
            push_url=str(self.portal.make_url(SERVICE_PATH)),
            auth_url=str(self.portal.make_url(LOGIN_PATH)),
            username="lienthong-test",
            password=PORTAL_KEY,
            madonvi=PORTAL_UNIT,
            batch=BATCH,
            interval=0.5,
            timeout=1.0,
            base_delay=0.05,
            max_delay=0.3,
            jitter=0.05,
        ).model_copy(update=portal)
        config = self.config.model_copy(update={"gateway": self.config.gateway.model_copy(update={"portal": settings})})
        self.client = TestClient(TestServer(create_app(config, self.registry), host="127.0.0.1", port=self.gw_port))
        await self.client.start_server()
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def submit(self, body: dict[str, Any], centre: str = "centre-hanoi") -> str:
        assert self.client is not None
        resp = await self.client.post("/v1/dossiers", json=body, headers={"X-Api-Key": DEMO_KEYS[centre]})
        assert resp.status == 202, await resp.text()
        code: str = (await resp.json())["code"]
        return code

    async def wait_finished(self, codes: list[str], timeout: float = 15.0) -> None:
        assert self.client is not None
        deadline = asyncio.get_running_loop().time() + timeout
        for code in codes:
            while True:
                resp = await self.client.get(f"/v1/dossiers/{code}", headers={"X-Api-Key": DEMO_KEYS["portal"]})
                if (await resp.json())["status"] == 9:
                    break
                assert asyncio.get_running_loop().time() < deadline, f"{code} did not finish"
                await asyncio.sleep(0.05)

    async def pulled(self) -> list[dict[str, Any]]:
        """The whole feed as GET /v1/feed serves it: what the pushes must add up to."""
        assert self.client is not None
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            resp = await self.client.get(
                f"/v1/feed?after={after}&limit=1000", headers={"X-Api-Key": DEMO_KEYS["portal"]}
            )
            page = await resp.json()
            if not page["items"]:
                return items
            items += page["items"]
            after = page["next_after"]

    async def portal_get(self, path: str) -> Any:
        async with self.session.get(str(self.portal.make_url(path))) as r:
            assert r.status == 200
            return await r.json()

    async def portal_post(self, path: str, body: Any) -> Any:
        async with self.session.post(str(self.portal.make_url(path)), json=body) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def wait_agreement(self, timeout: float = 15.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Wait until the portal holds every change of the feed and the cursor says so; returns the feed and
        the portal's view."""
        feed = await self.pulled()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.portal_get("/_sim/view")
            if view["progress_records"] == len(feed) and await self.app[STORE].feed_cursor(CURSOR) == feed[-1]["seq"]:
                return feed, view
            assert asyncio.get_running_loop().time() < deadline, f"portal has {view['progress_records']} of {len(feed)}"
            await asyncio.sleep(0.05)

    async def wait_acknowledged(self, seq: int, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (cursor := await self.app[STORE].feed_cursor(CURSOR)) < seq:
            assert asyncio.get_running_loop().time() < deadline, f"cursor at {cursor}, not {seq}"
            await asyncio.sleep(0.02)
        assert cursor == seq


def assert_agrees(feed: list[dict[str, Any]], view: dict[str, Any]) -> None:
    """The portal's view is the feed's: each dossier's latest record, every change once and in order."""
    latest = {it["dossier"]["MaHoSo"]: it["dossier"] for it in feed}
    assert view["dossiers"] == latest
    statuses: dict[str, list[str]] = {}
    for it in feed:
        statuses.setdefault(it["progress"]["MaHoSo"], []).append(it["progress"]["TrangThai"])
    assert view["statuses"] == statuses
    assert view["progress_records"] == len(feed)
    assert portal_agrees(feed, view)  # the demo's check says the same


@pytest.fixture
async def rig(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: Registry,
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[Rig]:
    gw_port = unused_tcp_port_factory()
    police = TestServer(
        create_simulator(
            SimulatorOptions(
                callback_url=f"http://127.0.0.1:{gw_port}/v1/callbacks/police",
                callback_api_key=DEMO_KEYS["police-callbacks"],
                secret=SECRET,
                processing_delay=0.05,
            )
        ),
        host="127.0.0.1",
    )
    portal = TestServer(
        create_portal_simulator(
            SimulatorOptions(secret=PORTAL_KEY, settings={"username": "lienthong-test", "madonvi": PORTAL_UNIT})
        ),
        host="127.0.0.1",
    )
    await police.start_server()
    await portal.start_server()
    monkeypatch.setenv("POLICE_URL", str(police.make_url("")).rstrip("/"))
    monkeypatch.setenv("POLICE_SECRET", SECRET)
    monkeypatch.setenv("LIENTHONG_DB", str(tmp_path / "gw.db"))
    monkeypatch.setenv("LIENTHONG_PORT", str(gw_port))
    monkeypatch.setenv("LIENTHONG_RETRY_BASE", "0.05")
    monkeypatch.setenv("LIENTHONG_PROBE_AFTER", "0.2")  # an agency back is found soon
    monkeypatch.setenv("LIENTHONG_PROBE_MAX", "1")
    config = await asyncio.to_thread(load_config, CONF, registry)
    async with aiohttp.ClientSession() as session:
        r = Rig(config, registry, police, portal, gw_port, tmp_path / "gw.db", session)
        try:
            yield r
        finally:
            await r.stop()
            await portal.close()
            await police.close()


def pushes(logs: list[dict[str, Any]], service: str | None = None) -> list[dict[str, Any]]:
    """The outbound lines of calls to the integration endpoint (one per call), of one service if named."""
    return [
        e for e in logs if e["event"] == "outbound" and e.get("op") == "portal.push" and service in (None, e["service"])
    ]


async def test_every_change_reaches_the_portal_in_order_and_its_view_agrees(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    with capture_logs() as logs:
        await rig.start()
        codes = [await rig.submit(submission(i), centre) for i, centre in enumerate(["centre-hanoi", "centre-hcm"] * 2)]
        await rig.wait_finished(codes)
        feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    assert {code: view["statuses"][code] for code in codes} == {code: ["2", "4", "9"] for code in codes}
    stats = await rig.portal_get("/_sim/stats")
    assert stats.get("duplicates", 0) == 0 and stats.get("refused", 0) == 0
    assert stats["progress_records"] == len(feed) == 12
    assert stats["creates"] == len(codes)  # each dossier created once, then updated
    # One session for the whole run; one outbound line per call, each batch within the batch size, its
    # progress records sent once the dossiers' records were taken, together covering the feed once in order.
    assert stats["logins"] == 1 and next(e for e in logs if e.get("op") == "portal.login")["status"] == 200
    calls = pushes(logs)
    assert len(calls) == stats["calls"] and all(e["status"] == 200 and e["error_code"] == "0" for e in calls)
    progress = pushes(logs, "CapNhatTienDoHoSoMC")
    assert all(e["records"] <= BATCH for e in progress)
    assert [s for e in progress for s in range(e["first"], e["last"] + 1)] == [it["seq"] for it in feed]
    for e in pushes(logs, "DongBoHoSoMC"):
        later = [p for p in progress if (p["first"], p["last"]) == (e["first"], e["last"])]
        assert later and logs.index(later[0]) > logs.index(e)
    assert {e["updating"] for e in pushes(logs, "DongBoHoSoMC")} == {False, True}
    # The cursor is durable and where the last push ended (once the answer to it is recorded).
    await rig.wait_acknowledged(feed[-1]["seq"])
    await asyncio.sleep(0.1)  # the pusher counts once it has heard of the commit the cursor shows
    assert rig.app[PORTAL_PUSHER].pushed == len(feed)
    # The records pushed are the feed's, field for field, in the portal's types: strings and its dates.
    record = view["dossiers"][codes[0]]
    assert (record["TrangThaiHoSo"], record["KenhThucHien"], len(record["NgayKetThucXuLy"])) == ("9", "1", 14)
    assert record["DanhSachGiayToKetQua"][0]["DuongDanTepTinKetQua"].endswith(f"/v1/dossiers/{codes[0]}/results/0")
    # Every submitted document links to the gateway's copy, which the portal may follow: the document itself.
    [document] = record["TaiLieuNop"]
    link = document["DuongDanTaiTepTin"]
    assert link.endswith(f"/v1/dossiers/{codes[0]}/attachments/0")
    assert rig.client is not None
    got = await rig.client.get(link[link.index("/v1/") :], headers={"X-Api-Key": DEMO_KEYS["portal"]})
    assert got.status == 200
    assert hashlib.sha256(await got.read()).hexdigest() == document["TepDinhKemId"]


@pytest.mark.parametrize(
    "faults",
    [
        {"down": True},
        {"down": True, "down_mode": "reset"},
        {"error_rate": 1.0},
        {"malformed_rate": 1.0},
        {"timeout_rate": 1.0, "timeout_s": 5.0},
        {"answer_delay_ms": 1500},  # the portal keeps the push, but the answer comes after our timeout
    ],
    ids=["down-503", "down-reset", "errors", "malformed", "timeouts", "answers-lost"],
)
async def test_a_portal_that_fails_for_a_while_loses_nothing(
    rig: Rig, submission: Callable[[int], dict[str, Any]], faults: dict[str, Any]
) -> None:
    await rig.start()
    codes = [await rig.submit(submission(0))]
    await rig.wait_finished(codes)
    acknowledged = (await rig.wait_agreement())[0][-1]["seq"]  # a session is open when the trouble starts
    await rig.portal_post("/_sim/faults", faults)
    codes += [await rig.submit(submission(i)) for i in range(1, 4)]
    await rig.wait_finished(codes)
    pusher, deadline = rig.app[PORTAL_PUSHER], asyncio.get_running_loop().time() + 10
    while pusher.failures < 3:  # a few failed attempts, under backoff
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    # Nothing acknowledged: nothing taken as delivered.
    assert await rig.app[STORE].feed_cursor(CURSOR) == acknowledged
    await rig.portal_post("/_sim/faults", Faults().model_dump())
    feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    stats = await rig.portal_get("/_sim/stats")
    # Progress records go only once the portal took the dossiers' records: none comes twice.
    assert stats.get("duplicates", 0) == 0
    if "answer_delay_ms" in faults:
        # At least once: calls whose answer was lost came again; the portal had the new dossiers, so their
        # creates were answered "đã tồn tại" and went again as updates.
        assert stats["refused"] > 0 and stats["creates"] == len(codes)


async def test_a_200_with_a_non_zero_error_code_moves_nothing_and_the_batch_comes_again(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    with capture_logs() as logs:
        await rig.start()
        await rig.portal_post("/_sim/refuse", {"error_code": 1, "message": "Dữ liệu không hợp lệ"})
        codes = [await rig.submit(submission(i)) for i in range(3)]
        await rig.wait_finished(codes)
        pusher, deadline = rig.app[PORTAL_PUSHER], asyncio.get_running_loop().time() + 10
        while pusher.refusals < 3:  # the same batch, refused again and again with HTTP 200
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert await rig.app[STORE].feed_cursor(CURSOR) == 0
        assert (await rig.portal_get("/_sim/view"))["progress_records"] == 0
        await rig.portal_post("/_sim/refuse", {})
        feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    refused = [e for e in logs if e["event"] == "portal_refused"]
    assert len(refused) >= 3
    assert all(
        (e["log_level"], e["error_code"], e["message"], e["first"]) == ("error", "1", "Dữ liệu không hợp lệ", 1)
        for e in refused
    )
    answered = [e for e in pushes(logs) if e["error_code"] == "1"]
    assert answered and all(e["status"] == 200 for e in answered)  # HTTP said yes; error_code said no
    # The message named no dossier and the call held several: nothing is pinned on a dossier.
    for code in codes:
        dossier = await rig.app[STORE].get_dossier(code)
        assert dossier is not None and dossier.portal_refusal is None


async def test_a_refusal_naming_a_field_shows_on_the_dossier_until_the_portal_takes_it(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    await rig.start()
    await rig.portal_post("/_sim/refuse", {"error_code": 1, "field": "NgayHenTra"})
    code = await rig.submit(submission(0))
    assert rig.client is not None
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        resp = await rig.client.get(f"/v1/dossiers/{code}", headers={"X-Api-Key": DEMO_KEYS["operator"]})
        dossier = await resp.json()
        if dossier.get("portal_refusal"):
            break
        assert asyncio.get_running_loop().time() < deadline, dossier
        await asyncio.sleep(0.05)
    refusal = dossier["portal_refusal"]
    assert (refusal["service"], refusal["error_code"], refusal["field"]) == ("DongBoHoSoMC", "1", "NgayHenTra")
    assert refusal["message"] == f"Hồ sơ {code}: trường NgayHenTra không hợp lệ"
    assert await rig.app[STORE].feed_cursor(CURSOR) == 0
    # A message naming a field but no dossier, for a call that carried one dossier: that dossier's.
    await rig.portal_post("/_sim/refuse", {"error_code": 9, "message": "Trường DonViXuLy vượt quá độ dài"})
    while (
        (stored := await rig.app[STORE].get_dossier(code)) is None
        or stored.portal_refusal is None
        or (stored.portal_refusal.error_code != "9")
    ):
        assert asyncio.get_running_loop().time() < deadline + 10
        await asyncio.sleep(0.05)
    assert (stored.portal_refusal.field, stored.portal_refusal.message) == (
        "DonViXuLy",
        "Trường DonViXuLy vượt quá độ dài",
    )
    await rig.portal_post("/_sim/refuse", {})
    await rig.wait_finished([code])
    feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    cleared = await rig.app[STORE].get_dossier(code)
    assert cleared is not None and cleared.portal_refusal is None


async def test_an_ended_session_is_replaced_and_nothing_is_lost(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    await rig.start()
    codes = [await rig.submit(submission(0))]
    await rig.wait_finished(codes)
    await rig.wait_agreement()
    assert (await rig.portal_post("/_sim/sessions", {}))["ended"] == 1  # the portal forgets our session
    codes.append(await rig.submit(submission(1)))
    await rig.wait_finished(codes)
    feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    stats = await rig.portal_get("/_sim/stats")
    assert stats["no_session"] >= 1 and stats["logins"] == 2
    assert stats.get("duplicates", 0) == 0


async def test_wrong_credentials_push_nothing(rig: Rig, submission: Callable[[int], dict[str, Any]]) -> None:
    with capture_logs() as logs:
        await rig.start(password="not-the-password")
        code = await rig.submit(submission(0))
        await rig.wait_finished([code])
        pusher, deadline = rig.app[PORTAL_PUSHER], asyncio.get_running_loop().time() + 10
        while pusher.refusals < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    assert await rig.app[STORE].feed_cursor(CURSOR) == 0
    stats = await rig.portal_get("/_sim/stats")
    assert stats["login_refused"] >= 2 and stats.get("calls", 0) == 0
    refused = [e for e in logs if e["event"] == "portal_login_refused"]
    assert refused[0]["error_code"] == "6" and "mật khẩu" in refused[0]["message"]
    assert not any("not-the-password" in str(e) for e in logs)  # the password is never logged


async def test_a_refusing_portal_skips_nothing(rig: Rig, submission: Callable[[int], dict[str, Any]]) -> None:
    with capture_logs() as logs:
        await rig.start()
        await rig.portal_post("/_sim/refuse", {"status": 403})
        codes = [await rig.submit(submission(i)) for i in range(3)]
        await rig.wait_finished(codes)
        await asyncio.sleep(0.8)
        assert (await rig.portal_get("/_sim/stats"))["refused_http"] >= 2  # retried, at the longest delay
        assert await rig.app[STORE].feed_cursor(CURSOR) == 0
        await rig.portal_post("/_sim/refuse", {"status": None})
        feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    refused = [e for e in logs if e["event"] == "outbound" and e.get("status") == 403]
    assert refused and all(e["log_level"] == "error" and e["first"] == feed[0]["seq"] for e in refused)


async def test_a_restart_resumes_after_the_last_acknowledged_push(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    await rig.start()
    codes = [await rig.submit(submission(i)) for i in range(2)]
    await rig.wait_finished(codes)
    feed, _ = await rig.wait_agreement()
    await rig.stop()

    # The cursor survived the gateway: read from the file, as another process would.
    store = SqliteStore(rig.db)
    await store.open()
    try:
        acknowledged = await store.feed_cursor(CURSOR)
    finally:
        await store.close()
    assert acknowledged == feed[-1]["seq"]
    taken_before = (await rig.portal_get("/_sim/stats"))["progress_records"]

    with capture_logs() as logs:
        await rig.start()
        codes.append(await rig.submit(submission(2)))
        await rig.wait_finished(codes)
        feed, view = await rig.wait_agreement()
    assert_agrees(feed, view)
    assert pushes(logs)[0]["first"] == acknowledged + 1  # nothing acknowledged is pushed again
    stats = await rig.portal_get("/_sim/stats")
    assert stats.get("duplicates", 0) == 0
    assert stats["progress_records"] - taken_before == len(feed) - acknowledged == 3


async def test_after_a_lost_answer_a_restart_pushes_again_only_the_last_batch(
    rig: Rig, submission: Callable[[int], dict[str, Any]]
) -> None:
    await rig.start()
    codes = [await rig.submit(submission(i)) for i in range(2)]
    await rig.wait_finished(codes)
    first, _ = await rig.wait_agreement()
    acknowledged = first[-1]["seq"]
    # The portal takes what comes next but its answers never arrive; then the gateway stops.
    await rig.portal_post("/_sim/faults", {"answer_delay_ms": 1500})
    codes.append(await rig.submit(submission(2)))
    await rig.wait_finished(codes)
    await asyncio.sleep(0.5)
    assert await rig.app[STORE].feed_cursor(CURSOR) == acknowledged
    await rig.stop()
    await rig.portal_post("/_sim/faults", Faults().model_dump())
    taken = (await rig.portal_get("/_sim/view"))["dossiers"]
    assert codes[2] in taken  # the portal had the new dossier, unacknowledged

    with capture_logs() as logs:
        await rig.start()
        feed, _ = await rig.wait_agreement()  # the batch came again, and was acknowledged
        await rig.wait_acknowledged(feed[-1]["seq"])
    assert_agrees(feed, await rig.portal_get("/_sim/view"))
    calls = pushes(logs)
    assert calls[0]["first"] == acknowledged + 1
    assert calls[0]["last"] - acknowledged <= BATCH  # only the unacknowledged batch comes again
    # Its create was answered "đã tồn tại" (the portal had it) and went again as an update.
    exists = [e for e in logs if e["event"] == "portal_refused" and e["error_code"] == "3"]
    assert exists and exists[0]["retry"] == "as an update"
    assert any(e["service"] == "DongBoHoSoMC" and e["updating"] and e["error_code"] == "0" for e in calls)


async def test_shutdown_does_not_wait_for_a_hanging_push(rig: Rig, submission: Callable[[int], dict[str, Any]]) -> None:
    await rig.start(timeout=60.0)
    await rig.portal_post("/_sim/faults", {"timeout_rate": 1.0, "timeout_s": 60.0})
    code = await rig.submit(submission(0))
    await rig.wait_finished([code])
    deadline = asyncio.get_running_loop().time() + 5
    while (await rig.portal_get("/_sim/stats")).get("timeouts", 0) < 1:  # a push now hangs
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await rig.stop()
    assert loop.time() - started < 3.0
    # The portal may yet take that push; only an answer moves the cursor, so it will come again.
    store = SqliteStore(rig.db)
    await store.open()
    try:
        assert await store.feed_cursor(CURSOR) == 0
    finally:
        await store.close()


async def test_no_push_url_no_pusher(rig: Rig) -> None:
    await rig.start(push_url=None)
    assert PORTAL_PUSHER not in rig.app
    assert (await rig.portal_get("/_sim/stats")).get("requests", 0) == 0


# -- settings -----------------------------------------------------------------------------------------


def test_portal_settings_are_optional_and_checked_with_file_and_key(tmp_path: Path, registry: Registry) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    assert load_config(conf, registry).gateway.portal.push_url is None  # no [portal] section: no pushing
    gateway = conf / "gateway.toml"
    text = gateway.read_text(encoding="utf-8")
    gateway.write_text(text + '\n[portal]\npush_url = ""\n', encoding="utf-8")
    assert load_config(conf, registry).gateway.portal.push_url is None  # empty: no pushing either
    gateway.write_text(
        text + '\n[portal]\npush_url = "ftp://portal"\nbatch = 0\ninterval = -1\nretries = 3\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert {(f, k) for f, k, _ in err.value.problems} == {
        ("gateway.toml", "portal.push_url"),
        ("gateway.toml", "portal.batch"),
        ("gateway.toml", "portal.interval"),
        ("gateway.toml", "portal.retries"),
    }
    gateway.write_text(text + '\n[portal]\npush_url = "https://dvc.example.vn/api/service"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert err.value.problems == [
        ("gateway.toml", "portal", "pushing to the portal needs auth_url, username, madonvi as well")
    ]
    gateway.write_text(text + '\n[portal]\npush_url = "${PORTAL_PUSH_URL}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    assert err.value.problems == [
        ("gateway.toml", "portal.push_url", "environment variable PORTAL_PUSH_URL is not set and has no default")
    ]
