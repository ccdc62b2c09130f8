"""The tax simulator over HTTP: envelopes validated against the XSD, Faults, de-duplication, payments, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from adapters.soap.faults import SOAP11_ENV, find_fault
from adapters.xml import load_schema, parse_xml, validate
from contracts.samples import pdf_bytes
from gateway.sdk.simulation import Faults, SimulatorOptions
from plugins.tax.simulator import SETTINGS, create_simulator
from tests.plugins.tax.conftest import YY

NS = "urn:lienthong:tax:v1"
XSD = Path(__file__).resolve().parents[3] / "plugins" / "tax" / "wsdl" / "tax.xsd"
Client = TestClient[Any, Any]
CODE = "000.00.01.H26-261120-0001"
SELLER, BUYER = "048190001234", "079085004321"  # not in the synthetic register


def envelope(body: str, env_ns: str = SOAP11_ENV) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{env_ns}" xmlns:t="{NS}">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def attached(code: str, content: bytes, media_type: str = "application/pdf", **over: str) -> str:
    values = {
        "componentCode": code,
        "title": f"Giấy tờ {code}",
        "mediaType": media_type,
        "size": str(len(content)),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content": base64.b64encode(content).decode(),
    } | over
    return "<t:document>" + "".join(f"<t:{k}>{v}</t:{k}>" for k, v in values.items()) + "</t:document>"


DOCS = (
    attached("TK01LPTB", b"<?xml version='1.0'?><HSoThueDTu/>", "application/xml")
    + attached("TK03TNCN", pdf_bytes("To khai 03/BDS-TNCN"))
    + attached("HDCN", pdf_bytes("Hop dong chuyen nhuong"))
)


def declaration(
    rid: str = "req-0001", *, code: str = CODE, price: str = "3000000000", extra: str = "", docs: str = DOCS
) -> str:
    return (
        f"<t:SubmitLandTransferDeclaration><t:requestId>{rid}</t:requestId><t:dossierCode>{code}</t:dossierCode>"
        "<t:procedureCode>1.010912</t:procedureCode><t:receivingUnit>000.00.01.H26</t:receivingUnit>"
        f"<t:transferor><t:personalId>{SELLER}</t:personalId><t:fullName>Trần Thị Hồng</t:fullName></t:transferor>"
        f"<t:transferee><t:personalId>{BUYER}</t:personalId><t:fullName>Đỗ Văn Hải</t:fullName></t:transferee>"
        "<t:parcel><t:provinceCode>01</t:provinceCode><t:communeCode>00070</t:communeCode>"
        "<t:mapSheetNo>12</t:mapSheetNo><t:parcelNo>345</t:parcelNo><t:areaM2>85.50</t:areaM2>"
        "<t:address>Số 1 Tràng Tiền</t:address></t:parcel>"
        f"<t:declaredPrice>{price}</t:declaredPrice>{extra}{docs}</t:SubmitLandTransferDeclaration>"
    )


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return load_schema(XSD)  # outside the event loop: module fixtures are set up synchronously


@pytest.fixture
async def sim(aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    return await aiohttp_client(create_simulator(SimulatorOptions(faults=Faults())))


async def post(client: Client, body: bytes, action: str | None = None) -> tuple[int, etree._Element]:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = f'"urn:lienthong:tax:v1/{action}"'
    resp = await client.post("/ws", data=body, headers=headers)
    return resp.status, parse_xml(await resp.read())


def answer(doc: etree._Element, schema: etree.XMLSchema) -> etree._Element:
    """The Body's one element, checked against the XSD: the simulator answers what the WSDL promises."""
    [el] = doc.find(f"{{{SOAP11_ENV}}}Body")  # type: ignore[misc]
    validate(el, schema)
    return el


def t(el: etree._Element, path: str) -> str:
    return el.findtext(path.replace("t:", f"{{{NS}}}")) or ""


async def test_declaration_is_answered_with_notices(sim: Client, schema: etree.XMLSchema) -> None:
    status, doc = await post(sim, envelope(declaration()), "SubmitLandTransferDeclaration")
    assert status == 200
    el = answer(doc, schema)
    notices = el.findall(f"{{{NS}}}notice")
    assert [(t(n, "t:kind"), t(n, "t:amount"), t(n, "t:payerRole")) for n in notices] == [
        ("LPTB", "15000000", "TRANSFEREE"),
        ("TNCN", "60000000", "TRANSFEROR"),
    ]
    assert t(el, "t:totalAmount") == "75000000"
    assert t(el, "t:declarationId") == f"TK-{YY}-000001"
    assert t(el, "t:taxOffice/t:name") == "Thuế Thành phố Hà Nội"
    issued, due = (date.fromisoformat(t(notices[0], f"t:{d}")) for d in ("issuedDate", "dueDate"))
    assert due - issued == timedelta(days=10)


