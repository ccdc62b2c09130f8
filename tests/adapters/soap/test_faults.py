"""SOAP Faults (1.1 and 1.2), HTTP errors and timeouts become the right gateway errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from adapters.soap.faults import SoapFault, fault_error, find_fault
from adapters.soap.testing import Received, StubFault, fault_envelope
from adapters.soap.transport import SoapTransport
from adapters.xml import UrlMap
from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    MalformedAnswer,
    is_retryable,
)
from tests.adapters.soap.conftest import DOSSIER_WSDL, RawFactory, StubFactory


def _raise(fault: StubFault) -> Callable[[Received], None]:
    def handler(received: Received) -> None:
        raise fault

    return handler


@pytest.mark.parametrize(
    ("port", "code", "subcode", "expected", "retryable", "error_code"),
    [
        ("DossierSoap11Port", "Server", None, AgencyUnavailable, True, "Server"),
        ("DossierSoap11Port", "Client", None, AgencyRejected, False, "Client"),
        ("DossierSoap11Port", "Server", "ServerProxy.ServiceFailed", AgencyUnavailable, True, None),
        ("DossierSoap11Port", "Client", "InvalidDossierId", AgencyRejected, False, None),
        ("DossierSoap11Port", "VersionMismatch", None, AgencyRejected, False, "VersionMismatch"),
        ("DossierSoap12Port", "Receiver", None, AgencyUnavailable, True, "Receiver"),
        ("DossierSoap12Port", "Sender", None, AgencyRejected, False, "Sender"),
        ("DossierSoap12Port", "Sender", "InvalidDossierId", AgencyRejected, False, "Sender.InvalidDossierId"),
        ("DossierSoap12Port", "MustUnderstand", None, AgencyRejected, False, "MustUnderstand"),
    ],
)
async def test_fault_mapping_over_http(
    soap_stub: StubFactory,
    port: str,
    code: str,
    subcode: str | None,
    expected: type[AgencyError],
    retryable: bool,
    error_code: str | None,
) -> None:
    fault = StubFault(code, "Hồ sơ không tồn tại", subcode=subcode)
    client, _ = await soap_stub(DOSSIER_WSDL, {"getDossierStatus": _raise(fault)}, port_name=port)
    with pytest.raises(AgencyError) as info:
        await client.call("getDossierStatus", dossierId="X")
    exc = info.value
    assert type(exc) is expected
    assert is_retryable(exc) is retryable
    assert exc.status == 500
    assert exc.agency == "test-agency"
    assert exc.code == (error_code or f"{code}.{subcode}")
    assert "Hồ sơ không tồn tại" in str(exc)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_fault_with_http_200_still_maps(
    raw_server: RawFactory, session: aiohttp.ClientSession, version: str
) -> None:
    port = "DossierSoap11Port" if version == "1.1" else "DossierSoap12Port"
    code = "Client" if version == "1.1" else "Sender"
    url = await raw_server(fault_envelope(version, code, "bad id"), status=200)
    client = SoapTransport(session, DOSSIER_WSDL, agency="a", port_name=port, address=url)
    with pytest.raises(AgencyRejected) as info:
        await client.call("getDossierStatus", dossierId="X")
    assert info.value.status == 200


@pytest.mark.parametrize(
    ("name", "expected", "code"),
    [
        ("faulty-fault.answer", AgencyUnavailable, "Server"),  # unqualified children, soap:Server
        ("customfault.answer", AgencyRejected, "FOOCODE"),  # foo:FOOCODE: not a SOAP code, not retried
        ("fault.query", AgencyRejected, "CODE"),
        ("customsoapenv.answer", AgencyUnavailable, "Server.CODE"),  # X-Road dotted Server subcode
    ],
)
async def test_realworld_xroad_faults(
    raw_server: RawFactory,
    session: aiohttp.ClientSession,
    xroad_wsdl: Path,
    xroad_map: UrlMap,
    queries: Path,
    name: str,
    expected: type[AgencyError],
    code: str | None,
) -> None:
    body = await asyncio.to_thread((queries / name).read_bytes)
    url = await raw_server(body, status=500)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(AgencyError) as info:
        await client.call("getRandom", amount=1)
    assert type(info.value) is expected
    if code:
        assert info.value.code == code


async def test_text_inside_fault_is_malformed(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, queries: Path
) -> None:
    # soapfaulterror.query: a Fault with stray text after <detail> breaks SOAP 1.1.
    body = await asyncio.to_thread((queries / "soapfaulterror.query").read_bytes)
    url = await raw_server(body, status=500)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(MalformedAnswer, match="text outside its child elements"):
        await client.call("getRandom", amount=1)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (500, b"<!DOCTYPE html><html><body>Internal error</body></html>", "text/html", AgencyUnavailable),
        (502, b"<html>Bad gateway</html>", "text/html", AgencyUnavailable),
        (503, b"", "text/plain", AgencyUnavailable),
        (500, b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "text/xml", AgencyUnavailable),
        (500, b"<ok/>", "text/xml", AgencyUnavailable),  # XML but no Fault
        (504, b"gateway timeout", "text/plain", AgencyTimeout),
        (404, b"not here", "text/plain", AgencyRejected),
        (429, b"slow down", "text/plain", AgencyUnavailable),
    ],
)
async def test_http_errors_without_fault(
    raw_server: RawFactory,
    session: aiohttp.ClientSession,
    vies_wsdl: Path,
    status: int,
    body: bytes,
    content_type: str,
    expected: type[AgencyError],
) -> None:
    url = await raw_server(body, status=status, content_type=content_type)
    client = SoapTransport(session, vies_wsdl, agency="vies", address=url)
    with pytest.raises(AgencyError) as info:
        await client.call("checkVat", countryCode="DE", vatNumber="1")
    assert type(info.value) is expected
    assert info.value.status == status


async def test_timeout_is_retryable(raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path) -> None:
    url = await raw_server(b"<late/>", delay=2.0)
    client = SoapTransport(session, vies_wsdl, agency="vies", address=url, timeout=0.2)
    with pytest.raises(AgencyTimeout) as info:
        await client.call("checkVat", countryCode="DE", vatNumber="1")
    assert is_retryable(info.value)


async def test_permanent_fault_is_not_retryable(soap_stub: StubFactory) -> None:
    client, stub = await soap_stub(DOSSIER_WSDL, {"getDossierStatus": _raise(StubFault("Client", "no such dossier"))})
    with pytest.raises(AgencyRejected) as info:
        await client.call("getDossierStatus", dossierId="X")
    assert not is_retryable(info.value)
    assert len(stub.received) == 1


# --- parsing Faults directly ------------------------------------------------------


def test_find_fault_reads_both_versions() -> None:
    f11 = find_fault(etree.fromstring(fault_envelope("1.1", "Server", "down", subcode="Db.Timeout")))
    assert f11 == SoapFault(version="1.1", code="Server.Db.Timeout", reason="down")
    assert f11.transient
    f12 = find_fault(etree.fromstring(fault_envelope("1.2", "Sender", "bad", subcode="InvalidDossierId")))
    assert f12 == SoapFault(version="1.2", code="Sender", reason="bad", subcodes=("InvalidDossierId",))
    assert not f12.transient
    assert f12.full_code == "Sender.InvalidDossierId"


def test_find_fault_ignores_ordinary_answers_and_flags_broken_faults() -> None:
    env = "http://schemas.xmlsoap.org/soap/envelope/"
    assert find_fault(etree.fromstring(f'<e:Envelope xmlns:e="{env}"><e:Body><x/></e:Body></e:Envelope>')) is None
    assert find_fault(etree.fromstring("<not-soap/>")) is None
    no_code = (
        f'<e:Envelope xmlns:e="{env}"><e:Body><e:Fault><faultstring>x</faultstring></e:Fault></e:Body></e:Envelope>'
    )
    with pytest.raises(MalformedAnswer, match="without faultcode"):
        find_fault(etree.fromstring(no_code))
    env12 = "http://www.w3.org/2003/05/soap-envelope"
    no_value = f'<e:Envelope xmlns:e="{env12}"><e:Body><e:Fault><e:Code/></e:Fault></e:Body></e:Envelope>'
    with pytest.raises(MalformedAnswer, match="without Code/Value"):
        find_fault(etree.fromstring(no_value))


def test_fault_error_message_and_code() -> None:
    exc = fault_error(SoapFault("1.1", "Server.ServerProxy.ServiceFailed", "backend down"), agency="xroad", status=500)
    assert isinstance(exc, AgencyUnavailable)
    assert exc.code == "Server.ServerProxy.ServiceFailed"
    assert str(exc) == "xroad: SOAP 1.1 fault Server.ServerProxy.ServiceFailed: backend down"


SUBCODE_WITHOUT_VALUE = (
    b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:app="urn:lienthong:test"><e:Body><e:Fault>'
    b"<e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Subcode><e:Value>app:Deeper</e:Value></e:Subcode></e:Subcode>"
    b'</e:Code><e:Reason><e:Text xml:lang="en">bad</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>'
)


def test_soap12_subcode_without_value_breaks_the_fault() -> None:
    # It used to give the code "Sender." (an empty subcode).
    with pytest.raises(MalformedAnswer, match=r"SOAP 1\.2 Fault Sender with a Subcode without Value"):
        find_fault(etree.fromstring(SUBCODE_WITHOUT_VALUE))


async def test_soap12_subcode_without_value_over_http(raw_server: RawFactory, session: aiohttp.ClientSession) -> None:
    url = await raw_server(SUBCODE_WITHOUT_VALUE, status=500, content_type="application/soap+xml")
    client = SoapTransport(session, DOSSIER_WSDL, agency="a", port_name="DossierSoap12Port", address=url)
    with pytest.raises(MalformedAnswer, match=r"a: malformed SOAP Fault: SOAP 1\.2 Fault Sender") as info:
        await client.call("getDossierStatus", dossierId="X")
    assert info.value.status == 500
