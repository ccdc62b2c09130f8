"""SOAP 1.1 and 1.2 Faults read from a parsed envelope and mapped onto the gateway error hierarchy.

Whether a fault is worth retrying is the fault table's call (fault_classes.py): transient faults
become AgencyUnavailable (retried), permanent ones AgencyRejected (never). A Fault that breaks the
SOAP rules is a MalformedAnswer.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from adapters.soap.fault_classes import DEFAULT, TRANSIENT, FaultTable
from gateway.errors import AgencyError, AgencyRejected, AgencyUnavailable, MalformedAnswer

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPES = {SOAP11_ENV: "1.1", SOAP12_ENV: "1.2"}

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class SoapFault:
    version: str  # "1.1" or "1.2"
    code: str  # local part, X-Road style dots kept: "Server.ServerProxy.ServiceFailed", "Sender"
    reason: str
    subcodes: tuple[str, ...] = ()
    actor: str | None = None
    detail: str | None = None  # the detail element's text content, for logs

    @property
    def full_code(self) -> str:
        return ".".join((self.code, *self.subcodes))

    @property
    def transient(self) -> bool:
        """By the built-in table; `fault_error` takes a plugin's table."""
        return DEFAULT.classify(self.full_code) == TRANSIENT


def _local(qname_text: str | None) -> str:
    return (qname_text or "").strip().rpartition(":")[2]


def _child(parent: etree._Element, name: str, ns: str) -> etree._Element | None:
    # SOAP 1.1 fault children are unqualified, but some stacks qualify them: accept both.
    found = parent.find(name)
    return found if found is not None else parent.find(f"{{{ns}}}{name}")


def _text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(str(t) for t in el.itertext()).strip()


def _broken(message: str) -> MalformedAnswer:
    return MalformedAnswer(f"malformed SOAP Fault: {message}")


def find_fault(envelope: etree._Element) -> SoapFault | None:
    """The Fault in Body, or None. Raises MalformedAnswer for a Fault that breaks SOAP's rules."""
    ns = etree.QName(envelope).namespace or ""
    if ns not in ENVELOPES:
        return None
    node = envelope.find(f"{{{ns}}}Body/{{{ns}}}Fault")
    if node is None:
        return None
    if (node.text or "").strip() or any((child.tail or "").strip() for child in node):
        raise _broken("text outside its child elements")
    if ns == SOAP11_ENV:
        code_el = _child(node, "faultcode", ns)
        if code_el is None or not _local(code_el.text):
            raise _broken("SOAP 1.1 Fault without faultcode")
        return SoapFault(
            version="1.1",
            code=_local(code_el.text),
            reason=_text(_child(node, "faultstring", ns))[:MAX_REASON],
            actor=_text(_child(node, "faultactor", ns)) or None,
            detail=_text(_child(node, "detail", ns))[:MAX_REASON] or None,
        )
    code = _local(node.findtext(f"{{{ns}}}Code/{{{ns}}}Value"))
    if not code:
        raise _broken("SOAP 1.2 Fault without Code/Value")
    subcodes: list[str] = []
    sub = node.find(f"{{{ns}}}Code/{{{ns}}}Subcode")
    while sub is not None:
        value = _local(sub.findtext(f"{{{ns}}}Value"))
        if not value:  # SOAP 1.2 part 1, 5.4.1.3: every Subcode has a Value
            raise _broken(f"SOAP 1.2 Fault {code} with a Subcode without Value")
        subcodes.append(value)
        sub = sub.find(f"{{{ns}}}Subcode")
    return SoapFault(
        version="1.2",
        code=code,
        reason=_text(node.find(f"{{{ns}}}Reason/{{{ns}}}Text"))[:MAX_REASON],
        subcodes=tuple(subcodes),
        actor=_text(node.find(f"{{{ns}}}Role")) or None,
        detail=_text(node.find(f"{{{ns}}}Detail"))[:MAX_REASON] or None,
    )


def fault_error(
    fault: SoapFault, *, agency: str, status: int | None = None, table: FaultTable = DEFAULT
) -> AgencyError:
    """The gateway error for a Fault: AgencyUnavailable (retried) or AgencyRejected (never)."""
    text = f"{agency}: SOAP {fault.version} fault {fault.full_code}: {fault.reason or '(no reason)'}"
    cls = AgencyUnavailable if table.classify(fault.full_code) == TRANSIENT else AgencyRejected
    return cls(text, agency=agency, status=status, code=fault.full_code)