async def test_exemption_leaves_only_the_registration_fee(sim: Client, schema: etree.XMLSchema) -> None:
    body = declaration(extra="<t:pitExemption>FAMILY</t:pitExemption>")
    _, doc = await post(sim, envelope(body))
    assert [t(n, "t:kind") for n in answer(doc, schema).findall(f"{{{NS}}}notice")] == ["LPTB"]


async def test_same_request_id_gets_the_same_notices(sim: Client) -> None:
    _, first = await post(sim, envelope(declaration()))
    _, again = await post(sim, envelope(declaration()))
    assert etree.tostring(first) == etree.tostring(again)
    status, reused = await post(sim, envelope(declaration(price="4000000000")))
    fault = find_fault(reused)
    assert status == 500 and fault is not None
    assert (fault.code, fault.reason) == (
        "Client.RequestIdReused",
        "request id req-0001 was used for another declaration",
    )
    _, other = await post(sim, envelope(declaration("req-0002")))
    fault = find_fault(other)
    assert fault is not None and fault.code == "Client.DossierAlreadyDeclared"
    stats = await (await sim.get("/_sim/stats")).json()
    assert (stats["declarations"], stats["duplicates"], stats["fault_client"]) == (1, 1, 2)


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (envelope(declaration(price="-5")), "Client.InvalidMessage", "declaredPrice"),
        (envelope(declaration(code="HS-1")), "Client.InvalidMessage", "dossierCode"),
        (envelope(declaration(extra="<t:surprise>1</t:surprise>")), "Client.InvalidMessage", "surprise"),
        (envelope("<t:LookupTaxpayer/>"), "Client.InvalidMessage", "LookupTaxpayer"),
        (envelope("<t:GetTaxRefund/>"), "Client.UnknownOperation", "GetTaxRefund"),
        (envelope(""), "Client.InvalidMessage", "holds 0 elements"),
        (b"<not-xml", "Client.InvalidMessage", "not well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "Client.InvalidMessage", "DOCTYPE"),
        (envelope("<t:LookupTaxpayer/>", "http://www.w3.org/2003/05/soap-envelope"), "VersionMismatch", "SOAP 1.1"),
    ],
)
async def test_invalid_requests_are_client_faults(sim: Client, body: bytes, code: str, reason: str) -> None:
    status, doc = await post(sim, body)
    fault = find_fault(doc)
    assert status == 500 and fault is not None
    assert fault.code == code
    assert reason in fault.reason


async def test_soap_action_must_match(sim: Client) -> None:
    _, doc = await post(sim, envelope(declaration()), "LookupTaxpayer")
    fault = find_fault(doc)
    assert fault is not None and "does not match SubmitLandTransferDeclaration" in fault.reason


async def test_taxpayer_lookup(sim: Client, schema: etree.XMLSchema) -> None:
    await post(sim, envelope(declaration()))  # a first declaration enrols the people in it
    _, doc = await post(sim, envelope(f"<t:LookupTaxpayer><t:personalId>{BUYER}</t:personalId></t:LookupTaxpayer>"))
    el = answer(doc, schema)
    assert (t(el, "t:name"), t(el, "t:taxpayerType"), t(el, "t:status")) == ("Đỗ Văn Hải", "INDIVIDUAL", "ACTIVE")
    _, doc = await post(sim, envelope("<t:LookupTaxpayer><t:taxCode>0100000001</t:taxCode></t:LookupTaxpayer>"))
    fault = find_fault(doc)
    assert fault is not None and (fault.code, fault.reason) == ("Client.TaxpayerNotFound", "no taxpayer 0100000001")


