"""Hostile, oversize and broken answers are refused before zeep (or libxml2) can be hurt by them."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.soap.answers import read_answer
from adapters.soap.testing import fault_envelope
from adapters.soap.transport import SoapCall, SoapTransport
from adapters.xml import UrlMap
from gateway.errors import MalformedAnswer, UnsafeAnswer, is_retryable
from tests.adapters import BILLION_LAUGHS, xxe
from tests.adapters.soap.conftest import DOSSIER_WSDL, SDI_TRASMISSIONE_FATTURE, RawFactory

ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"


def _envelope_with(entity_ref: str, dtd: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE e:Envelope [{dtd}]><e:Envelope xmlns:e="{ENV11}"><e:Body>'
        f'<checkVatResponse xmlns="urn:ec.europa.eu:taxud:vies:services:checkVat:types">'
        f"<countryCode>DE</countryCode><vatNumber>{entity_ref}</vatNumber><requestDate>2025-01-01</requestDate>"
        f"<valid>true</valid></checkVatResponse></e:Body></e:Envelope>"
    ).encode()


async def _call_vies(session: aiohttp.ClientSession, wsdl: Path, url: str, **kwargs: int) -> object:
    client = SoapTransport(session, wsdl, agency="vies", address=url, **kwargs)  # type: ignore[arg-type]
    return await client.call("checkVat", countryCode="DE", vatNumber="1")


async def test_good_vies_answer_parses(raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path) -> None:
    # Control for the hostile cases below: the same envelope without a DTD is fine.
    url = await raw_server(_envelope_with("123", "").replace(b"<!DOCTYPE e:Envelope []>", b""))
    result = await _call_vies(session, vies_wsdl, url)
    assert result.vatNumber == "123"  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [BILLION_LAUGHS, BILLION_LAUGHS.decode().encode("utf-16")], ids=["utf-8", "utf-16"])
async def test_billion_laughs_answer(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path, body: bytes
) -> None:
    url = await raw_server(body)
    with pytest.raises(UnsafeAnswer) as info:
        await _call_vies(session, vies_wsdl, url)
    assert not is_retryable(info.value)
    assert info.value.status == 200


async def test_billion_laughs_inside_soap_envelope(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path
) -> None:
    dtd = (
        '<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    )
    url = await raw_server(_envelope_with("&c;", dtd))
    with pytest.raises(UnsafeAnswer, match="DOCTYPE"):
        await _call_vies(session, vies_wsdl, url)


async def test_external_entities_in_answer_never_resolved(
    raw_server: RawFactory, aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, vies_wsdl: Path
) -> None:
    hits: list[str] = []

    async def bait(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="leaked")

    app = web.Application()
    app.router.add_get("/{tail:.*}", bait)
    bait_server = await aiohttp_server(app)
    cases = [
        _envelope_with("&x;", '<!ENTITY x SYSTEM "file:///etc/passwd">'),
        _envelope_with("&x;", f'<!ENTITY x SYSTEM "{bait_server.make_url("/entity")}">'),
        _envelope_with("", f'<!ENTITY % p SYSTEM "{bait_server.make_url("/param")}"> %p;'),
        xxe(str(bait_server.make_url("/plain"))),
    ]
    for body in cases:
        url = await raw_server(body)
        with pytest.raises(UnsafeAnswer):
            await _call_vies(session, vies_wsdl, url)
    assert hits == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversize_answer(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path, chunked: bool
) -> None:
    body = b"<x>" + b"a" * 300_000 + b"</x>"
    url = await raw_server(body, chunked=chunked)
    with pytest.raises(UnsafeAnswer, match="exceeds 100000") as info:
        await _call_vies(session, vies_wsdl, url, max_answer_bytes=100_000)
    assert not is_retryable(info.value)


@pytest.mark.parametrize(
    ("body", "content_type", "match"),
    [
        (b"this is not xml", "text/xml", "not well-formed"),
        (b"<e:Envelope xmlns:e='" + ENV11.encode() + b"'><e:Body>", "text/xml", "not well-formed"),
        (b"", "text/xml", "empty answer"),
        (b"<html><body>login</body></html>", "text/html", r"an HTML page \(HTTP 200, text/html\)"),
        (b"--b\r\n\r\n--b--", "multipart/related; boundary=b", "root part is text/plain, not a SOAP envelope"),
        (b"--b--", "multipart/mixed; boundary=b", "unsupported answer type multipart/mixed"),
        (b"<Envelope/>", "text/xml", "expected a SOAP 1.1 Envelope, got root element Envelope"),
        (fault_envelope("1.2", "Receiver", "x").replace(b"Fault", b"NotAFault"), "text/xml", "got SOAP 1.2"),
    ],
    ids=["text", "truncated", "empty", "html", "multipart", "multipart-mixed", "not-soap", "wrong-soap-version"],
)
async def test_garbage_answer_is_malformed(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path, body: bytes, content_type: str, match: str
) -> None:
    url = await raw_server(body, content_type=content_type)
    with pytest.raises(MalformedAnswer, match=match) as info:
        await _call_vies(session, vies_wsdl, url)
    assert is_retryable(info.value)
    assert info.value.agency == "vies"


async def test_answer_to_another_operation_is_malformed(raw_server: RawFactory, session: aiohttp.ClientSession) -> None:
    # zeep alone would return a result full of None for a Body holding the wrong element.
    body = (
        f'<e:Envelope xmlns:e="{ENV11}"><e:Body><other xmlns="urn:lienthong:test:dossier"/></e:Body></e:Envelope>'
    ).encode()
    url = await raw_server(body)
    client = SoapTransport(session, DOSSIER_WSDL, agency="a", address=url)
    with pytest.raises(MalformedAnswer, match=r"Body holds \{urn:lienthong:test:dossier\}other"):
        await client.call("getDossierStatus", dossierId="X")


# Deliberately broken X-Road messages from the X-Road test suite, served as answers to getRandom.
BROKEN_XROAD = {
    "missing-body.query": "without Body",
    "malformed-body1.query": "Body holds",  # two elements in Body
    "malformed-body2.query": "empty SOAP Body",
    "malformed-body3.query": "Body holds",  # an unknown element
    "no-soap.query": "not well-formed",  # a multipart body sent as text/xml
    "empty.query": "empty answer",
    "attachm-faulty-soap.query": "not well-formed",
    "simple.answer": "Body holds",  # a valid X-Road answer, but to another service
}


@pytest.mark.parametrize("name", sorted(BROKEN_XROAD))
async def test_broken_xroad_messages_are_malformed(
    raw_server: RawFactory,
    session: aiohttp.ClientSession,
    xroad_wsdl: Path,
    xroad_map: UrlMap,
    queries: Path,
    name: str,
) -> None:
    body = await asyncio.to_thread((queries / name).read_bytes)
    url = await raw_server(body)
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(MalformedAnswer, match=BROKEN_XROAD[name]):
        await client.call("getRandom", amount=1)


async def test_iso_8859_1_answer_is_read(
    raw_server: RawFactory, session: aiohttp.ClientSession, xroad_wsdl: Path, xroad_map: UrlMap, queries: Path
) -> None:
    # getstate-iso88591.answer is a real X-Road answer in ISO-8859-1; it parses, then fails the shape check.
    body = await asyncio.to_thread((queries / "getstate-iso88591.answer").read_bytes)
    url = await raw_server(body, content_type="text/xml; charset=iso-8859-1")
    client = SoapTransport(session, xroad_wsdl, agency="xroad", url_map=xroad_map, address=url)
    with pytest.raises(MalformedAnswer, match="Body holds"):
        await client.call("getRandom", amount=1)


@pytest.mark.parametrize("status", [200, 202])
async def test_one_way_operation_answered_with_an_empty_body(
    raw_server: RawFactory, session: aiohttp.ClientSession, status: int
) -> None:
    # The SdI's TrasmissioneFatture: every operation is one-way (a notice to the invoice's sender).
    url = await raw_server(b"", status=status)
    client = SoapTransport(session, SDI_TRASMISSIONE_FATTURE, agency="sdi", address=url)
    answer = await client.exchange(
        SoapCall(
            "RicevutaConsegna", {"IdentificativoSdI": 1, "NomeFile": "IT01234567890_00001_RC_001.xml", "File": b"x"}
        )
    )
    assert (answer.value, answer.status) == (None, status)


async def test_empty_202_for_an_operation_with_an_output_is_malformed(
    raw_server: RawFactory, session: aiohttp.ClientSession
) -> None:
    # getDossierStatus promises an answer: an empty 202 is not one (it used to come back as None).
    url = await raw_server(b"", status=202)
    client = SoapTransport(session, DOSSIER_WSDL, agency="a", address=url)
    with pytest.raises(MalformedAnswer, match=r"empty answer \(HTTP 202\) to 'getDossierStatus', which has an output"):
        await client.call("getDossierStatus", dossierId="X")


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body>Back soon</body></html>"


@pytest.mark.parametrize(
    "content_type", ["text/xml; charset=utf-8", "text/html; charset=utf-8", "application/soap+xml"]
)
async def test_an_html_page_is_the_same_answer_whatever_its_content_type(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path, content_type: str
) -> None:
    # A proxy's maintenance page served as 200 text/xml used to be an "unsafe" DOCTYPE, never retried.
    url = await raw_server(HTML_PAGE, content_type=content_type)
    with pytest.raises(MalformedAnswer) as info:
        await _call_vies(session, vies_wsdl, url)
    media = content_type.split(";")[0]
    assert str(info.value) == f"vies: an HTML page (HTTP 200, {media}) where a SOAP envelope was expected"
    assert is_retryable(info.value)


async def test_a_doctype_with_an_internal_subset_stays_unsafe(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path
) -> None:
    body = b'<!DOCTYPE html [<!ENTITY a "b">]><html>&a;</html>'
    url = await raw_server(body, content_type="text/html")
    with pytest.raises(UnsafeAnswer):
        await _call_vies(session, vies_wsdl, url)


async def test_large_answer_is_read_in_a_thread(
    raw_server: RawFactory, session: aiohttp.ClientSession, vies_wsdl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[object] = []
    real_to_thread = asyncio.to_thread

    async def spy(func: object, *args: object, **kwargs: object) -> object:
        threads.append(func)
        return await real_to_thread(func, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", spy)
    address = "Phường Tràng Tiền " * 20_000  # about 400 KB of UTF-8
    body = _envelope_with("123", "").replace(b"<!DOCTYPE e:Envelope []>", b"")
    body = body.replace(b"</valid>", f"</valid><address>{address}</address>".encode())
    url = await raw_server(body)
    result = await _call_vies(session, vies_wsdl, url)
    assert result.address == address  # type: ignore[attr-defined]
    assert any(isinstance(f, functools.partial) and f.func is read_answer for f in threads)
