"""SoapStub, the test endpoint built from a WSDL: one-way operations, and MTOM answers a MIME parser reads."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from adapters.soap.multipart import XOP_NS, read_related
from adapters.soap.testing import Received, mtom_package
from tests.adapters.soap.conftest import SDI_TRASMISSIONE_FATTURE, StubFactory

NOTICES = {
    "RicevutaConsegna": "ricevutaConsegna",
    "NotificaMancataConsegna": "notificaMancataConsegna",
    "NotificaScarto": "notificaScarto",
    "NotificaEsito": "notificaEsito",
    "NotificaDecorrenzaTermini": "notificaDecorrenzaTermini",
    "AttestazioneTrasmissioneFattura": "attestazioneTrasmissioneFattura",
}


@pytest.mark.parametrize("mtom", [False, True], ids=["plain", "mtom"])
async def test_one_way_operations_are_answered_202(soap_stub: StubFactory, mtom: bool) -> None:
    # TrasmissioneFatture: the SdI tells an invoice's sender what became of it; nothing comes back.
    taken: list[str] = []

    def take(received: Received) -> None:
        taken.append(received.operation)
        assert received.value.File == b"<notifica/>"

    client, stub = await soap_stub(SDI_TRASMISSIONE_FATTURE, dict.fromkeys(NOTICES, take), mtom=mtom)
    for i, operation in enumerate(NOTICES, start=1):
        name = f"IT01234567890_0000{i}_RC_001.xml"
        assert await client.call(operation, IdentificativoSdI=i, NomeFile=name, File=b"<notifica/>") is None
    assert taken == list(NOTICES)
    assert [etree.QName(r.envelope[-1][0]).localname for r in stub.received] == list(NOTICES.values())


def test_mtom_package_moves_binary_values_to_parts() -> None:
    env = etree.fromstring(
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><a>'
        b"<name>IT01.xml</name><file>" + base64.b64encode(b"\x00\x01binary\r\n") + b"</file></a></e:Body></e:Envelope>"
    )
    body, content_type = mtom_package(env, [b"\x00\x01binary\r\n"], "1.1")
    assert content_type.startswith('multipart/related; type="application/xop+xml"; start="<root.')
    related = read_related(content_type, body)
    root = etree.fromstring(related.root)
    include = root.find(f".//file/{{{XOP_NS}}}Include")
    assert include is not None
    [part] = related.attachments
    assert include.get("href") == f"cid:{part.content_id}"
    assert (part.media_type, part.content) == ("application/octet-stream", b"\x00\x01binary\r\n")
    assert root.findtext(".//name") == "IT01.xml"  # text that is not binary stays where it is


def test_mtom_package_without_binary_is_a_root_part_alone() -> None:
    env = etree.fromstring(b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>')
    body, content_type = mtom_package(env, [], "1.2")
    assert 'start-info="application/soap+xml"' in content_type
    related = read_related(content_type, body)
    assert (related.attachments, related.complete) == ((), True)
    assert etree.fromstring(related.root).tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