async def test_pay_then_updates(sim: Client, schema: etree.XMLSchema) -> None:
    await post(sim, envelope(declaration()))
    assert (await sim.post("/_sim/pay", json={})).status == 400
    assert (await sim.post("/_sim/pay", json={"dossier_code": "000.00.01.H26-261120-0999"})).status == 404
    one = await (await sim.post("/_sim/pay", json={"notice_number": f"LPTB-{YY}-0000002"})).json()
    assert one == {"declaration_id": f"TK-{YY}-000001", "paid": [f"LPTB-{YY}-0000002"], "settled": False}
    rest = await (await sim.post("/_sim/pay", json={"dossier_code": CODE})).json()
    assert rest == {"declaration_id": f"TK-{YY}-000001", "paid": [f"TNCN-{YY}-0000003"], "settled": True}
    _, doc = await post(sim, envelope("<t:GetNoticeUpdates><t:sinceSequence>0</t:sinceSequence></t:GetNoticeUpdates>"))
    el = answer(doc, schema)
    events = el.findall(f"{{{NS}}}event")
    assert [(t(e, "t:sequence"), t(e, "t:eventType")) for e in events] == [
        ("1", "PAID"),
        ("2", "PAID"),
        ("3", "SETTLED"),
    ]
    assert t(events[2], "t:confirmation/t:mediaType") == "application/pdf"
    assert (t(el, "t:lastSequence"), t(el, "t:moreAvailable")) == ("3", "false")
    page = "<t:GetNoticeUpdates><t:sinceSequence>1</t:sinceSequence><t:maxEvents>1</t:maxEvents></t:GetNoticeUpdates>"
    _, doc = await post(sim, envelope(page))
    assert (t(answer(doc, schema), "t:lastSequence"), t(answer(doc, schema), "t:moreAvailable")) == ("2", "true")
    declared = await (await sim.get("/_sim/declarations")).json()
    assert [n["status"] for n in declared[0]["notices"]] == ["PAID", "PAID"]


async def test_auto_pay(aiohttp_client: Callable[..., Awaitable[Client]]) -> None:
    sim = await aiohttp_client(create_simulator(SimulatorOptions(settings={"auto_pay_after": 0.05})))
    await post(sim, envelope(declaration()))
    for _ in range(100):
        declared = await (await sim.get("/_sim/declarations")).json()
        if declared[0]["settled"]:
            break
        await asyncio.sleep(0.02)
    assert declared[0]["settled"]
    assert (await (await sim.get("/_sim/stats")).json())["auto_paid"] == 2


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="auto_pay"):
        create_simulator(SimulatorOptions(settings={"auto_pay": 3}))


async def test_server_fault(sim: Client) -> None:
    sim.app[SETTINGS].server_fault_rate = 1.0
    status, doc = await post(sim, envelope(declaration()))
    fault = find_fault(doc)
    assert status == 500 and fault is not None and fault.transient
    assert fault.code == "Server.ServiceUnavailable"


async def test_client_fault(sim: Client) -> None:
    sim.app[SETTINGS].client_fault_rate = 1.0
    status, doc = await post(sim, envelope(declaration()))
    fault = find_fault(doc)
    assert status == 500 and fault is not None and not fault.transient
    assert fault.code == "Client.RequestRefused"


async def test_malformed_answers_are_broken_xml(sim: Client) -> None:
    await sim.post("/_sim/faults", json={"malformed_rate": 1.0})
    resp = await sim.post("/ws", data=envelope(declaration()), headers={"Content-Type": "text/xml"})
    assert resp.status == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(await resp.read())


async def test_serves_its_wsdl_and_schema(sim: Client) -> None:
    wsdl = await (await sim.get("/ws?wsdl")).text()
    here = str(sim.make_url("/ws"))
    assert f'<soap:address location="{here}"/>' in wsdl
    assert f'schemaLocation="{here}?xsd=tax.xsd"' in wsdl
    xsd = await (await sim.get("/ws?xsd=tax.xsd")).read()
    assert xsd == await asyncio.to_thread(XSD.read_bytes)
    assert (await sim.get("/ws")).status == 405


# -- documents -----------------------------------------------------------------------------------------


async def test_documents_are_checked_and_counted(sim: Client) -> None:
    status, _ = await post(sim, envelope(declaration("docs-1")), "SubmitLandTransferDeclaration")
    assert status == 200
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["documents_ok"] == 1 and "documents_refused" not in stats


@pytest.mark.parametrize(
    ("docs", "problem"),
    [
        (DOCS.split("</t:document>")[0] + "</t:document>", "TK03TNCN: required by procedure 1.010912 and missing"),
        (DOCS.replace("<t:mediaType>application/xml</t:mediaType>", "<t:mediaType>image/gif</t:mediaType>"),
         "image/gif is not accepted"),
        (attached("TK01LPTB", b"<a/>", "application/xml", sha256="0" * 64) + DOCS.split("</t:document>", 1)[1],
         "the content's sha256 is not the declared one"),
    ],
)  # fmt: skip
async def test_a_declaration_without_its_documents_whole_is_refused(sim: Client, docs: str, problem: str) -> None:
    status, doc = await post(sim, envelope(declaration("docs-2", docs=docs)), "SubmitLandTransferDeclaration")
    assert status == 500
    fault = find_fault(doc)
    assert fault is not None and fault.code == "Client.InvalidDocuments" and problem in fault.reason, fault
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["documents_refused"] == 1 and "declarations" not in stats
