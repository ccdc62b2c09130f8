"""SOAP headers passed per call: X-Road identification headers, and WS-Security UsernameToken.

X-Road headers are built as elements (namespaces of xroad.xsd and identifiers.xsd), so they work
whatever a WSDL names its header parts ("client" in xroad6.wsdl, "clientField" in the Finnish VTJ).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lxml import etree
from zeep.wsse.username import UsernameToken

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
XROAD_ID_NS = "http://x-road.eu/xsd/identifiers"
NSMAP = {"xrd": XROAD_NS, "id": XROAD_ID_NS}


def _x(name: str) -> str:
    return f"{{{XROAD_NS}}}{name}"


def _id(name: str) -> str:
    return f"{{{XROAD_ID_NS}}}{name}"


def _identifier(tag: str, object_type: str, codes: Sequence[tuple[str, str | None]]) -> etree._Element:
    el = etree.Element(_x(tag), {_id("objectType"): object_type}, nsmap=NSMAP)
    for name, value in codes:
        if value is not None:
            etree.SubElement(el, _id(name)).text = value
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
        return cls(*parts)

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
        return cls(*parts)

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
        out = [self.client.element(), self.service.element()]
        for name, value in (
            ("id", self.id),
            ("userId", self.user_id),
            ("issue", self.issue),
            ("protocolVersion", self.protocol_version),
        ):
            if value is not None:
                el = etree.Element(_x(name), nsmap=NSMAP)
                el.text = value
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
