"""JusticeConnector against the civil-status simulator over loopback: envelopes, error codes, signed
callbacks carrying the child's new personal id, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.signing import HmacSigner
from contracts import DossierStatus, Gender
from contracts.identifiers import check_personal_id
from gateway.connector import AgencyUpdate, ConnectorContext, Delivery
from gateway.errors import (
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    Unauthenticated,
)
from gateway.sdk.simulation import FAULTS, STATS, Faults, SimulatorOptions
from plugins.justice import envelope
from plugins.justice.connector import JusticeConnector, JusticeSettings
from plugins.justice.demo import demo_dossiers
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.justice.simulator import ACCEPTED, KEY_ID, create_simulator
from tests.plugins.justice.test_wire import DID, dossier, result, sample

SECRET = "justice-connector-test-secret-01"
CALLBACK_PATH = "/v1/callbacks/justice"
SUBMIT = Delivery(f"{DID}:submit", attempt=1)
SimFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def make_sim(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> SimFactory:
    async def make(delay: float = 3600) -> TestServer:
        options = SimulatorOptions(secret=SECRET, processing_delay=delay, faults=Faults(), callback_api_key="cb-key")
        return await aiohttp_server(create_simulator(options))

    return make


@pytest.fixture
async def sim(make_sim: SimFactory) -> TestServer:
    return await make_sim()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def connector(
    sim: TestServer,
    http: aiohttp.ClientSession,
    *,
    secret: str = SECRET,
    timeout: float = 5.0,
    callback_url: str = "http://127.0.0.1:9" + CALLBACK_PATH,
) -> JusticeConnector:
    settings = JusticeSettings(url=str(sim.make_url("")), timeout=timeout, key_id=KEY_ID, secret=secret)
    return JusticeConnector(ConnectorContext("justice", "national", settings, http, callback_url))


def faults(sim: TestServer, **kw: Any) -> None:
    sim.app[FAULTS].faults = Faults(**kw)


def stats(sim: TestServer) -> dict[str, int]:
    counts = sim.app[STATS]
    return dict(counts)


# -- submissions -------------------------------------------------------------------------------------


async def test_submit_and_resubmit(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    first = await c.submit(dossier(sample(BIRTH_REGISTRATION)), SUBMIT)
    again = await c.submit(dossier(sample(BIRTH_REGISTRATION)), Delivery(f"{DID}:submit", attempt=2))
    death = await c.submit(dossier(sample(DEATH_REGISTRATION)), Delivery(f"{DID}:other", attempt=1))
    assert first.agency_ref == again.agency_ref == "HT-0000001"
    assert death.agency_ref == "HT-0000002"
    assert (stats(sim)["accepted"], stats(sim)["duplicates"]) == (2, 1)
    accepted = sim.app[ACCEPTED]
    assert [a["loaiViec"] for a in accepted.values()] == ["KHAI_SINH", "KHAI_TU"]


async def test_auth_error_100(sim: TestServer, http: aiohttp.ClientSession) -> None:
    with pytest.raises(AgencyRejected, match=r"authentication refused \(error 100\)") as err:
        await connector(sim, http, secret="not-the-agency-secret-000001").submit(
            dossier(sample(BIRTH_REGISTRATION)), SUBMIT
        )
    assert (err.value.code, err.value.status, err.value.retryable) == ("100", 401, False)
    assert "bad signature" in err.value.message


async def test_not_found_201(sim: TestServer, http: aiohttp.ClientSession) -> None:
    sub = sample(DEATH_REGISTRATION)
    # A well-formed id of someone the population register does not know.
    unknown = {**sub["form"]["deceased"], "personal_id": sub["form"]["deceased"]["personal_id"][:6] + "000000"}
    with pytest.raises(AgencyRejected, match=r"not found \(error 201\)") as err:
        await connector(sim, http).submit(dossier({**sub, "form": {**sub["form"], "deceased": unknown}}), SUBMIT)
    assert (err.value.code, err.value.retryable) == ("201", False)
    assert stats(sim).get("accepted", 0) == 0


async def test_data_error_500(sim: TestServer, http: aiohttp.ClientSession) -> None:
    """The connector never sends an incomplete record (forms are validated), so post one by hand."""
    payload = envelope.request(SUBMIT.idempotency_key, "DangKyKhaiSinh", "http://cb", "<HoSoDangKyKhaiSinh/>")
    body = orjson.dumps(payload)
    path = "/api/hotich/v1/khai-sinh"
    headers = {"Content-Type": "application/json", **HmacSigner(KEY_ID, SECRET)("POST", path, body)}
    async with http.post(str(sim.make_url(path)), data=body, headers=headers) as resp:
        status, raw = resp.status, await resp.read()
    assert status == 200
    assert "thiếu MaHoSo" in orjson.loads(raw)["message"]
    with pytest.raises(AgencyRejected, match=r"invalid data \(error 500\)") as err:
        envelope.open_answer(status, raw, "justice")
    assert (err.value.code, err.value.retryable) == ("500", False)


async def test_unmappable_dossier_is_rejected_without_a_call(sim: TestServer, http: aiohttp.ClientSession) -> None:
    sub = sample(BIRTH_REGISTRATION)
    with pytest.raises(AgencyRejected, match=r"justice: cannot map dossier 000\.00\.01\.H26-261120-0021"):
        await connector(sim, http).submit(
            dossier({**sub, "form": {**sub["form"], "mother": None, "father": None}}), SUBMIT
        )
    assert stats(sim).get("requests", 0) == 0


# -- faults ------------------------------------------------------------------------------------------


async def test_agency_down(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, down=True)
    with pytest.raises(AgencyUnavailable) as err:
        await connector(sim, http).submit(dossier(sample(BIRTH_REGISTRATION)), SUBMIT)
    assert (err.value.status, err.value.agency, err.value.retryable) == (503, "justice", True)


async def test_server_error(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, error_rate=1.0)
    with pytest.raises(AgencyUnavailable) as err:
        await connector(sim, http).submit(dossier(sample(BIRTH_REGISTRATION)), SUBMIT)
    assert err.value.status == 500


async def test_garbled_xml_inside_a_good_envelope(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, malformed_rate=1.0)
    with pytest.raises(MalformedAnswer, match="not well-formed XML") as err:
        await connector(sim, http).submit(dossier(sample(BIRTH_REGISTRATION)), SUBMIT)
    assert (err.value.agency, err.value.retryable) == ("justice", True)


async def test_slow_agency_times_out(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, latency_ms=800)
    with pytest.raises(AgencyTimeout):
        await connector(sim, http, timeout=0.2).submit(dossier(sample(BIRTH_REGISTRATION)), SUBMIT)


async def test_check_and_no_lookups(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    assert (await c.check()).ok
    with pytest.raises(NotFound):
        await c.lookup("social-insurance-number", c.settings)
    faults(sim, down=True)
    assert not (await c.check()).ok


# -- callbacks ---------------------------------------------------------------------------------------


def signed(body: bytes, path: str = CALLBACK_PATH, secret: str = SECRET) -> dict[str, str]:
    return dict(HmacSigner(KEY_ID, secret)("POST", path, body))


def callback_body(data: bytes = result(), code: str = "0") -> bytes:
    return orjson.dumps(envelope.reply(code, "Kết quả xử lý", data.decode()))


async def test_signed_callback(sim: TestServer, http: aiohttp.ClientSession) -> None:
    body = callback_body()
    [update] = await connector(sim, http).handle_callback(body, signed(body))
    assert update.outputs == {"child_personal_id": "001326004512", "birth_register_number": "125"}


@pytest.mark.parametrize("case", ["unsigned", "other-path", "wrong-secret", "tampered"])
async def test_callback_signature_refused(sim: TestServer, http: aiohttp.ClientSession, case: str) -> None:
    body = callback_body()
    headers = {
        "unsigned": {},
        "other-path": signed(body, "/v1/callbacks/police"),
        "wrong-secret": signed(body, secret="another-secret-000000000001"),
        "tampered": signed(body.replace(b"001326004512", b"001326004513")),
    }[case]
    with pytest.raises(Unauthenticated, match="justice callback signature rejected"):
        await connector(sim, http).handle_callback(body, headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<KetQuaHoTich/>", "not JSON"),
        (callback_body(code="201"), r"not found \(error 201\)"),
        (callback_body(result(SoDinhDanh="001126004512")), "new personal id is invalid"),
        (callback_body(b'<!DOCTYPE x [<!ENTITY e "e">]><KetQuaHoTich>&e;</KetQuaHoTich>'), "DOCTYPE"),
        (orjson.dumps({"errorCode": "0"}), "no XML data"),
    ],
)
async def test_unusable_callbacks(sim: TestServer, http: aiohttp.ClientSession, body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await connector(sim, http).handle_callback(body, signed(body))


@pytest.fixture
async def gateway(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[TestServer, asyncio.Queue[Any]]:
    """A stand-in for the gateway's callback endpoint: records what the agency posts."""
    got: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        await got.put((dict(request.headers), await request.read()))
        return web.json_response({"received": 1, "applied": 1})

    app = web.Application()
    app.router.add_post(CALLBACK_PATH, receive)
    return await aiohttp_server(app), got


