"""Every real-world WSDL loads offline; anything not mapped fails instead of being fetched."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from adapters.soap.offline import OfflineTransport, load_client
from adapters.soap.transport import SoapTransport
from adapters.xml import UnmappedURL, UrlMap, is_remote
from gateway.errors import ConfigError
from tests.adapters import REALWORLD, realworld
from tests.adapters.soap.conftest import XROAD_ANNEX_C

XROAD_XSD = "http://x-road.eu/xsd/xroad.xsd"
# Remote documents the WSDLs import, all served from local copies (never fetched).
_MAPPED = {
    XROAD_XSD,
    "http://x-road.eu/xsd/xml.xsd",
    "http://x-road.eu/xsd/identifiers.xsd",
    "http://www.w3.org/2001/xml.xsd",
    "http://www.w3.org/XML/1998/namespace",  # zeep's auto-import of the XML namespace: the built-in xml.xsd
    "http://schemas.xmlsoap.org/soap/encoding/",
}

# What SoapTransport makes of each WSDL in ../shared/realworld: (service, port, SOAP version, operations),
# or the reason it refuses (zeep loads every one of them; two have no SOAP port we can use).
EXPECTED: dict[str, tuple[str, str, str, set[str]] | str] = {
    "vies-checkvat/checkVatService.wsdl": ("checkVatService", "checkVatPort", "1.1", {"checkVat", "checkVatApprox"}),
    "xroad-example-getrandom/xroad6.wsdl": ("v6ExampleService", "v6ExampleServicePort", "1.1", {"getRandom"}),
    "fi-vtj-xroad/service.wsdl": (
        "SoSoAdapterService60",
        "BasicHttpBinding_ISoSoAdapterService60",
        "1.1",
        {"HenkilonTunnusKysely", "HenkilonTunnistusKysely", "RakennuksenTunnusKysely"},
    ),
    "zeep-testsuite-wsdl_files/claim.wsdl": (
        "GetClaimDetailsService",
        "GetClaimDetailsPort",
        "1.1",
        {"GetClaimDetails"},
    ),
    "zeep-testsuite-wsdl_files/soap.wsdl": (
        "StockQuoteService",
        "StockQuotePort",
        "1.1",
        {"GetLastTradePrice", "GetLastTradePriceNoOutput"},
    ),
    "zeep-testsuite-wsdl_files/soap_header.wsdl": ("StockQuoteService", "StockQuotePort", "1.1", {"GetLastTradePrice"}),
    "zeep-testsuite-wsdl_files/soap_import_main.wsdl": (
        "StockQuoteService",
        "StockQuotePort",
        "1.1",
        {"GetLastTradePrice"},
    ),
    # Declares a second binding over soap/tcp: zeep skips it and keeps the soap/http one.
    "zeep-testsuite-wsdl_files/soap_transport_err.wsdl": (
        "StockQuoteService",
        "StockQuotePort",
        "1.1",
        {"GetLastTradePrice"},
    ),
    "zeep-testsuite-wsdl_files/http.wsdl": "no SOAP 1.1/1.2 port in service 'StockQuoteService'; "
    "ports: StockQuotePort (HttpPostBinding)",
    "zeep-testsuite-wsdl_files/soap_import_2.wsdl": "has no wsdl:service",  # a fragment imported by soap_import_main
}


def _all_wsdls() -> list[str]:
    return sorted(str(p.relative_to(REALWORLD)) for p in REALWORLD.glob("*/*.wsdl")) or sorted(EXPECTED)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to open a network connection fails the test."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_every_realworld_wsdl_is_accounted_for() -> None:
    assert REALWORLD.is_dir(), f"{REALWORLD} is missing: tests expect shared/ beside the repository"
    assert set(_all_wsdls()) == set(EXPECTED)


@pytest.fixture
def wsdl(request: pytest.FixtureRequest) -> Path:
    return realworld(request.param)  # a sync fixture: the existence check stays off the event loop


@pytest.mark.parametrize("wsdl", _all_wsdls(), indirect=True)
async def test_realworld_wsdl_loads_offline(
    wsdl: Path, session: aiohttp.ClientSession, xroad_map: UrlMap, no_sockets: list[Any]
) -> None:
    # zeep itself loads every one of them, offline ...
    client = await asyncio.to_thread(load_client, wsdl, xroad_map)
    assert client.wsdl.messages or client.wsdl.types.documents
    assert not any(is_remote(url) and url not in _MAPPED for url in client.transport.loaded)
    # ... and SoapTransport picks the SOAP port, or says why it cannot use the WSDL.
    transport = SoapTransport(session, wsdl, agency="t", url_map=xroad_map)
    expected = EXPECTED[str(wsdl.relative_to(REALWORLD))]
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            await transport.load()
        return
    await transport.load()  # in a thread: the blocking-call detector stays quiet
    service, port, version, operations = expected
    assert operations <= set(transport.binding._operations)
    assert transport.describe()["soap_version"] == version
    assert transport._port is not None and transport._port.address
    described = transport.describe()
    assert (described["service"], described["port"]) == (service, port)  # defaults picked the SOAP port
    assert no_sockets == []


def test_remote_imports_come_from_the_map(xroad_wsdl: Path, xroad_map: UrlMap) -> None:
    client = load_client(xroad_wsdl, xroad_map)
    loaded = client.transport.loaded
    assert XROAD_XSD in loaded
    # Relative imports inside the remote xroad.xsd resolve against its remote base, then hit the map.
    assert {"http://x-road.eu/xsd/xml.xsd", "http://x-road.eu/xsd/identifiers.xsd"} <= set(loaded)


def test_unmapped_remote_import_fails_instead_of_fetching(xroad_wsdl: Path, no_sockets: list[Any]) -> None:
    with pytest.raises(UnmappedURL, match=re.escape(XROAD_XSD)) as info:
        load_client(xroad_wsdl)
    assert str(xroad_wsdl) in str(info.value)  # names the WSDL being loaded
    assert no_sockets == []


def test_exact_entry_does_not_cover_relative_imports_of_remote_schema(xroad_wsdl: Path) -> None:
    only_root = UrlMap({XROAD_XSD: realworld("xroad-example-getrandom", "xroad.xsd")})
    with pytest.raises(UnmappedURL, match=r"http://x-road\.eu/xsd/(xml|identifiers)\.xsd"):
        load_client(xroad_wsdl, only_root)
    both = UrlMap(
        {
            XROAD_XSD: realworld("xroad-example-getrandom", "xroad.xsd"),
            "http://x-road.eu/xsd/xml.xsd": realworld("xroad-example-getrandom", "xml.xsd"),
            "http://x-road.eu/xsd/identifiers.xsd": realworld("xroad-example-getrandom", "identifiers.xsd"),
        }
    )
    load_client(xroad_wsdl, both)


def test_soap_encoding_schema_is_bundled(no_sockets: list[Any]) -> None:
    # soap_import_2.wsdl imports http://schemas.xmlsoap.org/soap/encoding/ with no map given.
    client = load_client(realworld("zeep-testsuite-wsdl_files", "soap_import_main.wsdl"))
    assert "http://schemas.xmlsoap.org/soap/encoding/" in client.transport.loaded


def test_offline_transport_never_sends() -> None:
    transport = OfflineTransport()
    for method in (transport.get, transport.post, transport.post_xml):
        with pytest.raises(RuntimeError, match="never sends"):
            method("http://example.invalid/", b"", {})
    with pytest.raises(UnmappedURL):
        transport.load("https://example.invalid/schema.xsd")


def test_wsdl_with_dtd_is_refused(tmp_path: Path) -> None:
    wsdl = tmp_path / "evil.wsdl"
    wsdl.write_text(
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">&x;</definitions>'
    )
    with pytest.raises(ConfigError, match="DTDForbidden"):
        load_client(wsdl)


def test_missing_and_broken_wsdl_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WSDL file not found"):
        load_client(tmp_path / "nope.wsdl")
    broken = tmp_path / "broken.wsdl"
    broken.write_text("<definitions")
    with pytest.raises(ConfigError, match="zeep cannot load"):
        load_client(broken)


async def test_unknown_service_or_port_named_in_error(session: aiohttp.ClientSession, vies_wsdl: Path) -> None:
    with pytest.raises(ConfigError, match="no service 'Nope'"):
        await SoapTransport(session, vies_wsdl, agency="t", service_name="Nope").load()
    with pytest.raises(ConfigError, match="no SOAP port 'Nope'"):
        await SoapTransport(session, vies_wsdl, agency="t", port_name="Nope").load()


async def test_check_reports_config_error(session: aiohttp.ClientSession, xroad_wsdl: Path) -> None:
    result = await SoapTransport(session, xroad_wsdl, agency="t").check()
    assert not result.ok
    assert XROAD_XSD in result.detail


# --- what load says, and where -----------------------------------------------------------------

WSDL_HEAD = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:t" xmlns:a="urn:a" targetNamespace="urn:t">
"""
WSDL_TAIL = """
  <message name="in"><part name="p" element="{request}"/></message>
  <message name="out"><part name="p" element="{answer}"/></message>
  <message name="in2"><part name="p" element="{request}"/></message>
  <message name="out2"><part name="p" element="{answer2}"/></message>
  <portType name="PT">
    <operation name="op"><input message="tns:in"/><output message="tns:out"/></operation>
    <operation name="op2"><input message="tns:in2"/><output message="tns:out2"/></operation>
  </portType>
  <binding name="B" type="tns:PT"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="op"><soap:operation soapAction="op"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>
    <operation name="op2"><soap:operation soapAction="op2"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>
  </binding>
  <service name="S"><port name="P" binding="tns:B"><soap:address location="http://x.invalid/"/></port></service>
</definitions>
"""
INLINE_TYPES = """  <types>
    <xs:schema targetNamespace="urn:t" elementFormDefault="qualified">
      <xs:element name="req" type="xs:string"/>
      <xs:element name="res">
        <xs:complexType><xs:simpleContent><xs:extension base="xs:string">
          <xs:attribute ref="xml:lang"/>
        </xs:extension></xs:simpleContent></xs:complexType>
      </xs:element>
    </xs:schema>
  </types>"""
