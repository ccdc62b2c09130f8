"""A local SOAP endpoint for tests and demos: it reads requests and builds answers with the same zeep
binding the client uses, so both sides follow one WSDL. Never for production traffic.

One-way operations are answered 202 with an empty body. With `mtom=True` every answer (Faults too) is
multipart/related as MTOM/XOP services send it: the envelope in an application/xop+xml root part, and
each binary value a handler returned (bytes) in a part of its own that an xop:Include points to.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from lxml import etree
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding

from adapters.soap.faults import SOAP11_ENV, SOAP12_ENV
from adapters.soap.multipart import XOP_NS
from adapters.xml import parse_xml


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the stub saw it."""

    operation: str
    http_headers: Mapping[str, str]
    envelope: etree._Element
    value: Any  # zeep's deserialized input message

    def header(self, tag: str) -> etree._Element | None:
        """A SOAP header element by Clark name, e.g. "{http://x-road.eu/xsd/xroad.xsd}client"."""
        ns = etree.QName(self.envelope).namespace
        return self.envelope.find(f"{{{ns}}}Header/{tag}")


class StubFault(Exception):
    """Raise from a handler to answer with a SOAP Fault (code: Server/Client or Receiver/Sender)."""

    def __init__(self, code: str, reason: str, *, status: int = 500, subcode: str | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.status, self.subcode = code, reason, status, subcode


Handler = Callable[[Received], Mapping[str, Any] | None]


def fault_envelope(version: str, code: str, reason: str, *, subcode: str | None = None) -> bytes:
    """A SOAP 1.1 or 1.2 Fault envelope; `code` is a local name such as "Server" or "Sender"."""
    if version == "1.1":
        env = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soap": SOAP11_ENV})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11_ENV}}}Body"), f"{{{SOAP11_ENV}}}Fault")
        etree.SubElement(fault, "faultcode").text = f"soap:{code}" + (f".{subcode}" if subcode else "")
        etree.SubElement(fault, "faultstring").text = reason
    else:
        e = f"{{{SOAP12_ENV}}}"
        env = etree.Element(f"{e}Envelope", nsmap={"env": SOAP12_ENV, "app": "urn:lienthong:test"})
        fault = etree.SubElement(etree.SubElement(env, f"{e}Body"), f"{e}Fault")
        code_el = etree.SubElement(fault, f"{e}Code")
        etree.SubElement(code_el, f"{e}Value").text = f"env:{code}"
        if subcode:
            etree.SubElement(etree.SubElement(code_el, f"{e}Subcode"), f"{e}Value").text = f"app:{subcode}"
        text = etree.SubElement(etree.SubElement(fault, f"{e}Reason"), f"{e}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = reason
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _binary(values: Any) -> Iterator[bytes]:
    """Every bytes value inside a handler's answer (nested dicts and lists)."""
    if isinstance(values, bytes):
        yield values
    elif isinstance(values, Mapping):
        for v in values.values():
            yield from _binary(v)
    elif isinstance(values, list | tuple):
        for v in values:
            yield from _binary(v)


def mtom_package(envelope: etree._Element, binary: list[bytes], version: str) -> tuple[bytes, str]:
    """An envelope as an MTOM message: (body, Content-Type). Elements whose text is the base64 of one of
    `binary` get an xop:Include instead, and the bytes travel in a part of their own.

    Written out by hand rather than with email.generator: binary parts must go out byte for byte."""
    envelope = copy.deepcopy(envelope)
    parts: list[tuple[str, bytes]] = []
    by_text = {base64.b64encode(b).decode("ascii"): b for b in binary}
    for el in envelope.iter():
        if isinstance(el.tag, str) and len(el) == 0 and el.text and el.text.strip() in by_text:
            cid = f"{len(parts) + 1}.{uuid.uuid4().hex}@lienthong.test"
            parts.append((cid, by_text[el.text.strip()]))
            el.text = None
            etree.SubElement(el, f"{{{XOP_NS}}}Include", href=f"cid:{cid}")
    soap_type = "application/soap+xml" if version == "1.2" else "text/xml"
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@lienthong.test"
    out = [
        f"--{boundary}\r\n"
        f'Content-Type: application/xop+xml; charset=utf-8; type="{soap_type}"\r\n'
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{root_id}>\r\n\r\n".encode(),
        etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
    ]
    for cid, content in parts:
        out += [
            f"\r\n--{boundary}\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{cid}>\r\n\r\n".encode(),
            content,
        ]
    out.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; type="application/xop+xml"; start="<{root_id}>"; '
        f'start-info="{soap_type}"; boundary="{boundary}"'
    )
    return b"".join(out), content_type


class SoapStub:
    """Answers operations with `handlers[name](received)` -> output values; records every request."""

    def __init__(
        self,
        binding: SoapBinding,
        handlers: Mapping[str, Handler],
        *,
        echo_headers: bool = False,
        mtom: bool = False,
    ) -> None:
        self.binding = binding
        self.handlers = handlers
        self.echo_headers = echo_headers
        self.mtom = mtom
        self.version = "1.2" if isinstance(binding, Soap12Binding) else "1.1"
        self.content_type = ("application/soap+xml" if self.version == "1.2" else "text/xml") + "; charset=utf-8"
        self.received: list[Received] = []

    def app(self, path: str = "/") -> web.Application:
        app = web.Application()
        app.router.add_post(path, self.handle)
        return app

    def _operation(self, envelope: etree._Element) -> Any:
        ns = etree.QName(envelope).namespace
        body = envelope.find(f"{{{ns}}}Body")
        first = next(iter(body), None) if body is not None else None
        for op in self.binding._operations.values():
            element = getattr(op.input.body, "qname", None)
            if first is not None and (first.tag == element or etree.QName(first).localname == op.name):
                return op
        raise web.HTTPBadRequest(text="no operation matches the request body")

    async def handle(self, request: web.Request) -> web.Response:
        envelope = parse_xml(await request.read())
        op = self._operation(envelope)
        received = Received(op.name, dict(request.headers), envelope, op.input.deserialize(envelope))
        self.received.append(received)
        try:
            values = self.handlers[op.name](received) or {}
        except StubFault as fault:
            body = fault_envelope(self.version, fault.code, fault.reason, subcode=fault.subcode)
            return self._answer(etree.fromstring(body), [], status=fault.status)
        if op.output is None:  # one-way: taken, nothing to say (WS-I Basic Profile 1.1, R2750)
            return web.Response(status=202)
        answer = op.output.serialize(**values).content
        if self.echo_headers:
            self._echo(envelope, answer)
        return self._answer(answer, list(_binary(values)))

    def _answer(self, envelope: etree._Element, binary: list[bytes], *, status: int = 200) -> web.Response:
        if self.mtom:
            body, content_type = mtom_package(envelope, binary, self.version)
            return web.Response(body=body, status=status, headers={"Content-Type": content_type})
        body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return web.Response(body=body, status=status, headers=self._ct())

    def _ct(self) -> dict[str, str]:
        return {"Content-Type": self.content_type}

    @staticmethod
    def _echo(request: etree._Element, answer: etree._Element) -> None:
        """X-Road answers repeat the request headers."""
        ns = etree.QName(answer).namespace
        source = request.find(f"{{{etree.QName(request).namespace}}}Header")
        if source is None:
            return
        header = answer.find(f"{{{ns}}}Header")
        if header is None:
            header = etree.Element(f"{{{ns}}}Header")
            answer.insert(0, header)
        for child in list(header):
            header.remove(child)
        for child in source:
            if etree.QName(child).localname != "Security":  # WS-Security is per message, not echoed
                header.append(copy.deepcopy(child))
