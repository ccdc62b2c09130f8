"""Reading one SOAP answer: HTTP status, MIME parts, hardened parse, Fault mapping, shape and schema
checks, then zeep.

zeep is lenient on input: a Body holding some other element than the WSDL's output comes back as a
result full of None (`check_body` refuses that), and a value it cannot convert becomes None (the
schema check refuses that, naming the element). Once libxml2 has validated the Body, zeep maps it
without its strict mode, which refuses some schema-valid answers (a choice between two sequences).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from zeep.wsdl.bindings.soap import SoapBinding
from zeep.wsdl.messages.soap import DocumentMessage

from adapters.errors import error_for_status
from adapters.soap.answer_schema import problems
from adapters.soap.fault_classes import DEFAULT, FaultTable
from adapters.soap.faults import ENVELOPES, fault_error, find_fault
from adapters.soap.headers import Wsse
from adapters.soap.multipart import Attachment, read_related, resolve_xop
from adapters.xml import parse_xml
from gateway.errors import AgencyError, MalformedAnswer, UnsafeAnswer

# An HTML page (a proxy's or a login page) rather than XML: "<!DOCTYPE html>" without an internal
# subset, or an <html> root, after an optional BOM, XML declaration and comments.
_HTML = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*"
    rb"(?:<!DOCTYPE\s+html(?:\s[^\[>]*)?>|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)


def looks_like_html(data: bytes) -> bool:
    return _HTML.match(data[:4096]) is not None


@dataclass(frozen=True, slots=True)
class SoapAnswer:
    """An answer as read: zeep's value, the HTTP status, and the attachments of a multipart answer
    (MTOM parts already put in place are there too, with `included` set)."""

    value: Any
    status: int
    attachments: tuple[Attachment, ...] = ()

    def attachment(self, content_id: str) -> Attachment | None:
        return next((a for a in self.attachments if a.content_id == content_id), None)


@dataclass(frozen=True)
class AnswerRules:
    """What reading an answer needs besides the answer: the binding and what the transport was told."""

    binding: SoapBinding
    version: str  # "1.1" or "1.2"
    agency: str
    max_bytes: int
    wsse: Wsse | None = None
    faults: FaultTable = DEFAULT
    schema: etree.XMLSchema | None = None  # None: libxml2 could not compile the WSDL's schema
    retry_invalid: Collection[str] = frozenset()  # operations whose schema-invalid answers are retried
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def problems(self, element: etree._Element) -> list[str]:
        assert self.schema is not None
        with self._lock:  # a validator's error log is shared: one validation at a time
            return problems(self.schema, element)


def check_body(operation: Any, envelope: etree._Element) -> list[etree._Element]:
    """A document/literal answer must carry exactly the WSDL's output element in its Body.
    Returns the Body's elements."""
    ns = etree.QName(envelope).namespace
    body = envelope.find(f"{{{ns}}}Body")
    if body is None:
        raise MalformedAnswer("SOAP Envelope without Body")
    output = operation.output
    children = [c for c in body if isinstance(c.tag, str)]
    if output is None or output.body is None:
        return children
    if not children:
        raise MalformedAnswer("empty SOAP Body where the WSDL promises an answer")
    if isinstance(output, DocumentMessage) and not output._is_body_wrapped:
        expected = output.body.qname
        if len(children) != 1 or children[0].tag != expected:
            got = ", ".join(str(c.tag) for c in children)
            raise MalformedAnswer(f"SOAP Body holds {got}; the WSDL promises {expected}")
    return children


def _declared(operation: Any) -> set[str]:
    """The Clark names of the global elements a document/literal output puts in the Body."""
    output = operation.output
    if not isinstance(output, DocumentMessage) or output.body is None:
        return set()
    if not output._is_body_wrapped:
        qname = getattr(output.body, "qname", None)
        return {qname.text} if qname is not None else set()
    return {
        el.qname.text
        for _, el in getattr(output.body.type, "elements", [])
        if getattr(el, "qname", None) is not None and getattr(el, "is_global", False)
    }


_PREFIX = re.compile(r"(?<=/)[^/:\[\]]+:")


def _path(problem: str) -> str:
    """The path of "/ns2:answer/ns2:id: Element ..." as "Body/answer/id" (the prefixes are the agency's)."""
    path, sep, message = problem.partition(": ")
    if not path.startswith("/") or not sep:
        return problem
    return f"Body{_PREFIX.sub('', path)}: {message}"


def _malformed(text: str, rules: AnswerRules, status: int, **kw: Any) -> MalformedAnswer:
    return MalformedAnswer(f"{rules.agency}: {text}", agency=rules.agency, status=status, **kw)