IMPORTED_TYPES = """  <types>
    <xs:schema targetNamespace="urn:t">
      <xs:import namespace="urn:a" schemaLocation="a.xsd"/>
    </xs:schema>
  </types>"""


def _write(folder: Path, types: str, *, answer: str = "tns:res", answer2: str = "tns:res", **files: str) -> Path:
    wsdl = folder / "service.wsdl"
    tail = WSDL_TAIL.format(
        request="tns:req" if "urn:t" in types and "import" not in types else "a:req", answer=answer, answer2=answer2
    )
    wsdl.write_text(WSDL_HEAD + types + tail)
    for name, text in files.items():
        (folder / name.replace("_", ".")).write_text(text)
    return wsdl


def _xsd(body: str, line_two: str = "") -> str:
    return (
        '<?xml version="1.0"?>\n<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:a"'
        f' xmlns:a="urn:a" xmlns:b="urn:b">\n{line_two}\n{body}\n</xs:schema>\n'
    )


def test_xml_lang_without_an_import_of_the_xml_namespace(tmp_path: Path) -> None:
    client = load_client(_write(tmp_path, INLINE_TYPES))  # failed: no schema for the XML namespace
    assert set(client.service._binding._operations) == {"op", "op2"}
    assert "http://www.w3.org/XML/1998/namespace" in client.transport.loaded  # the built-in xml.xsd


