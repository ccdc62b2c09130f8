"""SOAP headers passed per call: X-Road identification headers, and WS-Security UsernameToken.

X-Road headers are built as elements (namespaces of xroad.xsd and identifiers.xsd), so they work
whatever a WSDL names its header parts ("client" in xroad6.wsdl, "clientField" in the Finnish VTJ).
Their values are checked when the headers are built (inside `SoapTransport.send`, so a bad value is an
AgencyRejected before anything is sent): identifiers by the security server's own rule, every value
as text XML can carry.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lxml import etree
from zeep.wsse.username import UsernameToken

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
XROAD_ID_NS = "http://x-road.eu/xsd/identifiers"
NSMAP = {"xrd": XROAD_NS, "id": XROAD_ID_NS}

# The security server refuses identifiers (instance, member class and code, subsystem, service code
# and version) with an ISO control character or one of % : ; / \ U+200B U+FEFF (nordic-institute/
# X-Road, proxy-core MessageProcessorBase.validateIdentifierField). Every other header value must be
# text XML 1.0 can hold: no control characters but tab and line breaks, no lone surrogates, no U+FFFE/F.
_FORBIDDEN_IN_IDENTIFIER = re.compile("[\x00-\x1f\x7f-\x9f%:;/\\\\\u200b\ufeff]")
_NOT_XML_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_VALUE = 255  # X-Road keeps identifiers in 255-character columns


class XRoadHeaderError(ValueError):
    """An X-Road header value the security server would refuse, or XML cannot carry."""


def _checked(name: str, value: object, *, identifier: bool) -> str:
    if not isinstance(value, str):
        raise XRoadHeaderError(f"X-Road header {name} must be text, not {type(value).__name__}")
    if not value.strip():
        raise XRoadHeaderError(f"X-Road header {name} is empty")
    if len(value) > MAX_VALUE:
        raise XRoadHeaderError(f"X-Road header {name} is longer than {MAX_VALUE} characters")
    bad = (_FORBIDDEN_IN_IDENTIFIER if identifier else _NOT_XML_TEXT).search(value)
    if bad is None and identifier:
        bad = _NOT_XML_TEXT.search(value)
    if bad is not None:
        what = "an X-Road identifier" if identifier else "an X-Road header"
        char = bad.group()
        raise XRoadHeaderError(f"X-Road header {name} has {char!r} (U+{ord(char):04X}), not allowed in {what}")
    return value


def _x(name: str) -> str:
    return f"{{{XROAD_NS}}}{name}"


def _id(name: str) -> str:
    return f"{{{XROAD_ID_NS}}}{name}"


def _identifier(tag: str, object_type: str, codes: Sequence[tuple[str, str | None]]) -> etree._Element:
    el = etree.Element(_x(tag), {_id("objectType"): object_type}, nsmap=NSMAP)
    for name, value in codes:
        if value is not None:
            etree.SubElement(el, _id(name)).text = _checked(f"{tag}.{name}", value, identifier=True)
    return el


@dataclass(frozen=True, slots=True)
class XRoadClient:
    """The calling member or subsystem, e.g. XRoadClient.parse("VN/GOV/000123/lienthong")."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None

    @classmethod
    def parse(cls, text: str) -> XRoadClient:
        parts = text.split("/")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError(f"X-Road client id must be INSTANCE/CLASS/CODE[/SUBSYSTEM], got {text!r}")
        client = cls(*parts)
        client.element()  # XRoadHeaderError (a ValueError) for a code the security server refuses
        return client

    def element(self) -> etree._Element:
        return _identifier(
            "client",
            "SUBSYSTEM" if self.subsystem_code else "MEMBER",
            [
                ("xRoadInstance", self.instance),
                ("memberClass", self.member_class),
                ("memberCode", self.member_code),
                ("subsystemCode", self.subsystem_code),
            ],
        )


@dataclass(frozen=True, slots=True)
class XRoadService:
    """The called service, e.g. XRoadService.parse("VN/GOV/000456/registry/getRandom/v1")."""

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None
    service_code: str
    service_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> XRoadService:
        parts = text.split("/")
        if len(parts) not in (5, 6) or not all(parts):
            raise ValueError(f"X-Road service id must be INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION], got {text!r}")
        service = cls(*parts)
        service.element()
        return service

    def element(self) -> etree._Element:
        return _identifier(
            "service",
            "SERVICE",
            [
                ("xRoadInstance", self.instance),
                ("memberClass", self.member_class),
                ("memberCode", self.member_code),
                ("subsystemCode", self.subsystem_code),
                ("serviceCode", self.service_code),
                ("serviceVersion", self.service_version),
            ],
        )


@dataclass(frozen=True, slots=True)
class XRoadHeaders:
    """The X-Road message headers. `id` is unique per message; a fresh one is made unless given."""

    client: XRoadClient
    service: XRoadService
    user_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    protocol_version: str = "4.0"
    issue: str | None = None

    def elements(self) -> list[etree._Element]:
        """The header elements. XRoadHeaderError for a value the security server would refuse."""
        if not isinstance(self.client, XRoadClient) or not isinstance(self.service, XRoadService):
            raise XRoadHeaderError("X-Road headers need an XRoadClient and an XRoadService")
        out = [self.client.element(), self.service.element()]
        for name, value in (
            ("id", self.id),
            ("userId", self.user_id),
            ("issue", self.issue),
            ("protocolVersion", self.protocol_version),
        ):
            if value is not None:
                el = etree.Element(_x(name), nsmap=NSMAP)
                el.text = _checked(name, value, identifier=False)
                out.append(el)
        return out


# What `SoapTransport.call(..., headers=...)` accepts: X-Road headers, ready elements, or values for
# the header parts the WSDL declares (zeep's `_soapheaders` dict form).
SoapHeaders = XRoadHeaders | Sequence[etree._Element] | Mapping[str, Any]


def soapheaders(headers: SoapHeaders | None) -> list[etree._Element] | dict[str, Any] | None:
    """The value for zeep's `_soapheaders`."""
    if headers is None:
        return None
    if isinstance(headers, XRoadHeaders):
        return headers.elements()
    if isinstance(headers, Mapping):
        return dict(headers)
    return list(headers)


class Wsse(Protocol):
    """What zeep calls on a WS-Security object (zeep.wsse: UsernameToken, Signature ...)."""

    def apply(self, envelope: Any, headers: Any) -> Any: ...

    def verify(self, envelope: Any) -> Any: ...


def username_token(username: str, password: str, *, digest: bool = False) -> UsernameToken:
    """WS-Security UsernameToken; PasswordDigest (nonce + created) when `digest`, else PasswordText."""
    return UsernameToken(username, password, use_digest=digest)  # type: ignore[no-untyped-call]


def describe_wsse(wsse: Wsse | None) -> dict[str, Any] | None:
    """A printable description; the password is never included."""
    if wsse is None:
        return None
    out: dict[str, Any] = {"type": type(wsse).__name__}
    if isinstance(wsse, UsernameToken):
        out.update(username=wsse.username, password="***", digest=bool(wsse.use_digest))
    return out
