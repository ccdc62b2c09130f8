"""multipart/related answers: MTOM/XOP from the Italian SdI's WSDLs, and X-Road's own SwA and MTOM messages.

The SdI answers invoice submissions as MTOM even when nothing is attached; X-Road passes attachments
along. Both used to be refused as a retryable MalformedAnswer: an accepted submission was sent again.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.soap.multipart import Attachment, read_related, resolve_xop
from adapters.soap.testing import Received, StubFault
from adapters.soap.transport import SoapCall, SoapTransport
from adapters.xml import UrlMap, parse_xml
from gateway.errors import AgencyRejected, AgencyUnavailable, MalformedAnswer, UnsafeAnswer, is_retryable
from tests.adapters.soap.conftest import (
    SDI_RICEVI_FILE,
    SDI_RICEVI_NOTIFICA,
    XROAD_ANNEX_C,
    RawFactory,
    StubFactory,
)

SDI_TYPES = "http://www.fatturapa.gov.it/sdi/ws/trasmissione/v1.0/types"
RECEIVED_AT = dt.datetime(2025, 3, 14, 10, 30, tzinfo=dt.UTC)
INVOICE = "<FatturaElettronica versione='FPR12'>…</FatturaElettronica>".encode()
# Content types the X-Road proxy's own test cases serve these messages with (proxy-core testcases).
MTOM_CT = 'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; boundary="jetty771207119h3h10dty";charset=UTF-8'  # noqa: E501
SWA_CT = "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty"
XOP_CT = (
    'multipart/related; type="application/xop+xml"; boundary=MIMEBoundaryurn_uuid_0FE43E4D025F0BF3DC11582467646812; '
    'start="<0.urn:uuid:0FE43E4D025F0BF3DC11582467646813@apache.org>"'
)


def _ricevi_file(received: Received) -> dict[str, Any]:
    assert received.value.NomeFile == "IT01234567890_00001.xml"
    assert received.value.File == INVOICE
    return {"IdentificativoSdI": 123456789012, "DataOraRicezione": RECEIVED_AT}


async def test_sdi_mtom_answer_without_attachment(soap_stub: StubFactory) -> None:
    client, stub = await soap_stub(SDI_RICEVI_FILE, {"RiceviFile": _ricevi_file}, mtom=True)
    answer = await client.exchange(SoapCall("RiceviFile", {"NomeFile": "IT01234567890_00001.xml", "File": INVOICE}))
    assert answer.value.IdentificativoSdI == 123456789012
    assert answer.value.DataOraRicezione == RECEIVED_AT
    assert answer.value.Errore is None
    assert (answer.status, answer.attachments) == (200, ())
    [seen] = stub.received
    assert seen.http_headers["Accept"] == "text/xml, multipart/related"
    assert seen.http_headers["SOAPAction"] == '"http://www.fatturapa.it/SdIRiceviFile/RiceviFile"'


def _notifica_esito(received: Received) -> dict[str, Any]:
    # The SdI refuses the recipient's outcome notice and sends back the rejection as a file.
    return {"Esito": "ES01", "ScartoEsito": {"NomeFile": "IT01234567890_00001_SE_001.xml", "File": b"%PDF\x00\xff\r\n"}}


async def test_sdi_mtom_answer_with_attachment(soap_stub: StubFactory) -> None:
    client, _ = await soap_stub(SDI_RICEVI_NOTIFICA, {"NotificaEsito": _notifica_esito}, mtom=True)
    answer = await client.exchange(
        SoapCall(
            "NotificaEsito",
            {"IdentificativoSdI": 111, "NomeFile": "IT01234567890_00001_EC_001.xml", "File": b"<esito/>"},
        )
    )
    assert answer.value.Esito == "ES01"
    assert answer.value.ScartoEsito.File == b"%PDF\x00\xff\r\n"  # binary, byte for byte
    [attachment] = answer.attachments
    assert (attachment.media_type, attachment.content, attachment.included) == (
        "application/octet-stream",
        b"%PDF\x00\xff\r\n",
        True,
    )
    assert attachment.content_id is not None and answer.attachment(attachment.content_id) == attachment
    # send() and call() keep returning zeep's value.
    value = await client.call(
        "NotificaEsito", IdentificativoSdI=111, NomeFile="IT01234567890_00001_EC_001.xml", File=b"x"
    )
    assert value.ScartoEsito.NomeFile == "IT01234567890_00001_SE_001.xml"


@pytest.mark.parametrize(("code", "expected"), [("Client", AgencyRejected), ("Server", AgencyUnavailable)])
async def test_fault_inside_a_multipart_500(soap_stub: StubFactory, code: str, expected: type[Exception]) -> None:
    def refuse(received: Received) -> None:
        raise StubFault(code, "file non conforme", subcode="EI01")

    client, _ = await soap_stub(SDI_RICEVI_FILE, {"RiceviFile": refuse}, mtom=True)
    with pytest.raises(expected) as info:
        await client.call("RiceviFile", NomeFile="IT01234567890_00001.xml", File=b"x")
    assert (info.value.code, info.value.status) == (f"{code}.EI01", 500)  # type: ignore[attr-defined]


async def test_xroad_mtom_fault_without_closing_boundary_is_read(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, queries: Path
) -> None:
    # soapfault-mtom.answer: a Fault in an MTOM root part; the message stops before its closing boundary.
    body = await asyncio.to_thread((queries / "soapfault-mtom.answer").read_bytes)
    url = await raw_server(body, status=500, content_type=MTOM_CT)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(AgencyUnavailable) as info:
        await client.call("getRandom", amount=1)
    assert (info.value.code, info.value.status) == ("Server", 500)
    assert "SOAP 1.1 fault Server: Error" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("attachm-mtom.answer", MTOM_CT),  # MTOM, an xop:Include resolved by Content-ID
        (
            "xop.answer",
            XOP_CT,
        ),
        ("attachm2.answer", SWA_CT),  # SwA, an attachment that is itself multipart/mixed
        ("attachments.answer", SWA_CT),  # SwA, three attachments
        ("mimesoap.answer", SWA_CT),  # multipart with the envelope only
        ("attachm-error.query", SWA_CT),  # an attachment with a garbled header: opaque, the envelope fine
    ],
)
async def test_xroad_multipart_answers_reach_the_shape_check(
    raw_server: RawFactory,
    session: aiohttp.ClientSession,
    xroad_wsdl: Path,
    xroad_map: UrlMap,
    queries: Path,
    name: str,
    content_type: str,
) -> None:
    # Answers of X-Road's test services: read, then refused as answers to another operation.
    body = await asyncio.to_thread((queries / name).read_bytes)
    url = await raw_server(body, content_type=content_type)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    held = "getStateResponse" if name == "attachm-error.query" else "testResponse"
    with pytest.raises(MalformedAnswer, match=rf"SOAP Body holds \{{[^}}]+\}}{held}; the WSDL promises"):
        await client.call("getRandom", amount=1)


async def test_broken_multipart_answers(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, queries: Path
) -> None:
    cases = [
        ("faulty-multipart.query", SWA_CT, "body has no parts"),  # boundaries that do not match
        ("attachm-no-soap.query", SWA_CT, "root part is text/plain"),
        (
            "attachm-mtom.answer",
            MTOM_CT.replace('boundary="jetty771207119h3h10dty"', 'start="<nope>"; boundary="jetty771207119h3h10dty"'),
            "no part has the Content-ID",
        ),
    ]
    for name, content_type, match in cases:
        body = await asyncio.to_thread((queries / name).read_bytes)
        url = await raw_server(body, content_type=content_type)
        client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
        with pytest.raises(MalformedAnswer, match=match) as info:
            await client.call("getRandom", amount=1)
        assert is_retryable(info.value) and info.value.status == 200


async def test_a_multipart_answer_cut_off_is_not_taken(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, queries: Path
) -> None:
    body = await asyncio.to_thread((queries / "mimesoap.answer").read_bytes)
    url = await raw_server(body.replace(b"--jetty771207119h3h10dty--", b""), content_type=SWA_CT)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(MalformedAnswer, match="closing boundary is missing"):
        await client.call("getRandom", amount=1)


async def test_multipart_error_pages_follow_the_http_status(
    raw_server: RawFactory, session: aiohttp.ClientSession
) -> None:
    url = await raw_server(
        b"--b\r\n\r\nproxy error\r\n--b--\r\n", status=503, content_type="multipart/related; boundary=b"
    )
    client = SoapTransport(session, SDI_RICEVI_FILE, agency="sdi", address=url)
    with pytest.raises(AgencyUnavailable) as info:
        await client.call("RiceviFile", NomeFile="IT01234567890_00001.xml", File=b"x")
    assert info.value.status == 503


# --- the parts themselves ----------------------------------------------------------


def test_xop_include_resolved_by_content_id(queries: Path) -> None:
    related = read_related(
        MTOM_CT.replace('start-info="application/soap+xml"; ', 'start="<foo>"; '),
        (queries / "attachm-mtom.answer").read_bytes(),
    )
    assert related.root_type == "application/xop+xml" and related.complete
    envelope = parse_xml(related.root)
    [attachment] = resolve_xop(envelope, related.attachments)
    assert (attachment.content_id, attachment.content, attachment.included) == (
        "42a7ee0a-20ee-426b-a135-094d72bc138f@example.org",
        b"foobarbaz",
        True,
    )
    answer = envelope.find(".//{http://cosumer.ee.xroad.net}testResponse")
    assert answer is not None and base64.b64decode(answer.text or "") == b"foobarbaz"


def test_folded_content_id_and_start(queries: Path) -> None:
    related = read_related(XOP_CT, (queries / "xop.answer").read_bytes())
    [attachment] = related.attachments
    assert attachment.content_id == "1.urn:uuid:0FE43E4D025F0BF3DC11582467646811@apache.org"  # folded header
    assert attachment.content.startswith(b"77+9UE5HDQoaCgAAAA1J")


def test_unknown_and_misplaced_includes_are_malformed() -> None:
    envelope = parse_xml(
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><a>'
        b'<x:Include xmlns:x="http://www.w3.org/2004/08/xop/include" href="cid:missing%40here"/>'
        b"</a></e:Body></e:Envelope>"
    )
    with pytest.raises(MalformedAnswer, match="'cid:missing%40here', which is not a part"):
        resolve_xop(envelope, (Attachment("other@here", "text/plain", b"x"),))
    mixed = parse_xml(b'<a>text<x:Include xmlns:x="http://www.w3.org/2004/08/xop/include" href="cid:p@here"/></a>')
    with pytest.raises(MalformedAnswer, match="only content of its element"):
        resolve_xop(mixed, (Attachment("p@here", "text/plain", b"x"),))
    found = parse_xml(b'<a><x:Include xmlns:x="http://www.w3.org/2004/08/xop/include" href="cid:p%40here"/></a>')
    [done] = resolve_xop(found, (Attachment("p@here", "text/plain", b"x"),))  # cid URLs are %-encoded
    assert done.included and found.text == "eA=="


def test_too_many_parts_is_unsafe() -> None:
    body = b"".join(b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n" for _ in range(300)) + b"--b--\r\n"
    with pytest.raises(UnsafeAnswer, match="300 parts"):
        read_related("multipart/related; boundary=b", body)


def test_base64_and_quoted_printable_parts_are_decoded() -> None:
    body = (
        b"--b\r\nContent-Type: text/xml\r\n\r\n<e/>\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <one>\r\n\r\nVGhpcyBpcyBhdHRhY2htZW50Lg0K\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nPh=C6=B0=E1=BB=9Dng\r\n"
        b"--b--\r\n"
    )
    related = read_related("multipart/related; boundary=b", body)
    assert related.root == b"<e/>"
    assert [a.content for a in related.attachments] == [b"This is attachment.\r\n", "Phường".encode()]


async def test_annex_g_mtom_operation_round_trip(soap_stub: StubFactory, annex_c_map: UrlMap) -> None:
    # The X-Road example service's MTOM operation, with the SwA one left out (it cannot be sent).
    def answer(received: Received) -> dict[str, Any]:
        assert received.value.body.exampleAttachment == b"This is attachment.\r\n"
        return {"exampleOutput": "ok"}

    client, _ = await soap_stub(
        XROAD_ANNEX_C, {"exampleServiceMtom": answer}, mtom=True, url_map=annex_c_map, operations=["exampleServiceMtom"]
    )
    result = await client.call("exampleServiceMtom", exampleInput="foo", exampleAttachment=b"This is attachment.\r\n")
    assert result.body.exampleOutput == "ok"