@pytest.mark.parametrize("url", ["https://www.w3.org/2009/01/xml.xsd", "http://www.w3.org/2009/01/xml.xsd"])
def test_the_2009_xml_namespace_schema_is_built_in(tmp_path: Path, url: str, no_sockets: list[Any]) -> None:
    xsd = _xsd(
        '<xs:element name="req" type="xs:string"/><xs:element name="res"><xs:complexType>'
        '<xs:attribute ref="xml:lang"/></xs:complexType></xs:element>',
        f'<xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="{url}"/>',
    )
    wsdl = _write(tmp_path, IMPORTED_TYPES, answer="a:res", answer2="a:res", a_xsd=xsd)
    assert url in load_client(wsdl).transport.loaded
    assert no_sockets == []


def test_an_unmapped_import_is_blamed_on_the_schema_that_imports_it(tmp_path: Path, no_sockets: list[Any]) -> None:
    xsd = _xsd(
        '<xs:element name="req" type="xs:string"/><xs:element name="res" type="b:thing"/>',
        '<xs:import namespace="urn:b" schemaLocation="http://registry.invalid/b.xsd"/>',
    )
    wsdl = _write(tmp_path, IMPORTED_TYPES, answer="a:res", answer2="a:res", a_xsd=xsd)
    with pytest.raises(UnmappedURL) as info:
        load_client(wsdl)
    assert info.value.problems == [
        (
            f"{tmp_path / 'a.xsd'}:3",
            "",
            "no local copy of http://registry.invalid/b.xsd (remote documents are never fetched)",
        )
    ]
    assert no_sockets == []