async def run_through(
    make_sim: SimFactory, http: aiohttp.ClientSession, gw: TestServer, got: asyncio.Queue[Any], subs: list[Any]
) -> list[AgencyUpdate]:
    sim = await make_sim(delay=0.01)
    c = connector(sim, http, callback_url=str(gw.make_url(CALLBACK_PATH)))
    for i, sub in enumerate(subs):
        await c.submit(dossier(sub), Delivery(f"{DID}:submit-{i}", attempt=1))
    updates = []
    for _ in subs:
        headers, body = await asyncio.wait_for(got.get(), 5)
        assert headers["X-Api-Key"] == "cb-key"
        updates.extend(await c.handle_callback(body, headers))
    return sorted(updates, key=lambda u: u.agency_ref or "")


async def test_births_return_valid_new_personal_ids(
    make_sim: SimFactory, http: aiohttp.ClientSession, gateway: tuple[TestServer, asyncio.Queue[Any]]
) -> None:
    births = [d for d in demo_dossiers(9, 30) if d["procedure_code"] == BIRTH_REGISTRATION][:6]
    updates = await run_through(make_sim, http, *gateway, births)
    ids = set()
    for sub, update in zip(births, updates, strict=True):
        child = sub["form"]["child"]
        pid = update.outputs["child_personal_id"]
        check_personal_id(pid, date_of_birth=date.fromisoformat(child["date_of_birth"]), gender=Gender(child["gender"]))
        assert pid[:3] == "0" + sub["jurisdiction"]["province"]
        assert update.status == DossierStatus.FINISHED
        assert update.outputs["birth_register_number"] == update.data["register_number"]
        assert update.results[0].name == "Giấy khai sinh (bản chính)"
        ids.add(pid)
    assert len(ids) == len(births)
    assert [u.outputs["birth_register_number"] for u in updates] == ["1", "2", "3", "4", "5", "6"]


async def test_death_registered(
    make_sim: SimFactory, http: aiohttp.ClientSession, gateway: tuple[TestServer, asyncio.Queue[Any]]
) -> None:
    [update] = await run_through(make_sim, http, *gateway, [sample(DEATH_REGISTRATION)])
    assert update.outputs == {"death_register_number": "1"}
    assert update.data["register_book"].startswith("01/")
    assert update.results[0].name == "Trích lục khai tử"
