"""Every real-world WSDL loads offline; anything not mapped fails instead of being fetched."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.soap.offline import OfflineTransport, load_client
from adapters.soap.transport import SoapTransport
from adapters.xml import UnmappedURL, UrlMap, is_remote
from gateway.errors import ConfigError
from tests.adapters import REALWORLD, realworld

XROAD_XSD = "http://x-road.eu/xsd/xroad.xsd"
# Remote documents the WSDLs import, all served from local copies (never fetched).
_MAPPED = {
    XROAD_XSD,
    "http://x-road.eu/xsd/xml.xsd",
    "http://x-road.eu/xsd/identifiers.xsd",
    "http://www.w3.org/2001/xml.xsd",
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
