"""The fault table, code by code: SOAP 1.1/1.2, X-Road 6/7 and X-Road 8 spellings, an agency's own codes;
then an X-Road refusal through the dispatcher and the store, dead-lettered at once."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from adapters.soap import SoapTransport
from adapters.soap.fault_classes import PERMANENT, TRANSIENT, XROAD_CODES, FaultTable, segments
from adapters.soap.faults import SOAP11_ENV, fault_error, find_fault
from adapters.xml import UrlMap
from contracts import Dossier
from gateway.config.model import DispatcherSettings
from gateway.connector import Delivery, SubmitReceipt
from gateway.dispatcher import Dispatcher
from gateway.errors import AgencyRejected, AgencyUnavailable, is_retryable
from gateway.store import SqliteStore
from gateway.store.base import NewDossier
from plugins.police.demo import demo_dossiers
from tests.adapters.soap.conftest import RawFactory

TABLE = FaultTable()


def snake(code: str) -> str:
    """X-Road 8 spells "AccessDenied" "access_denied" (ErrorCode.java after XRDDEV-2962)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", code).lower()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("Server", TRANSIENT),
        ("Client", PERMANENT),
        ("VersionMismatch", PERMANENT),
        ("MustUnderstand", PERMANENT),
        ("Server.Db.Timeout", TRANSIENT),  # a SOAP 1.1 Server fault with the provider's own subcode
        ("Client.InvalidDossierId", PERMANENT),
        ("Receiver", TRANSIENT),
        ("Sender", PERMANENT),
        ("DataEncodingUnknown", PERMANENT),
        ("Receiver.Overloaded", TRANSIENT),
        ("Sender.InvalidDossierId", PERMANENT),
        ("FOOCODE", PERMANENT),  # a code nobody told us about
        ("", PERMANENT),
    ],
)
def test_soap_codes(code: str, expected: str) -> None:
    assert TABLE.classify(code) == expected


@pytest.mark.parametrize("component", ["ServerProxy", "ClientProxy"])
@pytest.mark.parametrize("name", sorted(XROAD_CODES))
def test_every_xroad_code_in_both_spellings(component: str, name: str) -> None:
    expected = XROAD_CODES[name]
    old = f"Server.{component}.{name}"  # X-Road 6 and 7
    new = f"server.{component.lower()}.{snake(name)}"  # X-Road 8
    assert TABLE.classify(old) == expected, old
    assert TABLE.classify(new) == expected, new
    assert segments(old) == segments(new)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # The permanent refusals the issue saw retried until dead-lettered.
        ("Server.ServerProxy.AccessDenied", PERMANENT),
        ("Server.ServerProxy.UnknownService", PERMANENT),
        ("Server.ServerProxy.ServiceDisabled", PERMANENT),
        ("Server.ClientProxy.UnknownMember", PERMANENT),
        ("Server.ClientProxy.ServiceFailed.MissingBody", PERMANENT),  # message protocol 4.0, annex D
        ("server.serverproxy.access_denied", PERMANENT),
        ("server.clientproxy.service_failed.missing_body", PERMANENT),
        # The security servers' and the provider's own trouble.
        ("Server.ServerProxy.ServiceFailed", TRANSIENT),
        ("Server.ServerProxy.ServiceFailed.HttpError", TRANSIENT),
        ("Server.ServerProxy.NetworkError", TRANSIENT),
        ("Server.ClientProxy.OutdatedGlobalConf", TRANSIENT),
        ("Server.ServerProxy.OpMonitor.InvalidClientIdentifier", PERMANENT),
        ("Server.ClientProxy.Signer.TokenNotActive", TRANSIENT),
        ("Signer.TokenNotActive", TRANSIENT),
        ("Server.ServerProxy.SomethingNew", TRANSIENT),  # unknown, but the security server's
        # X-Road's Client prefix: the client information system sent it wrong.
        ("Client.InvalidSoap", PERMANENT),
        ("client.bad_request", PERMANENT),
        ("Client.InternalError", PERMANENT),
    ],
)
def test_xroad_codes(code: str, expected: str) -> None:
    assert TABLE.classify(code) == expected