def read_answer(rules: AnswerRules, operation: str, status: int, content_type: str, data: bytes) -> SoapAnswer:
    """The answer read; otherwise the gateway error it deserves."""
    agency = rules.agency
    ok = 200 <= status < 300
    media = content_type.split(";", 1)[0].strip().lower()
    snippet = data[:200].decode("utf-8", "replace")
    op = rules.binding.get(operation)  # type: ignore[no-untyped-call]
    if not data.strip():
        if ok and op.output is None:
            return SoapAnswer(None, status)  # a one-way operation: 200 or 202, nothing to read
        if ok:
            raise _malformed(f"empty answer (HTTP {status}) to {operation!r}, which has an output", rules, status)
        raise error_for_status(agency, status, "empty body")
    attachments: tuple[Attachment, ...] = ()
    complete = True
    xml = data
    if media == "multipart/related":
        try:
            related = read_related(content_type, data)
        except (MalformedAnswer, UnsafeAnswer) as exc:
            if not ok:
                raise error_for_status(agency, status, str(exc)) from exc
            raise _relocated(exc, agency, status) from exc
        xml, attachments, complete = related.root, related.attachments, related.complete
    elif media.startswith("multipart/"):
        if not ok:
            raise error_for_status(agency, status, snippet)
        raise _malformed(f"unsupported answer type {media}", rules, status)
    if looks_like_html(xml):
        # An error page, whatever its Content-Type says: the HTTP status says more than its body.
        if not ok:
            raise error_for_status(agency, status, snippet)
        page = f"an HTML page (HTTP {status}, {media or 'no type'}) where a SOAP envelope was expected"
        raise _malformed(page, rules, status)
    try:
        doc = parse_xml(xml, max_bytes=rules.max_bytes, agency=agency)
    except (MalformedAnswer, UnsafeAnswer) as exc:
        if ok:
            exc.status = status
            raise
        raise error_for_status(agency, status, snippet) from exc
    try:
        fault = find_fault(doc)
    except MalformedAnswer as exc:
        raise _relocated(exc, agency, status) from exc
    if fault is not None:
        raise fault_error(fault, agency=agency, status=status, table=rules.faults)
    if not ok:
        raise error_for_status(agency, status, "no SOAP Fault in the answer")
    if not complete:
        raise _malformed("multipart answer cut off: its closing boundary is missing", rules, status)
    namespace = etree.QName(doc).namespace or ""
    if ENVELOPES.get(namespace) != rules.version:
        got = f"SOAP {ENVELOPES[namespace]}" if namespace in ENVELOPES else f"root element {doc.tag}"
        raise _malformed(f"expected a SOAP {rules.version} Envelope, got {got}", rules, status)
    try:
        children = check_body(op, doc)
        if attachments:
            attachments = resolve_xop(doc, attachments)
    except MalformedAnswer as exc:
        raise _relocated(exc, agency, status) from exc
    validated = _validate(rules, op, operation, children, status)
    try:
        if rules.wsse is not None:
            rules.wsse.verify(doc)
        if validated:  # libxml2 has checked every value: zeep maps without its strict mode
            with rules.binding.wsdl.settings(strict=False):
                return SoapAnswer(op.process_reply(doc), status, attachments)
        return SoapAnswer(op.process_reply(doc), status, attachments)
    except Exception as exc:  # the answer is untrusted: anything zeep cannot read is unusable
        raise _malformed(
            f"answer to {operation!r} does not fit the WSDL: {type(exc).__name__}: {exc}", rules, status
        ) from exc


def _validate(rules: AnswerRules, op: Any, operation: str, children: list[etree._Element], status: int) -> bool:
    """Check the Body's elements against the schema. True when all of them were checked."""
    if rules.schema is None or not children:
        return False
    declared = _declared(op)
    found: list[str] = []
    checked = 0
    for child in children:
        if child.tag not in declared:
            continue
        checked += 1
        found.extend(_path(p) for p in rules.problems(child))
    if found:
        raise _malformed(
            f"answer to {operation!r} breaks the WSDL's schema: " + "; ".join(found),
            rules,
            status,
            code="invalid-answer",
            retryable=operation in rules.retry_invalid,  # the agency would answer the same again
        )
    return checked == len(children)


def _relocated(exc: AgencyError, agency: str, status: int) -> AgencyError:
    """The same error, named after the agency and with the HTTP status."""
    return type(exc)(f"{agency}: {exc}", agency=agency, status=status)
