"""The SOAP 1.1 side of the tax simulator: envelopes checked against the XSD, answers built by zeep from
the same WSDL the connector reads, refusals answered as SOAP Faults (HTTP 500, as WS-I BP 1.1 says)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from lxml import etree
from zeep.helpers import serialize_object
from zeep.wsdl.bindings.soap import SoapBinding

from adapters.soap.faults import SOAP11_ENV
from adapters.soap.offline import load_client
from adapters.soap.testing import fault_envelope
from adapters.xml import InvalidDocument, load_schema, parse_xml, validate
from gateway.sdk import MalformedAnswer, UnsafeAnswer
from plugins.tax.ledger import LedgerFault

log = structlog.get_logger("lienthong.simulator")

CONTENT_TYPE = "text/xml; charset=utf-8"
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # declarations carry their documents in base64
Handler = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass
class SoapService:
    """One SOAP port: the binding's operations answered by `handlers[operation name](values)`."""

    binding: SoapBinding
    schema: etree.XMLSchema
    wsdl: bytes
    xsd: bytes
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    operations: dict[str, Any] = field(default_factory=dict)  # input element's Clark name -> operation

    def __post_init__(self) -> None:
        self.operations = {op.input.body.qname.text: op for op in self.binding._operations.values()}

    @classmethod
    def load(cls, wsdl_path: Path, xsd_path: Path) -> SoapService:
        """Blocking (zeep, lxml and file reads): run it in a thread."""
        client = load_client(wsdl_path)
        service = next(iter(client.wsdl.services.values()))
        binding = next(iter(service.ports.values())).binding
        return cls(binding, load_schema(xsd_path), wsdl_path.read_bytes(), xsd_path.read_bytes())

    def fault(self, code: str, subcode: str | None, reason: str) -> web.Response:
        self.stats[f"fault_{code.lower()}"] += 1
        body = fault_envelope("1.1", code, reason[:1000], subcode=subcode)
        return web.Response(status=500, body=body, headers={"Content-Type": CONTENT_TYPE})

    async def handle(self, request: web.Request) -> web.Response:
        data = await request.read()
        try:
            envelope = parse_xml(data, max_bytes=MAX_REQUEST_BYTES)
        except (MalformedAnswer, UnsafeAnswer) as exc:
            return self.fault("Client", "InvalidMessage", str(exc).replace("answer", "request"))
        if envelope.tag != f"{{{SOAP11_ENV}}}Envelope":
            return self.fault("VersionMismatch", None, f"expected a SOAP 1.1 Envelope, got {envelope.tag}")
        body = envelope.find(f"{{{SOAP11_ENV}}}Body")
        parts = [] if body is None else [c for c in body if isinstance(c.tag, str)]
        if len(parts) != 1:
            return self.fault("Client", "InvalidMessage", f"the Body holds {len(parts)} elements; one is expected")
        op = self.operations.get(parts[0].tag)
        if op is None:
            return self.fault("Client", "UnknownOperation", f"no operation takes {parts[0].tag}")
        action = request.headers.get("SOAPAction", "").strip().strip('"')
        if action and action != op.soapaction:
            return self.fault("Client", "InvalidMessage", f"SOAPAction {action} does not match {op.name}")
        try:
            validate(copy.deepcopy(parts[0]), self.schema)
        except InvalidDocument as exc:
            return self.fault("Client", "InvalidMessage", "; ".join(exc.problems))
        values = serialize_object(op.input.body.parse(parts[0], self.binding.wsdl.types), dict)  # type: ignore[no-untyped-call]
        self.stats[op.name] += 1
        try:
            answer = self.handlers[op.name](values)
        except LedgerFault as f:
            return self.fault(f.code, f.subcode, f.reason)
        except Exception:
            log.exception("tax_simulator_error", operation=op.name)
            return self.fault("Server", "InternalError", "internal error of the tax service")
        content = op.output.serialize(**answer).content
        xml = etree.tostring(content, xml_declaration=True, encoding="utf-8")
        return web.Response(body=xml, headers={"Content-Type": CONTENT_TYPE})

    def describe(self, request: web.Request) -> web.Response:
        """GET ?wsdl: the WSDL with this server's address; GET ?xsd=tax.xsd: the schema it imports."""
        here = str(request.url.with_query(None))
        if "wsdl" in request.query:
            text = self.wsdl.decode().replace("http://tax.invalid/ws", here)
            text = text.replace('schemaLocation="tax.xsd"', f'schemaLocation="{here}?xsd=tax.xsd"')
            return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
        if request.query.get("xsd") == "tax.xsd":
            return web.Response(body=self.xsd, headers={"Content-Type": CONTENT_TYPE})
        return web.Response(status=405, text="POST SOAP 1.1 envelopes here; GET ?wsdl for the service description")