def test_an_agencys_own_codes_win_longest_prefix_first() -> None:
    table = FaultTable(
        {
            "Server.TaxService": "permanent",
            "Server.TaxService.Busy": "transient",
            "Client.RateLimited": "transient",
            "server.serverproxy.service_failed": "permanent",
        }
    )
    assert table.classify("Server.TaxService.DuplicateRequest") == PERMANENT
    assert table.classify("Server.TaxService.Busy.Queue") == TRANSIENT
    assert table.classify("client.rate_limited") == TRANSIENT
    assert table.classify("Server.ServerProxy.ServiceFailed.HttpError") == PERMANENT
    assert table.classify("Server.Other") == TRANSIENT  # the built-in table for the rest
    with pytest.raises(ValueError, match="'transient' or 'permanent'"):
        FaultTable({"Server.X": "maybe"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="empty fault code"):
        FaultTable({" ": "permanent"})


def test_fault_error_uses_the_table_given() -> None:
    fault = find_fault(etree.fromstring(_xroad_fault("Server.ServerProxy.AccessDenied")))
    assert fault is not None
    refused = fault_error(fault, agency="x", status=500)
    assert isinstance(refused, AgencyRejected) and not is_retryable(refused)
    assert refused.code == "Server.ServerProxy.AccessDenied"
    retried = fault_error(fault, agency="x", status=500, table=FaultTable({"Server.ServerProxy": "transient"}))
    assert isinstance(retried, AgencyUnavailable) and is_retryable(retried)


def _xroad_fault(code: str) -> bytes:
    """A security server's Fault, as in the X-Road message protocol 4.0, annex D.1."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP11_ENV}"><SOAP-ENV:Body>'
        f"<SOAP-ENV:Fault><faultcode>{code}</faultcode><faultstring>Request is not allowed: SERVICE:VN/GOV/"
        f'000456/registry/getRandom</faultstring><faultactor></faultactor><detail><faultDetail xmlns="">'
        f"f31e7451-f0ac-48f6-9f05-1f0459e48eea</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body>"
        f"</SOAP-ENV:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("Server.ServerProxy.AccessDenied", AgencyRejected),
        ("server.serverproxy.access_denied", AgencyRejected),
        ("Server.ServerProxy.ServiceFailed.NetworkError", AgencyUnavailable),
    ],
)
async def test_xroad_faults_over_http(
    raw_server: RawFactory,
    session: aiohttp.ClientSession,
    xroad_wsdl: Path,
    xroad_map: UrlMap,
    code: str,
    expected: type[Exception],
) -> None:
    url = await raw_server(_xroad_fault(code), status=500)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(expected) as info:
        await client.call("getRandom", amount=1)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert code in str(info.value)


class XRoadConnector:
    """The least a connector does: one X-Road call per delivery."""

    def __init__(self, transport: SoapTransport) -> None:
        self.transport = transport
        self.calls = 0

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        self.calls += 1
        await self.transport.call("getRandom", amount=1)
        return SubmitReceipt()


async def test_access_denied_is_dead_lettered_at_once_with_its_code(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, tmp_path: Path
) -> None:
    url = await raw_server(_xroad_fault("Server.ServerProxy.AccessDenied"), status=500)
    store = SqliteStore(tmp_path / "gw.db")
    await store.open()
    try:
        sub: dict[str, Any] = demo_dossiers(42, 1)[0]
        received = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        await store.create_dossier(
            NewDossier(
                id=uuid.uuid4(),
                receiving_unit="000.00.01.H26",
                day=date(2026, 11, 20),
                procedure_code=sub["procedure_code"],
                procedure_name="Đăng ký cư trú",
                client_id="centre-hanoi",
                agency="registry",
                endpoint="xroad",
                received_at=received,
                due_at=received + timedelta(days=5),
                submission=sub,
                idempotency_key=None,
                body_hash="0" * 64,
            )
        )
        connector = XRoadConnector(
            SoapTransport(session, xroad_wsdl, agency="registry", url_map=xroad_map, address=url)
        )
        settings = DispatcherSettings(base_delay=0.01, max_delay=0.02, jitter=0, poll_interval=0.05)
        dispatcher = Dispatcher(store, {("registry", "xroad"): connector}, {"registry": 1}, settings)  # type: ignore[dict-item]
        task = asyncio.create_task(dispatcher.run())
        try:
            async with asyncio.timeout(10):
                while not await store.jobs("dead"):  # noqa: ASYNC110 - the store has no event to wait on
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # had it been retried, more calls would come in this time
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await dispatcher.drain()
        [dead] = await store.jobs("dead")
        assert (dead.attempts, connector.calls) == (1, 1)
        assert dead.last_error is not None
        assert dead.last_error.startswith("AgencyRejected: registry: SOAP 1.1 fault Server.ServerProxy.AccessDenied")
    finally:
        await store.close()
