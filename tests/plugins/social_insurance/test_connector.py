"""SocialInsuranceConnector against the BHXH simulator over loopback: OAuth2 tokens, claims, look-ups,
signed webhooks, failures mapped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.signing import HmacSigner
from contracts import Dossier, DossierStatus
from contracts.dossier import TRUSTED
from gateway.connector import ConnectorContext, Delivery
from gateway.documents import FilesystemDocumentStore
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
from plugins.police.population import population
from plugins.social_insurance.connector import LOOKUP, SocialInsuranceConnector, SocialInsuranceSettings
from plugins.social_insurance.forms import CHILD_HEALTH_CARD, FUNERAL_ALLOWANCE, InsuranceNumberQuery
from plugins.social_insurance.simulator import ACCEPTED, CLIENT_ID, DOCUMENTS, create_simulator, insurance_number
from tests.plugins.documents import documents, stored, tamper
from tests.plugins.social_insurance.test_wire import CARD_EVENT, DID, dossier, sample

__all__ = ["documents"]  # the fixture, used below

SECRET = "bhxh-connector-test-secret-0001"
CALLBACK_PATH = "/v1/callbacks/social_insurance"
SimFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def make_sim(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> SimFactory:
    async def make(delay: float = 3600, **settings: Any) -> TestServer:
        options = SimulatorOptions(
            secret=SECRET, processing_delay=delay, faults=Faults(), settings=settings, callback_api_key="cb-key"
        )
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
    ratio: float = 0.1,
    documents: FilesystemDocumentStore | None = None,
) -> SocialInsuranceConnector:
    settings = SocialInsuranceSettings(
        url=str(sim.make_url("")),
        timeout=timeout,
        client_id=CLIENT_ID,
        client_secret=secret,
        token_refresh_ratio=ratio,
    )
    ctx = ConnectorContext("social_insurance", "national", settings, http, callback_url, documents=documents)
    return SocialInsuranceConnector(ctx)


def faults(sim: TestServer, **kw: Any) -> None:
    sim.app[FAULTS].faults = Faults(**kw)


def stats(sim: TestServer) -> dict[str, int]:
    counts = sim.app[STATS]
    return dict(counts)


SUBMIT = Delivery(f"{DID}:submit", attempt=1)
KNOWN = population(7)[0]


def query(pid: str = KNOWN.personal_id) -> InsuranceNumberQuery:
    return InsuranceNumberQuery(personal_id=pid)


# -- claims and de-duplication -----------------------------------------------------------------------


async def kept(documents: FilesystemDocumentStore, code: str) -> Dossier:
    """A sample dossier as the gateway keeps it: its documents in the store, references in the submission."""
    d = dossier(sample(code))
    submission = await stored(documents, d.submission.model_dump(mode="json"))
    return Dossier.model_validate({**d.model_dump(mode="json"), "submission": submission}, context={TRUSTED: True})


async def test_documents_stream_from_the_store_as_file_parts(
    sim: TestServer, http: aiohttp.ClientSession, documents: FilesystemDocumentStore
) -> None:
    d = await kept(documents, FUNERAL_ALLOWANCE)
    assert d.submission.attachments and d.submission.attachments[0].content_base64 is None
    await connector(sim, http, documents=documents).submit(d, SUBMIT)
    assert stats(sim)["documents_ok"] == 1
    assert sim.app[DOCUMENTS][d.code] == [
        {"maThanhPhan": a.component_code, "loaiTep": a.media_type, "kichThuoc": a.size, "sha256": a.sha256}
        for a in d.submission.attachments
    ]
    assert [a.component_code for a in d.submission.attachments] == ["09-HSB", "TLKT"]


async def test_a_dropped_token_resends_the_whole_stream(
    sim: TestServer, http: aiohttp.ClientSession, documents: FilesystemDocumentStore
) -> None:
    c = connector(sim, http, documents=documents)
    await c.tokens.token()
    async with http.post(str(sim.make_url("/_sim/revoke-tokens"))) as r:
        assert (await r.json())["revoked"] == 1
    await c.submit(await kept(documents, FUNERAL_ALLOWANCE), SUBMIT)  # 401, a new token, the parts again
    s = stats(sim)
    assert (s["tokens_refused"], s["tokens_issued"], s["documents_ok"], s["accepted"]) == (1, 2, 1, 1)


async def test_a_damaged_document_is_refused_for_good(
    sim: TestServer, http: aiohttp.ClientSession, documents: FilesystemDocumentStore
) -> None:
    d = await kept(documents, FUNERAL_ALLOWANCE)
    a = d.submission.attachments[0]
    assert a.sha256 is not None and a.size is not None
    await tamper(documents, a.sha256, b"%PDF-" + b"x" * (a.size - 5))  # the same size, other bytes
    with pytest.raises(AgencyRejected, match="the content's sha256 is not the declared one") as err:
        await connector(sim, http, documents=documents).submit(d, SUBMIT)
    assert err.value.status == 422 and not err.value.retryable
    assert stats(sim)["documents_refused"] == 1 and "accepted" not in stats(sim)


async def test_submit_and_resubmit(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    first = await c.submit(dossier(sample(CHILD_HEALTH_CARD)), SUBMIT)
    again = await c.submit(dossier(sample(CHILD_HEALTH_CARD)), Delivery(f"{DID}:submit", attempt=2))
    assert first.agency_ref == again.agency_ref == "BHXH-0000001"
    s = stats(sim)
    assert (s["accepted"], s["duplicates"]) == (1, 1)
    accepted = sim.app[ACCEPTED]
    assert list(accepted) == [f"{DID}:submit"]


async def test_unmappable_dossier_is_rejected_without_a_call(sim: TestServer, http: aiohttp.ClientSession) -> None:
    sub = sample(CHILD_HEALTH_CARD)
    child = {k: v for k, v in sub["form"]["child"].items() if k != "personal_id"}
    sub = {**sub, "form": {**sub["form"], "child": child}}
    with pytest.raises(AgencyRejected, match=r"social insurance: cannot map dossier .*child_personal_id") as err:
        await connector(sim, http).submit(dossier(sub), SUBMIT)
    assert not err.value.retryable
    assert stats(sim).get("requests", 0) == 0


# -- OAuth2 ------------------------------------------------------------------------------------------


async def test_one_token_for_many_calls(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    for i in range(5):
        await c.submit(dossier(sample(FUNERAL_ALLOWANCE)), Delivery(f"{DID}:submit-{i}", attempt=1))
    await asyncio.gather(*(c.lookup(LOOKUP, query()) for _ in range(10)))
    s = stats(sim)
    assert (s["tokens_issued"], s["accepted"], s["lookups"]) == (1, 5, 10)
    assert s.get("tokens_refused", 0) == 0


async def test_concurrent_first_calls_share_one_token_request(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, latency_ms=50)
    c = connector(sim, http)
    await asyncio.gather(*(c.lookup(LOOKUP, query()) for _ in range(20)))
    assert stats(sim)["tokens_issued"] == 1


async def test_token_renewed_before_it_expires(make_sim: SimFactory, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(token_ttl=2)
    c = connector(sim, http)
    await c.lookup(LOOKUP, query())
    first = c.tokens._token
    await asyncio.sleep(1.85)  # past the refresh point (1.8 s), before the agency expires it (2 s)
    await c.lookup(LOOKUP, query())
    assert c.tokens._token is not first
    s = stats(sim)
    assert (s["tokens_issued"], s.get("tokens_refused", 0)) == (2, 0)


async def test_tokens_expiring_mid_run_fail_no_call(make_sim: SimFactory, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(token_ttl=1)
    c = connector(sim, http, ratio=0.3)  # 0.3 s of slack for a call in flight on a busy test machine
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < 2.6:
        # Two deliveries at once, so renewals also happen with calls in flight.
        await asyncio.gather(
            c.lookup(LOOKUP, query()),
            c.submit(dossier(sample(CHILD_HEALTH_CARD)), Delivery(f"{DID}:submit-{calls}", attempt=1)),
        )
        calls += 1
        await asyncio.sleep(0.05)
    s = stats(sim)
    assert s["tokens_issued"] >= 3
    assert s.get("tokens_refused", 0) == 0  # renewed before expiry: the agency never saw a stale token
    assert (s["lookups"], s["accepted"]) == (calls, calls)


async def test_revoked_token_is_replaced_and_the_call_retried_once(
    sim: TestServer, http: aiohttp.ClientSession
) -> None:
    c = connector(sim, http)
    await c.lookup(LOOKUP, query())
    async with http.post(str(sim.make_url("/_sim/revoke-tokens"))) as resp:
        assert await resp.json() == {"revoked": 1}
    ref = await c.submit(dossier(sample(CHILD_HEALTH_CARD)), SUBMIT)
    assert ref.agency_ref == "BHXH-0000001"
    s = stats(sim)
    assert (s["tokens_issued"], s["tokens_refused"], s["accepted"]) == (2, 1, 1)


async def test_second_401_is_a_rejection_not_a_loop(make_sim: SimFactory, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(token_ttl=0)  # every token is dead on arrival
    with pytest.raises(AgencyRejected) as err:
        await connector(sim, http).lookup(LOOKUP, query())
    assert (err.value.status, err.value.retryable) == (401, False)
    s = stats(sim)
    assert (s["tokens_issued"], s["tokens_refused"]) == (2, 2)


async def test_wrong_client_secret(sim: TestServer, http: aiohttp.ClientSession) -> None:
    with pytest.raises(AgencyRejected, match="refused the client credentials") as err:
        await connector(sim, http, secret="not-the-secret-the-agency-issued").submit(
            dossier(sample(CHILD_HEALTH_CARD)), SUBMIT
        )
    assert err.value.status == 401
    assert (stats(sim)["tokens_denied"], stats(sim).get("accepted", 0)) == (1, 0)


# -- faults ------------------------------------------------------------------------------------------


async def test_agency_down(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, down=True)
    with pytest.raises(AgencyUnavailable) as err:
        await connector(sim, http).submit(dossier(sample(CHILD_HEALTH_CARD)), SUBMIT)
    assert (err.value.status, err.value.agency, err.value.retryable) == (503, "social_insurance", True)


async def test_server_error_after_the_token(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    await c.lookup(LOOKUP, query())
    faults(sim, error_rate=1.0)
    with pytest.raises(AgencyUnavailable) as err:
        await c.submit(dossier(sample(CHILD_HEALTH_CARD)), SUBMIT)
    assert err.value.status == 500


@pytest.mark.parametrize("token_first", [False, True])
async def test_garbled_answers(sim: TestServer, http: aiohttp.ClientSession, token_first: bool) -> None:
    c = connector(sim, http)
    if token_first:
        await c.lookup(LOOKUP, query())
    faults(sim, malformed_rate=1.0)  # the token answer or the claim answer is cut short
    with pytest.raises(MalformedAnswer) as err:
        await c.submit(dossier(sample(CHILD_HEALTH_CARD)), SUBMIT)
    assert err.value.retryable


async def test_slow_agency_times_out(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, latency_ms=800)
    with pytest.raises(AgencyTimeout):
        await connector(sim, http, timeout=0.2).lookup(LOOKUP, query())


async def test_check(sim: TestServer, http: aiohttp.ClientSession) -> None:
    ok = await connector(sim, http).check()
    assert ok.ok
    bad = await connector(sim, http, secret="not-the-secret-the-agency-issued").check()
    assert not bad.ok
    assert bad.detail.startswith("token: ")
    faults(sim, down=True)
    assert not (await connector(sim, http).check()).ok


# -- look-ups ----------------------------------------------------------------------------------------


async def test_insurance_number_lookup(sim: TestServer, http: aiohttp.ClientSession) -> None:
    c = connector(sim, http)
    answer = await c.lookup(LOOKUP, query())
    assert answer.model_dump() == {
        "found": True,
        "social_insurance_number": insurance_number(KNOWN.personal_id),
        "full_name": KNOWN.full_name,
        "date_of_birth": KNOWN.date_of_birth,
        "gender": KNOWN.gender,
    }
    missing = await c.lookup(LOOKUP, query("001090000001"))
    assert missing.model_dump()["found"] is False
    with pytest.raises(NotFound, match="has no look-up 'identity-verification'"):
        await c.lookup("identity-verification", query())


# -- webhooks ----------------------------------------------------------------------------------------


def signed(body: bytes, path: str = CALLBACK_PATH, secret: str = SECRET) -> dict[str, str]:
    return dict(HmacSigner(CLIENT_ID, secret)("POST", path, body))


async def test_signed_callback(sim: TestServer, http: aiohttp.ClientSession) -> None:
    body = orjson.dumps(CARD_EVENT)
    [update] = await connector(sim, http).handle_callback(body, signed(body))
    assert (update.status, update.outputs["bhyt_card_number"]) == (DossierStatus.FINISHED, "TE1010112345678")


async def test_separate_callback_secret(sim: TestServer, http: aiohttp.ClientSession) -> None:
    settings = SocialInsuranceSettings(
        url=str(sim.make_url("")), client_id=CLIENT_ID, client_secret=SECRET, callback_secret="webhook-secret-000000001"
    )
    c = SocialInsuranceConnector(ConnectorContext("social_insurance", "national", settings, http, "http://x"))
    body = orjson.dumps(CARD_EVENT)
    assert await c.handle_callback(body, signed(body, secret="webhook-secret-000000001"))
    with pytest.raises(Unauthenticated):
        await c.handle_callback(body, signed(body))


@pytest.mark.parametrize("case", ["unsigned", "other-path", "wrong-secret", "tampered"])
async def test_callback_signature_refused(sim: TestServer, http: aiohttp.ClientSession, case: str) -> None:
    body = orjson.dumps(CARD_EVENT)
    headers = {
        "unsigned": {},
        "other-path": signed(body, "/v1/callbacks/police"),
        "wrong-secret": signed(body, secret="another-secret-000000000001"),
        "tampered": signed(body.replace(b"TE1010112345678", b"TE1010199999999")),
    }[case]
    with pytest.raises(Unauthenticated, match="social insurance callback signature rejected"):
        await connector(sim, http).handle_callback(body, headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"<xml/>", "not JSON"), (orjson.dumps({**CARD_EVENT, "trangThai": "DA_HUY"}), "DA_HUY")],
)
async def test_unreadable_callback(sim: TestServer, http: aiohttp.ClientSession, body: bytes, message: str) -> None:
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


async def test_card_issued_end_to_end(
    make_sim: SimFactory, http: aiohttp.ClientSession, gateway: tuple[TestServer, asyncio.Queue[Any]]
) -> None:
    gw, got = gateway
    sim = await make_sim(delay=0.01)
    c = connector(sim, http, callback_url=str(gw.make_url(CALLBACK_PATH)))
    sub = sample(CHILD_HEALTH_CARD)
    receipt = await c.submit(dossier(sub), SUBMIT)
    headers, body = await asyncio.wait_for(got.get(), 5)
    assert headers["X-Api-Key"] == "cb-key"
    [update] = await c.handle_callback(body, headers)
    child_id = sub["form"]["child"]["personal_id"]
    number = insurance_number(child_id)
    card = "TE1" + sub["form"]["residence"]["province"] + number
    assert (update.status, update.agency_ref, update.dossier_code) == (
        DossierStatus.FINISHED,
        receipt.agency_ref,
        "000.00.01.H26-261120-0011",
    )
    assert update.outputs == {"bhyt_card_number": card, "social_insurance_number": number}
    assert update.results[0].result_code == card
    assert update.data["card_valid_from"] == sub["form"]["child"]["date_of_birth"]
    # The child is in the register now.
    answer = await c.lookup(LOOKUP, query(child_id))
    assert answer.model_dump()["social_insurance_number"] == number


async def test_funeral_for_an_unknown_person_is_stopped(
    make_sim: SimFactory, http: aiohttp.ClientSession, gateway: tuple[TestServer, asyncio.Queue[Any]]
) -> None:
    gw, got = gateway
    sim = await make_sim(delay=0.01)
    c = connector(sim, http, callback_url=str(gw.make_url(CALLBACK_PATH)))
    sub = sample(FUNERAL_ALLOWANCE)
    unknown = {**sub, "form": {**sub["form"], "deceased_personal_id": "001090000001"}}
    await c.submit(dossier(sub), SUBMIT)
    await c.submit(dossier(unknown), Delivery(f"{DID}:submit-2", attempt=1))
    updates = {}
    for _ in range(2):
        headers, body = await asyncio.wait_for(got.get(), 5)
        [u] = await c.handle_callback(body, headers)
        updates[u.agency_ref] = u
    paid, refused = updates["BHXH-0000001"], updates["BHXH-0000002"]
    assert (paid.status, paid.data["allowance_vnd"]) == (DossierStatus.FINISHED, 23_400_000)
    assert paid.results[0].name == "Quyết định hưởng trợ cấp mai táng"
    assert (refused.status, refused.results) == (DossierStatus.STOPPED, [])
