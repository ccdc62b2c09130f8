"""PoliceConnector against the police simulator over loopback: submit, look-up, callbacks, failures mapped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from adapters.signing import HmacSigner
from contracts import Dossier, DossierStatus
from gateway.connector import ConnectorContext, Delivery
from gateway.documents import FilesystemDocumentStore
from gateway.errors import (
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    PermanentAgencyError,
    Unauthenticated,
)
from gateway.sdk.simulation import FAULTS, STATS, Faults, SimulatorOptions
from plugins.police.connector import PoliceConnector
from plugins.police.demo import demo_dossiers
from plugins.police.forms import IdentityAnswer, IdentityQuery
from plugins.police.settings import PoliceSettings
from plugins.police.simulator import ACCEPTED, DOCUMENTS, KEY_ID, WAITING, WITHDRAWN, create_simulator
from tests.plugins.documents import documents, stored, tamper
from tests.plugins.police.test_removal import PERSON, removal_submission
from tests.plugins.police.test_wire import DID, HEX, dossier

__all__ = ["documents"]  # the fixture, used below

SECRET = "connector-test-secret-00000001"
CALLBACK = "http://127.0.0.1:9/v1/callbacks/police"


@pytest.fixture
async def sim(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    options = SimulatorOptions(secret=SECRET, processing_delay=3600, faults=Faults())
    return await aiohttp_server(create_simulator(options))


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
    documents: FilesystemDocumentStore | None = None,
    **more: Any,
) -> PoliceConnector:
    settings = PoliceSettings(url=str(sim.make_url("")), timeout=timeout, key_id=KEY_ID, secret=secret, **more)
    ctx = ConnectorContext(
        agency="police", endpoint="national", settings=settings, http=http, callback_url=CALLBACK, documents=documents
    )
    return PoliceConnector(ctx)


def faults(sim: TestServer, **kw: Any) -> None:
    sim.app[FAULTS].faults = Faults(**kw)


@pytest.fixture(scope="module")
def sub() -> dict[str, Any]:
    return demo_dossiers(42, 1)[0]


SUBMIT = Delivery(f"{DID}:submit", attempt=1)


async def test_submit_and_resubmit(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    c = connector(sim, http)
    first = await c.submit(dossier(sub), SUBMIT)
    again = await c.submit(dossier(sub), Delivery(f"{DID}:submit", attempt=2))
    assert first.agency_ref == again.agency_ref == "CA-0000001"
    assert (sim.app[STATS]["accepted"], sim.app[STATS]["duplicates"]) == (1, 1)
    accepted = sim.app[ACCEPTED]
    assert list(accepted) == [f"{HEX}-submit"]


async def test_documents_are_read_from_the_store_and_arrive_whole(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any], documents: FilesystemDocumentStore
) -> None:
    kept = await stored(documents, sub)
    assert "content_base64" not in kept["attachments"][0]
    await connector(sim, http, documents=documents).submit(dossier(kept), SUBMIT)
    assert sim.app[STATS]["documents_ok"] == 1
    att = sub["attachments"][0]
    assert sim.app[DOCUMENTS][dossier(kept).code] == [
        {"maThanhPhan": "TK01", "loaiTep": "application/pdf", "kichThuoc": att["size"], "sha256": att["sha256"]}
    ]


async def test_a_document_missing_from_the_store_fails_the_delivery_for_good(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any], documents: FilesystemDocumentStore
) -> None:
    kept = {**sub, "attachments": [{k: v for k, v in sub["attachments"][0].items() if k != "content_base64"}]}
    with pytest.raises(PermanentAgencyError, match="is not in the gateway's document store"):
        await connector(sim, http, documents=documents).submit(dossier(kept), SUBMIT)
    assert sim.app[STATS]["requests"] == 0


async def test_a_damaged_document_is_refused_by_the_agency(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any], documents: FilesystemDocumentStore
) -> None:
    kept = await stored(documents, sub)
    await tamper(documents, sub["attachments"][0]["sha256"], b"%PDF-1.4 not the declaration")
    with pytest.raises(AgencyRejected, match=r"TK01 .*: declared \d+ bytes, received 28") as err:
        await connector(sim, http, documents=documents).submit(dossier(kept), SUBMIT)
    assert err.value.status == 422 and not err.value.retryable
    assert sim.app[STATS]["documents_refused"] == 1


async def test_unmappable_dossier_is_rejected(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]
) -> None:
    org = {"kind": "organisation", "name": "Công ty TNHH Thử", "tax_code": "0101234567"}
    with pytest.raises(AgencyRejected, match=r"police: cannot map dossier 000\.00\.01\.H26-261120-0007") as err:
        await connector(sim, http).submit(dossier({**sub, "applicant": org}), SUBMIT)
    assert not err.value.retryable
    assert sim.app[STATS]["requests"] == 0


async def test_agency_down(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    faults(sim, down=True)
    with pytest.raises(AgencyUnavailable) as err:
        await connector(sim, http).submit(dossier(sub), SUBMIT)
    assert (err.value.status, err.value.agency, err.value.retryable) == (503, "police", True)


async def test_garbled_answer(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    faults(sim, malformed_rate=1.0)
    with pytest.raises(MalformedAnswer) as err:
        await connector(sim, http).submit(dossier(sub), SUBMIT)
    assert err.value.retryable


async def test_wrong_secret_is_a_rejection(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    with pytest.raises(AgencyRejected) as err:
        await connector(sim, http, secret="a-secret-the-agency-never-issued").submit(dossier(sub), SUBMIT)
    assert err.value.status == 401
    assert "bad signature" in err.value.message


async def test_slow_agency_times_out(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    faults(sim, latency_ms=800)
    with pytest.raises(AgencyTimeout) as err:
        await connector(sim, http, timeout=0.2).submit(dossier(sub), SUBMIT)
    assert err.value.retryable


# -- removal of permanent residence ------------------------------------------------------------------

AFTER_DEATH = Delivery(f"{DID}:submit", attempt=1, inputs={"death_register_number": "KT-2026-000123"})


def removal(code: str) -> Dossier:
    form = {"person": PERSON, "reason": "deceased", "date_of_death": "2026-11-01"}
    return dossier({**removal_submission(form), "procedure_code": code})


def sent_as_removal(sim: TestServer, code: str) -> None:
    """The simulator took one request on its removal path (only that path keeps the death extract)."""
    [taken] = sim.app[ACCEPTED].values()
    assert taken == {
        "maTiepNhan": "CA-0000001",
        "maHoSo": "000.00.01.H26-261120-0007",
        "maTTHC": code,
        "soDinhDanh": PERSON["personal_id"],
        "soTrichLucKhaiTu": "KT-2026-000123",
    }


async def test_removal_procedure_by_default(sim: TestServer, http: aiohttp.ClientSession) -> None:
    receipt = await connector(sim, http).submit(removal("1.004206"), AFTER_DEATH)
    assert receipt.agency_ref == "CA-0000001"
    sent_as_removal(sim, "1.004206")


async def test_removal_under_a_code_the_endpoint_names(sim: TestServer, http: aiohttp.ClientSession) -> None:
    remapped = connector(sim, http, removal_procedures=("1.004299",))
    receipt = await remapped.submit(removal("1.004299"), AFTER_DEATH)
    assert receipt.agency_ref == "CA-0000001"
    sent_as_removal(sim, "1.004299")
    # The old code is now an ordinary registration, which a removal form cannot be mapped to.
    with pytest.raises(AgencyRejected, match="police: cannot map dossier"):
        await remapped.submit(removal("1.004206"), Delivery(f"{DID}:submit", attempt=2))
    assert sim.app[STATS]["requests"] == 1


async def test_identity_lookup(sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]) -> None:
    a = sub["applicant"]
    q = IdentityQuery(personal_id=a["personal_id"], full_name=a["full_name"], date_of_birth=a["date_of_birth"])
    answer = await connector(sim, http).lookup("identity-verification", q)
    assert answer == IdentityAnswer(found=True, match=True, vneid_level=2, mismatched=[])
    with pytest.raises(NotFound, match="agency 'police' has no look-up 'land-parcel'"):
        await connector(sim, http).lookup("land-parcel", q)


async def test_supplement_for_a_dossier_not_waiting(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]
) -> None:
    delivery = Delivery(f"{DID}:supplement-1", attempt=1, step="supplement-1", inputs={"note": "x", "attachments": []})
    with pytest.raises(AgencyRejected) as err:
        await connector(sim, http).supplement(dossier(sub, agency_ref="CA-0000042"), delivery)
    assert err.value.status == 422
    assert "no dossier CA-0000042 waits for a supplement" in err.value.message


async def test_withdrawal_closes_a_case_waiting_for_documents_once(
    sim: TestServer, http: aiohttp.ClientSession, sub: dict[str, Any]
) -> None:
    sim.app[WAITING]["CA-0000042"] = {"maHoSo": "000.00.01.H26-261120-0007"}
    reason = {"reason": "the documents asked for were not supplied by 15/12/2026 10:00", "items": ["CT07"]}
    delivery = Delivery(f"{DID}:withdraw", attempt=1, step="withdraw", inputs=reason)
    waiting = dossier(sub, agency_ref="CA-0000042")
    for attempt in (1, 2):  # a retried delivery is recognised by its request id
        await connector(sim, http).withdraw(waiting, Delivery(delivery.idempotency_key, attempt, "withdraw", reason))
    assert "CA-0000042" not in sim.app[WAITING]
    assert list(sim.app[WITHDRAWN].values()) == ["CA-0000042"]
    assert (sim.app[STATS]["withdrawals"], sim.app[STATS]["duplicates"]) == (1, 1)

    # Another withdrawal of a case no longer waiting is refused, and so is one without the agency's reference.
    with pytest.raises(AgencyRejected) as err:
        other = Delivery("00000000-0000-4000-8000-000000000001:withdraw", 1, "withdraw", reason)
        await connector(sim, http).withdraw(waiting, other)
    assert err.value.status == 409
    with pytest.raises(AgencyRejected, match="no police reference"):
        await connector(sim, http).withdraw(dossier(sub), delivery)
    assert sim.app[STATS]["withdrawals"] == 1


async def test_check(sim: TestServer, http: aiohttp.ClientSession) -> None:
    ok = await connector(sim, http).check()
    assert (ok.ok, ok.detail) == (True, "HTTP 200")
    assert ok.latency_ms is not None and ok.latency_ms > 0
    c = connector(sim, http)
    await sim.close()
    gone = await c.check()
    assert not gone.ok
    assert "cannot connect" in gone.detail


async def test_check_reports_a_simulated_outage(sim: TestServer, http: aiohttp.ClientSession) -> None:
    faults(sim, down=True)
    assert not (await connector(sim, http).check()).ok


# -- callbacks ---------------------------------------------------------------------------------------

EVENT = {
    "maSuKien": "CA-1-DXL",
    "maHoSo": "000.00.01.H26-261120-0007",
    "maTiepNhan": "CA-1",
    "trangThai": "DANG_XU_LY",
    "thoiGian": "20261120093000",
}


def signed(body: bytes, path: str = "/v1/callbacks/police", secret: str = SECRET) -> dict[str, str]:
    return dict(HmacSigner(KEY_ID, secret)("POST", path, body))


async def test_signed_callback(sim: TestServer, http: aiohttp.ClientSession) -> None:
    body = orjson.dumps(EVENT)
    [update] = await connector(sim, http).handle_callback(body, signed(body))
    assert (update.event_id, update.dossier_code, update.status, update.agency_ref) == (
        "CA-1-DXL",
        "000.00.01.H26-261120-0007",
        DossierStatus.PROCESSING,
        "CA-1",
    )


@pytest.mark.parametrize("case", ["unsigned", "other-path", "wrong-secret", "tampered"])
async def test_callback_signature_refused(sim: TestServer, http: aiohttp.ClientSession, case: str) -> None:
    body = orjson.dumps(EVENT)
    headers = {
        "unsigned": {},
        "other-path": signed(body, "/v1/callbacks/land"),
        "wrong-secret": signed(body, secret="another-secret-000000000001"),
        "tampered": signed(body.replace(b"DANG_XU_LY", b"HOAN_THANH")),
    }[case]
    with pytest.raises(Unauthenticated, match="police callback signature rejected"):
        await connector(sim, http).handle_callback(body, headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<xml/>", "police callback is not JSON"),
        (orjson.dumps({**EVENT, "trangThai": "DA_HUY"}), "DA_HUY"),
    ],
)
async def test_unreadable_callback(sim: TestServer, http: aiohttp.ClientSession, body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await connector(sim, http).handle_callback(body, signed(body))
