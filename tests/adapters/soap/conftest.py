"""Fixtures for SOAP tests: a shared client session, real loopback HTTP servers, realworld WSDLs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from adapters.soap.testing import Handler, SoapStub
from adapters.soap.transport import SoapTransport
from adapters.xml import UrlMap
from tests.adapters import realworld

DATA = Path(__file__).resolve().parents[2] / "data" / "soap"  # sources and licences: SOURCES.md there
DOSSIER_WSDL = DATA / "dossier-status.wsdl"
# The Italian e-invoicing exchange (SdI): SOAP 1.1 services that answer with MTOM.
SDI = DATA / "sdi"
SDI_RICEVI_FILE = SDI / "SdIRiceviFile" / "SdIRiceviFile_v1.0.wsdl"
SDI_RICEVI_NOTIFICA = SDI / "SdIRiceviNotifica" / "SdIRiceviNotifica_v1.0.wsdl"
SDI_TRASMISSIONE_FATTURE = SDI / "TrasmissioneFatture" / "TrasmissioneFatture_v1.1.wsdl"
# The X-Road message protocol's example WSDL (annex C): plain, SwA (swaRef) and MTOM operations.
XROAD_ANNEX_C = DATA / "xroad-annex-c" / "example.wsdl"


@pytest.fixture
def vies_wsdl() -> Path:
    return realworld("vies-checkvat", "checkVatService.wsdl")


@pytest.fixture
def xroad_wsdl() -> Path:
    return realworld("xroad-example-getrandom", "xroad6.wsdl")


@pytest.fixture
def queries() -> Path:
    """X-Road SOAP messages, good and deliberately broken; read them with asyncio.to_thread."""
    return realworld("xroad-soap-messages", "queries")


@pytest.fixture
def xroad_map() -> UrlMap:
    # The WSDL imports http://x-road.eu/xsd/xroad.xsd, which imports xml.xsd and identifiers.xsd relatively.
    return UrlMap({"http://x-road.eu/xsd/": realworld("xroad-example-getrandom")})


@pytest.fixture
def annex_c_map(xroad_map: UrlMap) -> UrlMap:
    folder = XROAD_ANNEX_C.parent
    return xroad_map.merged(
        UrlMap(
            {
                "http://ws-i.org/profiles/basic/1.1/swaref.xsd": folder / "swaref.xsd",
                "http://www.w3.org/2005/05/xmlmime": folder / "xmlmime.xsd",
            }
        )
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


StubFactory = Callable[..., Awaitable[tuple[SoapTransport, SoapStub]]]


@pytest.fixture
def soap_stub(aiohttp_server: AiohttpServer, session: aiohttp.ClientSession) -> StubFactory:
    """Start a SoapStub for `wsdl` on loopback; return (client transport pointed at it, stub)."""

    async def make(
        wsdl: Path,
        handlers: Mapping[str, Handler],
        *,
        echo_headers: bool = False,
        mtom: bool = False,
        port_name: str | None = None,
        url_map: UrlMap | None = None,
        **client_kwargs: Any,
    ) -> tuple[SoapTransport, SoapStub]:
        operations = client_kwargs.get("operations")
        server_side = SoapTransport(
            session, wsdl, agency="stub", url_map=url_map, port_name=port_name, operations=operations
        )
        await server_side.load()
        stub = SoapStub(server_side.binding, handlers, echo_headers=echo_headers, mtom=mtom)
        server = await aiohttp_server(stub.app())
        client = SoapTransport(
            session,
            wsdl,
            agency=client_kwargs.pop("agency", "test-agency"),
            url_map=url_map,
            port_name=port_name,
            address=str(server.make_url("/")),
            **client_kwargs,
        )
        return client, stub

    return make


RawFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def raw_server(aiohttp_server: AiohttpServer) -> RawFactory:
    """A loopback server answering every POST with fixed bytes; returns its URL."""

    async def make(
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "text/xml; charset=utf-8",
        delay: float = 0.0,
        chunked: bool = False,
    ) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            if delay:
                await asyncio.sleep(delay)
            if chunked:  # no Content-Length: the size limit must hold while streaming
                resp = web.StreamResponse(status=status, headers={"Content-Type": content_type})
                await resp.prepare(request)
                for i in range(0, len(body), 65536):
                    await resp.write(body[i : i + 65536])
                await resp.write_eof()
                return resp
            return web.Response(body=body, status=status, headers={"Content-Type": content_type})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = await aiohttp_server(app)
        return str(server.make_url("/soap"))

    return make