def test_a_broken_imported_schema_is_named_with_its_line(tmp_path: Path) -> None:
    xsd = _xsd('<xs:element name="req" type="xs:string">\n<xs:element name="res" type="xs:string"/>')
    wsdl = _write(tmp_path, IMPORTED_TYPES, answer="a:res", answer2="a:res", a_xsd=xsd)
    with pytest.raises(ConfigError) as info:
        load_client(wsdl)
    [(where, _, reason)] = info.value.problems
    assert where == f"{tmp_path / 'a.xsd'}:6"
    assert reason.startswith("zeep cannot load this WSDL: XMLSyntaxError: ")


def test_an_unknown_type_is_named_where_it_is_used(tmp_path: Path) -> None:
    xsd = _xsd('<xs:element name="req" type="xs:string"/>\n<xs:element name="res" type="a:nothing"/>')
    wsdl = _write(tmp_path, IMPORTED_TYPES, answer="a:res", answer2="a:res", a_xsd=xsd)
    with pytest.raises(ConfigError) as info:
        load_client(wsdl)
    [(where, _, reason)] = info.value.problems
    assert where == f"{tmp_path / 'a.xsd'}:5"
    assert "{urn:a}nothing" in reason


@pytest.fixture
def no_operations(tmp_path: Path) -> Path:
    # Both answers name elements nobody declares: zeep drops the messages, then both operations.
    return _write(tmp_path, INLINE_TYPES, answer="tns:missing", answer2="tns:missing2")


async def test_a_port_without_operations_is_refused_with_zeeps_warnings(
    no_operations: Path, session: aiohttp.ClientSession
) -> None:
    # It used to load, and each dossier then failed with "No such operation".
    with pytest.raises(ConfigError) as info:
        await SoapTransport(session, no_operations, agency="t").load()
    [(where, key, reason)] = info.value.problems
    assert (where, key) == (str(no_operations), "port_name")
    assert reason.startswith("port 'P' has no operation zeep can use; zeep warned: ")
    assert "The wsdl:message for '{urn:t}out' contains an invalid part ('p')" in reason
    assert "The wsdl:operation 'op2' was not found in the wsdl:portType '{urn:t}PT'" in reason


@pytest.fixture
def one_operation_dropped(tmp_path: Path) -> Path:
    return _write(tmp_path, INLINE_TYPES, answer2="tns:missing")


async def test_warnings_about_a_dropped_operation_are_shown(
    one_operation_dropped: Path, session: aiohttp.ClientSession
) -> None:
    transport = SoapTransport(session, one_operation_dropped, agency="t")
    with capture_logs() as logs:
        await transport.load()
    assert set(transport.binding._operations) == {"op"}
    warned = transport.describe()["load_warnings"]
    assert "The wsdl:operation 'op2' was not found in the wsdl:portType '{urn:t}PT'" in warned
    assert [e["warning"] for e in logs if e["event"] == "wsdl_warning"] == warned
    with pytest.raises(ConfigError, match="port 'P' has no operation op2; zeep warned: "):
        await SoapTransport(session, one_operation_dropped, agency="t", operations=["op", "op2"]).load()


async def test_soap_with_attachments_operations_are_refused_at_load(
    session: aiohttp.ClientSession, annex_c_map: UrlMap
) -> None:
    # The X-Road example WSDL: exampleServiceSwaRef's input is mime:multipartRelated. zeep used to load it
    # and send an empty Body.
    with pytest.raises(ConfigError) as info:
        await SoapTransport(session, XROAD_ANNEX_C, agency="t", url_map=annex_c_map).load()
    [(_, key, reason)] = info.value.problems
    assert key == "operations"
    assert reason.startswith(
        "SOAP with Attachments (mime:multipartRelated) is not supported: exampleServiceSwaRef (input)"
    )
    usable = SoapTransport(
        session, XROAD_ANNEX_C, agency="t", url_map=annex_c_map, operations=["exampleService", "exampleServiceMtom"]
    )
    await usable.load()
    assert usable.describe()["operations"] == ["exampleService", "exampleServiceMtom"]
