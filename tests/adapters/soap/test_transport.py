"""Round trips over real loopback HTTP against stubs that answer from the same WSDLs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree
from structlog.testing import capture_logs

from adapters.soap.headers import XROAD_ID_NS, XROAD_NS, XRoadClient, XRoadHeaders, XRoadService, username_token
from adapters.soap.testing import Received
from adapters.soap.transport import SoapCall, SoapTransport
from adapters.xml import UrlMap
from gateway.errors import AgencyRejected, AgencyUnavailable, is_retryable
from tests.adapters import realworld
from tests.adapters.soap.conftest import DOSSIER_WSDL, StubFactory

VIES_NS = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def _vies_answer(received: Received) -> dict[str, Any]:
    return {
        "countryCode": received.value.countryCode,
        "vatNumber": received.value.vatNumber,
        "requestDate": dt.date(2025, 3, 14),
        "valid": True,
        "name": "Công ty TNHH Liên Thông",
        "address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
    }


async def test_vies_check_vat_round_trip(soap_stub: StubFactory, vies_wsdl: Path) -> None:
    client, stub = await soap_stub(vies_wsdl, {"checkVat": _vies_answer})
    with capture_logs() as logs:
        result = await client.call("checkVat", countryCode="DE", vatNumber="123456789")
    assert result.valid is True
    assert result.requestDate == dt.date(2025, 3, 14)
    assert result.name == "Công ty TNHH Liên Thông"
    # What went over the wire, as the server saw it.
    [seen] = stub.received
    assert seen.operation == "checkVat"
    assert seen.http_headers["Content-Type"] == "text/xml; charset=utf-8"
    assert seen.http_headers["SOAPAction"] == '""'
    assert seen.envelope.findtext(f".//{{{VIES_NS}}}vatNumber") == "123456789"
    assert logs == [
        {
            "event": "outbound",
            "log_level": "info",
            "agency": "test-agency",
            "operation": "checkVat",
            "status": 200,
            "ms": logs[0]["ms"],
        }
    ]


async def test_send_takes_a_soap_call(soap_stub: StubFactory, vies_wsdl: Path) -> None:
    client, _ = await soap_stub(vies_wsdl, {"checkVat": _vies_answer})
    result = await client.send(SoapCall("checkVat", {"countryCode": "FR", "vatNumber": "X1"}))
    assert (result.countryCode, result.vatNumber) == ("FR", "X1")


def _xroad_headers() -> XRoadHeaders:
    return XRoadHeaders(
        client=XRoadClient.parse("VN/GOV/000123/lienthong"),
        service=XRoadService.parse("VN/GOV/000456/registry/getRandom/v1"),
        user_id="VN:CCCD:001099012345",
        id="msg-0001",
    )


async def test_xroad_get_random_round_trip_with_headers(
    soap_stub: StubFactory, xroad_wsdl: Path, xroad_map: UrlMap
) -> None:
    client, stub = await soap_stub(
        xroad_wsdl,
        {"getRandom": lambda r: {"randomValues": {"randomValue": [Decimal("0.25")] * r.value.body.amount}}},
        echo_headers=True,
        url_map=xroad_map,
    )
    result = await client.call("getRandom", headers=_xroad_headers(), amount=3)
    assert result.body.randomValues.randomValue == [Decimal("0.25")] * 3
    assert result.header.id == "msg-0001"  # X-Road answers echo the request headers

    [seen] = stub.received
    x = f"{{{XROAD_NS}}}"
    i = f"{{{XROAD_ID_NS}}}"
    client_el = seen.header(f"{x}client")
    assert client_el is not None
    assert client_el.get(f"{i}objectType") == "SUBSYSTEM"
    assert [c.tag for c in client_el] == [f"{i}xRoadInstance", f"{i}memberClass", f"{i}memberCode", f"{i}subsystemCode"]
    assert [c.text for c in client_el] == ["VN", "GOV", "000123", "lienthong"]
    service_el = seen.header(f"{x}service")
    assert service_el is not None
    assert service_el.get(f"{i}objectType") == "SERVICE"
    assert service_el.findtext(f"{i}serviceCode") == "getRandom"
    assert service_el.findtext(f"{i}serviceVersion") == "v1"
    assert seen.header(f"{x}id") is not None and seen.header(f"{x}id").text == "msg-0001"  # type: ignore[union-attr]
    assert seen.header(f"{x}userId").text == "VN:CCCD:001099012345"  # type: ignore[union-attr]
    assert seen.header(f"{x}protocolVersion").text == "4.0"  # type: ignore[union-attr]
    # zeep on the server side reads the same headers through the WSDL's header parts.
    assert seen.value.header.client.memberCode == "000123"
    assert seen.value.header.service.serviceCode == "getRandom"


@pytest.fixture
def vtj_wsdl() -> Path:
    return realworld("fi-vtj-xroad", "service.wsdl")


async def test_xroad_headers_fit_other_header_part_names(soap_stub: StubFactory, vtj_wsdl: Path) -> None:
    # The Finnish VTJ WSDL names its header parts clientField/serviceField: elements work regardless.
    def answer(received: Received) -> dict[str, Any]:
        return {"request": {"SoSoNimi": "LIENTHONG", "Henkilotunnus": received.value.body.request.Henkilotunnus}}

    client, stub = await soap_stub(vtj_wsdl, {"HenkilonTunnusKysely": answer}, echo_headers=True)
    result = await client.call(
        "HenkilonTunnusKysely",
        headers=_xroad_headers(),
        request={"SoSoNimi": "LIENTHONG", "Henkilotunnus": "010280-952L"},
    )
    assert result.body.request.Henkilotunnus == "010280-952L"
    assert result.header.clientField.memberCode == "000123"
    [seen] = stub.received
    assert seen.value.header.clientField.memberCode == "000123"
    assert seen.value.header.serviceField.serviceCode == "getRandom"
    assert seen.value.header.userId == "VN:CCCD:001099012345"


async def test_fresh_xroad_message_id_per_headers_object() -> None:
    a = XRoadHeaders(XRoadClient("VN", "GOV", "1"), XRoadService("VN", "GOV", "2", None, "svc"))
    b = XRoadHeaders(XRoadClient("VN", "GOV", "1"), XRoadService("VN", "GOV", "2", None, "svc"))
    assert a.id != b.id
    assert a.client.element().get(f"{{{XROAD_ID_NS}}}objectType") == "MEMBER"
    with pytest.raises(ValueError, match="INSTANCE/CLASS/CODE"):
        XRoadClient.parse("VN/GOV")


async def test_soap12_round_trip(soap_stub: StubFactory) -> None:
    updated = dt.datetime(2025, 6, 1, 8, 30, tzinfo=dt.UTC)
    client, stub = await soap_stub(
        DOSSIER_WSDL,
        {"getDossierStatus": lambda r: {"status": "DA_TIEP_NHAN", "updated": updated}},
        port_name="DossierSoap12Port",
    )
    result = await client.call("getDossierStatus", dossierId="000.00.01.H26-250601-0001")
    assert result.status == "DA_TIEP_NHAN"
    assert result.updated == updated
    [seen] = stub.received
    assert seen.http_headers["Content-Type"].startswith("application/soap+xml; charset=utf-8")
    assert 'action="urn:lienthong:test:dossier/getDossierStatus"' in seen.http_headers["Content-Type"]
    assert "SOAPAction" not in seen.http_headers
    assert etree.QName(seen.envelope).namespace == "http://www.w3.org/2003/05/soap-envelope"
    assert client.describe()["soap_version"] == "1.2"


async def test_soap11_port_of_same_service_sends_soap_action(soap_stub: StubFactory) -> None:
    client, stub = await soap_stub(
        DOSSIER_WSDL,
        {"getDossierStatus": lambda r: {"status": "DANG_XU_LY", "updated": dt.datetime(2025, 1, 1)}},
    )
    assert (await client.call("getDossierStatus", dossierId="X")).status == "DANG_XU_LY"
    assert stub.received[0].http_headers["SOAPAction"] == '"urn:lienthong:test:dossier/getDossierStatus"'


async def test_ws_security_username_token(soap_stub: StubFactory, vies_wsdl: Path) -> None:
    client, stub = await soap_stub(
        vies_wsdl, {"checkVat": _vies_answer}, wsse=username_token("lienthong", "s3cr3t-pass", digest=True)
    )
    await client.call("checkVat", countryCode="DE", vatNumber="1")
    token = stub.received[0].header(f"{{{WSSE_NS}}}Security")
    assert token is not None
    assert token.findtext(f".//{{{WSSE_NS}}}Username") == "lienthong"
    password = token.find(f".//{{{WSSE_NS}}}Password")
    assert password is not None and password.get("Type", "").endswith("#PasswordDigest")
    assert password.text != "s3cr3t-pass"
    described = client.describe()
    assert described["wsse"] == {"type": "UsernameToken", "username": "lienthong", "password": "***", "digest": True}
    assert "s3cr3t-pass" not in repr(described)


async def test_describe_masks_secrets_in_address(session: aiohttp.ClientSession, vies_wsdl: Path) -> None:
    t = SoapTransport(
        session,
        vies_wsdl,
        agency="vies",
        address="https://user:hunter2@vies.invalid/soap?apikey=abc123&lang=vi",
        wsse=username_token("u", "hunter2"),
    )
    text = repr(t.describe())
    assert "hunter2" not in text and "abc123" not in text
    assert "lang=vi" in text
    assert t.describe()["soap_version"] is None  # not loaded yet


async def test_bad_parameters_are_rejected_before_sending(soap_stub: StubFactory, vies_wsdl: Path) -> None:
    client, stub = await soap_stub(vies_wsdl, {"checkVat": _vies_answer})
    for call in (
        client.call("noSuchOperation"),
        client.call("checkVat", countryCode="DE", vatNumber="1", bogus=1),
    ):
        with pytest.raises(AgencyRejected, match="cannot build SOAP request") as info:
            await call
        assert not is_retryable(info.value)
    assert stub.received == []


async def test_check_reaches_endpoint(soap_stub: StubFactory, vies_wsdl: Path, session: aiohttp.ClientSession) -> None:
    client, _ = await soap_stub(vies_wsdl, {"checkVat": _vies_answer})
    result = await client.check()
    assert result.ok, result
    assert result.detail == "HTTP 405"  # SOAP endpoints often refuse GET; it still answers
    assert result.latency_ms is not None

    down = SoapTransport(session, vies_wsdl, agency="vies", address="http://127.0.0.1:9/", timeout=1)
    result = await down.check()
    assert not result.ok
    assert "cannot connect" in result.detail


async def test_connection_refused_is_unavailable(session: aiohttp.ClientSession, vies_wsdl: Path) -> None:
    t = SoapTransport(session, vies_wsdl, agency="vies", address="http://127.0.0.1:9/", timeout=2)
    with capture_logs() as logs, pytest.raises(AgencyUnavailable):
        await t.call("checkVat", countryCode="DE", vatNumber="1")
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["error"] == "AgencyUnavailable"
    assert logs[0]["status"] is None


async def test_an_agency_down_for_maintenance_says_when_to_come_back(
    aiohttp_server: Any, session: aiohttp.ClientSession, vies_wsdl: Path
) -> None:
    async def maintenance(request: web.Request) -> web.Response:
        headers = {"Retry-After": "30"}
        return web.Response(status=503, text="<html>maintenance</html>", content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_post("/", maintenance)
    server = await aiohttp_server(app)
    t = SoapTransport(session, vies_wsdl, agency="vies", address=str(server.make_url("/")))
    with pytest.raises(AgencyUnavailable) as err:
        await t.call("checkVat", countryCode="DE", vatNumber="1")
    assert (err.value.status, err.value.retry_after) == (503, 30.0)
