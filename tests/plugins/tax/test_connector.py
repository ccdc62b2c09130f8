"""TaxConnector against the tax simulator over loopback: declare, look up, poll payments, failures mapped."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from contracts import Dossier, DossierStatus
from contracts.dossier import TRUSTED
from gateway.connector import AgencyUpdate, Delivery, PollOutcome
from gateway.connector_state import MemoryConnectorState
from gateway.documents import FilesystemDocumentStore
from gateway.errors import (
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    MalformedAnswer,
    NotFound,
    is_retryable,
)
from gateway.sdk.simulation import FAULTS, STATS, Faults
from plugins.tax.connector import TaxConnector
from plugins.tax.forms import NoticeAnswer, NoticeQuery, TaxpayerAnswer, TaxpayerQuery
from plugins.tax.simulator import LEDGER, SETTINGS
from tests.plugins.documents import documents, stored, tamper
from tests.plugins.tax.conftest import CODE, DID, HEX, YY, ConnectorFactory, make_dossier

__all__ = ["documents"]  # the fixture, used below

SUBMIT = Delivery(f"{DID}:submit", attempt=1)


def faults(sim: TestServer, **kw: Any) -> None:
    sim.app[FAULTS].faults = Faults(**kw)


async def started(make: ConnectorFactory, **kw: Any) -> TaxConnector:
    c = make(**kw)
    await c.start()
    return c


async def poll(c: TaxConnector) -> list[AgencyUpdate]:
    """One poll as the dispatcher makes it: every update applied, then acknowledged."""
    updates = await c.poll()
    await c.acknowledge(PollOutcome(frozenset(u.event_id for u in updates)))
    return updates


async def test_submit_answers_with_the_notices(connector: ConnectorFactory, sub: dict[str, Any]) -> None:
    c = await started(connector)
    receipt = await c.submit(make_dossier(sub), SUBMIT)
    [update] = receipt.updates
    price = sub["form"]["declared_price_vnd"]
    amounts = {n["kind"]: n["amount_vnd"] for n in update.data["notices"]}
    assert amounts == {"registration_fee": round(price * 0.005), "personal_income_tax": round(price * 0.02)}
    assert update.status is DossierStatus.FINANCIAL_OBLIGATION
    assert (update.dossier_code, update.agency_ref, receipt.agency_ref) == (CODE, f"TK-{YY}-000001", f"TK-{YY}-000001")
    assert update.event_id == f"TK-{YY}-000001-notices"
    assert update.outputs == {
        "notice_numbers": [n["notice_number"] for n in update.data["notices"]],
        "total_vnd": sum(amounts.values()),
    }
    assert update.data["tax_office"]["code"] == "T" + sub["form"]["parcel"]["province"]
    assert update.data["tax_office"]["name"].startswith("Thuế ")


async def kept(documents: FilesystemDocumentStore, sub: dict[str, Any]) -> Dossier:
    d = make_dossier(sub)
    submission = await stored(documents, d.submission.model_dump(mode="json"))
    return Dossier.model_validate({**d.model_dump(mode="json"), "submission": submission}, context={TRUSTED: True})


async def test_documents_go_as_base64_elements_from_the_store(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any], documents: FilesystemDocumentStore
) -> None:
    d = await kept(documents, sub)
    assert all(a.content_base64 is None for a in d.submission.attachments)
    await (await started(connector, documents=documents)).submit(d, SUBMIT)
    assert (sim.app[STATS]["declarations"], sim.app[STATS]["documents_ok"]) == (1, 1)


async def test_a_damaged_document_is_refused_for_good(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any], documents: FilesystemDocumentStore
) -> None:
    d = await kept(documents, sub)
    contract = d.submission.attachments[-1]
    assert contract.sha256 is not None and contract.size is not None
    await tamper(documents, contract.sha256, b"%PDF-" + b"0" * (contract.size - 5))
    with pytest.raises(AgencyRejected, match="sha256 is not the declared one") as err:
        await (await started(connector, documents=documents)).submit(d, SUBMIT)
    assert not is_retryable(err.value)
    assert sim.app[STATS]["documents_refused"] == 1 and "declarations" not in sim.app[STATS]


async def test_resubmitting_gets_the_same_notices(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]
) -> None:
    c = await started(connector)
    first = await c.submit(make_dossier(sub), SUBMIT)
    again = await c.submit(make_dossier(sub), Delivery(f"{DID}:submit", attempt=2))
    assert first == again
    assert (sim.app[STATS]["declarations"], sim.app[STATS]["duplicates"]) == (1, 1)
    assert list(sim.app[LEDGER].declarations) == [f"{HEX}-submit"]


async def test_unmappable_dossier_is_rejected_before_any_call(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]
) -> None:
    form = {**sub["form"], "transferee": sub["form"]["transferor"]}
    with pytest.raises(AgencyRejected) as err:
        await (await started(connector)).submit(make_dossier({**sub, "form": form}), SUBMIT)
    assert err.value.message == (
        f"tax: cannot map dossier {CODE}: form: Value error, the transferor and the transferee are the same person"
    )
    assert not is_retryable(err.value)
    assert sim.app[STATS]["requests"] == 0


async def test_client_fault_is_not_retried(connector: ConnectorFactory, sub: dict[str, Any]) -> None:
    c = await started(connector)
    await c.submit(make_dossier(sub), SUBMIT)
    other = Delivery("0b5c8f7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f:submit", attempt=1)
    with pytest.raises(AgencyRejected) as err:
        await c.submit(make_dossier(sub), other)  # the same dossier code under another request id
    assert (err.value.code, err.value.status, err.value.agency) == ("Client.DossierAlreadyDeclared", 500, "tax")
    assert not is_retryable(err.value)


async def test_server_fault_is_retried(connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]) -> None:
    sim.app[SETTINGS].server_fault_rate = 1.0
    with pytest.raises(AgencyUnavailable) as err:
        await (await started(connector)).submit(make_dossier(sub), SUBMIT)
    assert err.value.code == "Server.ServiceUnavailable"
    assert is_retryable(err.value)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"down": True}, AgencyUnavailable),
        ({"error_rate": 1.0}, AgencyUnavailable),
        ({"malformed_rate": 1.0}, MalformedAnswer),
        ({"latency_ms": 800}, AgencyTimeout),
    ],
)
async def test_transport_failures_are_retryable(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any], fault: dict[str, Any], error: type[Exception]
) -> None:
    c = await started(connector, timeout=0.3)
    faults(sim, **fault)
    with pytest.raises(error) as err:
        await c.submit(make_dossier(sub), SUBMIT)
    assert is_retryable(err.value)


async def test_taxpayer_lookup(connector: ConnectorFactory, sub: dict[str, Any]) -> None:
    c = await started(connector)
    seller = sub["form"]["transferor"]
    found = await c.lookup("taxpayer", TaxpayerQuery(personal_id=seller["personal_id"]))
    assert isinstance(found, TaxpayerAnswer)
    assert (found.found, found.name, found.kind, found.tax_code) == (
        True,
        seller["full_name"],
        "individual",
        seller["personal_id"],
    )
    assert await c.lookup("taxpayer", TaxpayerQuery(tax_code="0100000001")) == TaxpayerAnswer(found=False)
    with pytest.raises(NotFound, match="agency 'tax' has no look-up 'land-parcel'"):
        await c.lookup("land-parcel", TaxpayerQuery(tax_code="0100000001"))


async def test_notice_lookup(connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]) -> None:
    c = await started(connector)
    [update] = (await c.submit(make_dossier(sub), SUBMIT)).updates
    number = update.outputs["notice_numbers"][0]
    unpaid = await c.lookup("tax-notice", NoticeQuery(notice_number=number))
    assert isinstance(unpaid, NoticeAnswer)
    assert (unpaid.found, unpaid.status, unpaid.dossier_code, unpaid.receipt_number) == (True, "unpaid", CODE, None)
    sim.app[LEDGER].pay(number)
    paid = await c.lookup("tax-notice", NoticeQuery(notice_number=number))
    assert isinstance(paid, NoticeAnswer)
    assert paid.status == "paid" and paid.receipt_number and paid.paid_date
    missing = await c.lookup("tax-notice", NoticeQuery(notice_number="LPTB-26-9999999"))
    assert missing == NoticeAnswer(found=False, notice_number="LPTB-26-9999999")


async def test_poll_finishes_a_dossier_once_every_notice_is_paid(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]
) -> None:
    c = await started(connector)
    [update] = (await c.submit(make_dossier(sub), SUBMIT)).updates
    first, second = update.outputs["notice_numbers"]
    assert await poll(c) == []
    sim.app[LEDGER].pay(first)
    assert await poll(c) == []  # one of two paid: still status 6
    sim.app[LEDGER].pay(second)
    [done] = await poll(c)
    assert (done.status, done.dossier_code, done.event_id) == (DossierStatus.FINISHED, CODE, f"TK-{YY}-000001-SETTLED")
    receipts = done.outputs["tax_receipts"]
    assert [r["notice_number"] for r in receipts] == [first, second]
    assert sum(r["amount_vnd"] for r in receipts) == update.outputs["total_vnd"]
    [doc] = done.results
    assert (doc.component_code, doc.media_type, doc.result_code) == ("KQ_NVTC", "application/pdf", f"XN-TK-{YY}-000001")
    assert c.cursor == 3  # PAID, PAID, SETTLED
    assert await poll(c) == []


async def test_poll_pages_and_resumes_after_a_restart(
    connector: ConnectorFactory, sim: TestServer, subs: list[dict[str, Any]]
) -> None:
    state = MemoryConnectorState()  # what the gateway's store keeps for the connector
    c = await started(connector, poll_batch=2, state=state)
    for i, s in enumerate(subs[:3]):
        code = f"000.00.01.H26-261120-{i + 1:04d}"
        await c.submit(make_dossier(s, code=code), Delivery(f"{DID}:submit-{i}", attempt=1))
        sim.app[LEDGER].pay_dossier(code)
    updates = await poll(c)
    assert [u.dossier_code for u in updates] == [f"000.00.01.H26-261120-{i:04d}" for i in (1, 2, 3)]
    assert c.cursor == len(sim.app[LEDGER].events) == await state.get("event_cursor")
    # A new process with the same store: it resumes after the cursor instead of reading the log from 0.
    restarted = await started(connector, poll_batch=2, state=state)
    assert restarted.cursor == c.cursor
    assert await restarted.poll() == []
    code = "000.00.01.H26-261120-0004"
    await restarted.submit(make_dossier(subs[3], code=code), Delivery(f"{DID}:submit-3", attempt=1))
    sim.app[LEDGER].pay_dossier(code)
    assert [u.dossier_code for u in await poll(restarted)] == [code]


async def _settled_once(connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]) -> TaxConnector:
    c = await started(connector)
    await c.submit(make_dossier(sub), SUBMIT)
    sim.app[LEDGER].pay_dossier(CODE)
    [update] = await poll(c)
    assert update.status is DossierStatus.FINISHED and c.cursor == 3
    return c


@pytest.mark.parametrize("fault", ["empty-202", "garbled-sequence", "stale-sequence"])
async def test_a_wrong_answer_never_moves_the_cursor_back(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any], fault: str
) -> None:
    c = await _settled_once(connector, sim, sub)
    sim.app[SETTINGS].updates_fault = fault  # type: ignore[assignment]
    with capture_logs() as logs:
        if fault == "stale-sequence":  # schema-valid, but behind the cursor: the connector's own guard
            assert await poll(c) == []
        else:  # refused by the SOAP adapter (no answer to an operation with an output; not an xs:long):
            # raised as a transient failure, which the dispatcher's breaker hears of
            with pytest.raises(MalformedAnswer):
                await c.poll()
    assert c.cursor == 3 and await c.ctx.state.get("event_cursor") == 3  # it used to go back to 0
    assert sim.app[STATS][f"updates_{fault}"] == 1
    if fault == "stale-sequence":
        [logged] = [e for e in logs if e["event"] == "poll_answer_unusable"]
        assert logged["last_sequence"] == "0"
    sim.app[SETTINGS].updates_fault = "none"
    await c.submit(make_dossier(sub, code="000.00.01.H26-261120-0008"), Delivery(f"{DID}:other", attempt=1))
    sim.app[LEDGER].pay_dossier("000.00.01.H26-261120-0008")
    assert [u.dossier_code for u in await poll(c)] == ["000.00.01.H26-261120-0008"]  # and on it goes
    assert c.cursor == 6


async def test_a_cursor_the_store_could_not_keep_is_read_again(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]
) -> None:
    class Failing(MemoryConnectorState):
        async def put(self, key: str, value: Any) -> None:
            raise OSError("disk full")

    c = await started(connector, state=Failing())
    await c.submit(make_dossier(sub), SUBMIT)
    sim.app[LEDGER].pay_dossier(CODE)
    [update] = await c.poll()
    with pytest.raises(OSError, match="disk full"):
        await c.acknowledge(PollOutcome(frozenset({update.event_id})))
    assert c.cursor == 0  # not moved in memory either: the next poll reads the same events
    assert [u.event_id for u in await c.poll()] == [update.event_id]


async def test_the_cursor_never_passes_an_update_the_store_did_not_take(
    connector: ConnectorFactory, sim: TestServer, subs: list[dict[str, Any]]
) -> None:
    c = await started(connector)
    codes = [f"000.00.01.H26-261120-{i + 1:04d}" for i in range(3)]
    for i, (s, code) in enumerate(zip(subs, codes, strict=False)):
        await c.submit(make_dossier(s, code=code), Delivery(f"{DID}:submit-{i}", attempt=1))
        sim.app[LEDGER].pay_dossier(code)
    first = await c.poll()
    assert [u.dossier_code for u in first] == codes
    assert c.cursor == 0  # nothing acknowledged yet: a crash here re-reads everything
    # The store took the first, refused the third for good, and failed on the second for a passing reason.
    a, b, third = (u.event_id for u in first)
    await c.acknowledge(PollOutcome(frozenset({a}), {third: "unknown-dossier"}))
    again = await c.poll()
    assert [u.event_id for u in again] == [b, third]  # from the failed one on; the refused one is harmless
    await c.acknowledge(PollOutcome(frozenset({b}), {third: "unknown-dossier"}))
    assert await poll(c) == []
    assert c.cursor == len(sim.app[LEDGER].events)


async def test_a_poll_without_acknowledgement_is_read_again(
    connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]
) -> None:
    c = await started(connector)
    await c.submit(make_dossier(sub), SUBMIT)
    sim.app[LEDGER].pay_dossier(CODE)
    [update] = await c.poll()
    assert [u.event_id for u in await c.poll()] == [update.event_id]  # the dispatcher died before acknowledging
    await c.acknowledge(PollOutcome())  # nothing settled: the store was down
    assert [u.event_id for u in await poll(c)] == [update.event_id]
    assert await poll(c) == []


async def test_poll_survives_an_outage(connector: ConnectorFactory, sim: TestServer, sub: dict[str, Any]) -> None:
    c = await started(connector)
    await c.submit(make_dossier(sub), SUBMIT)
    sim.app[LEDGER].pay_dossier(CODE)
    faults(sim, down=True)
    with pytest.raises(AgencyUnavailable):  # raised, so that the dispatcher's breaker learns of the outage
        await poll(c)
    assert c.cursor == 0
    faults(sim)
    assert [u.status for u in await poll(c)] == [DossierStatus.FINISHED]


async def test_check(connector: ConnectorFactory, sim: TestServer) -> None:
    c = await started(connector)
    ok = await c.check()
    assert (ok.ok, ok.detail, ok.extra) == (True, "HTTP 405", {"soap_version": "1.1"})
    faults(sim, down=True)
    assert not (await c.check()).ok
