"""Reading one SOAP answer: HTTP status, hardened parse, Fault mapping, shape check, then zeep.

zeep is lenient on input: a Body holding some other element than the WSDL's output comes back as a
result full of None. `check_body` refuses that before zeep sees the envelope.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from zeep.wsdl.bindings.soap import SoapBinding
from zeep.wsdl.messages.soap import DocumentMessage

from adapters.errors import error_for_status
from adapters.soap.faults import ENVELOPES, fault_error, find_fault
from adapters.soap.headers import Wsse
from adapters.xml import parse_xml
from gateway.errors import MalformedAnswer, UnsafeAnswer


def check_body(operation: Any, envelope: etree._Element) -> None:
    """A document/literal answer must carry exactly the WSDL's output element in its Body."""
    ns = etree.QName(envelope).namespace
    body = envelope.find(f"{{{ns}}}Body")
    if body is None:
        raise MalformedAnswer("SOAP Envelope without Body")
    output = operation.output
    children = [c for c in body if isinstance(c.tag, str)]
    if output is None or output.body is None:
        return
    if not children:
        raise MalformedAnswer("empty SOAP Body where the WSDL promises an answer")
    if isinstance(output, DocumentMessage) and not output._is_body_wrapped:
        expected = output.body.qname
        if len(children) != 1 or children[0].tag != expected:
            got = ", ".join(str(c.tag) for c in children)
            raise MalformedAnswer(f"SOAP Body holds {got}; the WSDL promises {expected}")


def _located(exc: MalformedAnswer, agency: str, status: int) -> MalformedAnswer:
    return MalformedAnswer(f"{agency}: {exc}", agency=agency, status=status)


def read_answer(
    binding: SoapBinding,
    version: str,
    operation: str,
    status: int,
    content_type: str,
    data: bytes,
    *,
    agency: str,
    max_bytes: int,
    wsse: Wsse | None = None,
) -> Any:
    """zeep's result for a good answer; otherwise the gateway error the answer deserves."""
    ok = 200 <= status < 300
    media = content_type.split(";", 1)[0].strip().lower()
    snippet = data[:200].decode("utf-8", "replace")
    op = binding.get(operation)  # type: ignore[no-untyped-call]
    if not data.strip():
        if status == 202 or (ok and op.output is None):
            return None  # one-way operation
        if ok:
            raise MalformedAnswer(f"{agency}: empty answer to {operation!r}", agency=agency, status=status)
        raise error_for_status(agency, status, "empty body")
    if media.startswith("multipart/") or media == "text/html":
        if not ok:
            raise error_for_status(agency, status, snippet)
        raise MalformedAnswer(f"{agency}: unsupported answer type {media}", agency=agency, status=status)
    try:
        doc = parse_xml(data, max_bytes=max_bytes, agency=agency)
    except (MalformedAnswer, UnsafeAnswer) as exc:
        if ok:
            exc.status = status
            raise
        # An error page (often HTML with a DOCTYPE): the HTTP status says more than its body.
        raise error_for_status(agency, status, snippet) from exc
    try:
        fault = find_fault(doc)
    except MalformedAnswer as exc:
        raise _located(exc, agency, status) from exc
    if fault is not None:
        raise fault_error(fault, agency=agency, status=status)
    if not ok:
        raise error_for_status(agency, status, "no SOAP Fault in the answer")
    namespace = etree.QName(doc).namespace or ""
    if ENVELOPES.get(namespace) != version:
        got = f"SOAP {ENVELOPES[namespace]}" if namespace in ENVELOPES else f"root element {doc.tag}"
        raise MalformedAnswer(f"{agency}: expected a SOAP {version} Envelope, got {got}", agency=agency, status=status)
    try:
        check_body(op, doc)
    except MalformedAnswer as exc:
        raise _located(exc, agency, status) from exc
    try:
        if wsse is not None:
            wsse.verify(doc)
        return op.process_reply(doc)
    except Exception as exc:  # the answer is untrusted: anything zeep cannot read is unusable
        raise MalformedAnswer(
            f"{agency}: answer to {operation!r} does not fit the WSDL: {type(exc).__name__}: {exc}",
            agency=agency,
            status=status,
        ) from exc
