"""X-Road header values are checked before anything is sent: a bad one is an AgencyRejected naming the
field, never a raw ValueError, UnicodeEncodeError or TypeError out of send()."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.soap.headers import XRoadClient, XRoadHeaders, XRoadService
from adapters.xml import UrlMap
from gateway.errors import AgencyRejected, is_retryable
from tests.adapters.soap.conftest import StubFactory

CLIENT = XRoadClient("VN", "GOV", "000123", "lienthong")
SERVICE = XRoadService("VN", "GOV", "000456", "registry", "getRandom", "v1")


def _headers(**changes: Any) -> XRoadHeaders:
    client = XRoadClient(**{**vars_of(CLIENT), **changes.pop("client", {})})
    service = XRoadService(**{**vars_of(SERVICE), **changes.pop("service", {})})
    return XRoadHeaders(client=client, service=service, **{"id": "msg-1", **changes})


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


@pytest.mark.parametrize(
    ("headers", "field", "why"),
    [
        (_headers(client={"member_code": "000\x00123"}), "client.memberCode", "'\\x00' (U+0000)"),
        (_headers(client={"member_code": "000\x85123"}), "client.memberCode", "U+0085"),  # a C1 control
        (_headers(client={"member_code": "000/123"}), "client.memberCode", "'/' (U+002F)"),
        (_headers(client={"subsystem_code": "a:b"}), "client.subsystemCode", "':' (U+003A)"),
        (_headers(client={"instance": "VN;"}), "client.xRoadInstance", "';'"),
        (_headers(service={"service_code": "get%41"}), "service.serviceCode", "'%'"),
        (_headers(service={"service_version": "v1\\x"}), "service.serviceVersion", "U+005C"),
        (_headers(service={"member_code": "\ufeff000456"}), "service.memberCode", "U+FEFF"),
        (_headers(service={"member_code": "0\u200b"}), "service.memberCode", "U+200B"),
        (_headers(service={"member_class": "G\ud800V"}), "service.memberClass", "U+D800"),  # a lone surrogate
        (_headers(client={"member_code": 123}), "client.memberCode", "must be text, not int"),
        (_headers(client={"member_code": " "}), "client.memberCode", "is empty"),
        (_headers(client={"member_code": "9" * 300}), "client.memberCode", "longer than 255"),
        (_headers(user_id="VN:CCCD:\x07"), "userId", "U+0007"),
        (_headers(user_id="VN:CCCD:\udc80"), "userId", "U+DC80"),
        (_headers(user_id=b"VN:CCCD:1"), "userId", "must be text, not bytes"),
        (_headers(id=None), None, None),  # fine: no id element at all
        (_headers(issue="số\ufffe1"), "issue", "U+FFFE"),
        (_headers(protocol_version=4.0), "protocolVersion", "must be text, not float"),
    ],
)
async def test_bad_header_values_are_rejected_before_sending(
    soap_stub: StubFactory,
    xroad_wsdl: Path,
    xroad_map: UrlMap,
    headers: XRoadHeaders,
    field: str | None,
    why: str | None,
) -> None:
    answer = {"getRandom": lambda r: {"randomValues": {"randomValue": [Decimal("0.5")]}}}
    client, stub = await soap_stub(xroad_wsdl, answer, echo_headers=True, url_map=xroad_map)
    if field is None:
        assert (await client.call("getRandom", headers=headers, amount=1)).body.randomValues.randomValue == [
            Decimal("0.5")
        ]
        return
    with pytest.raises(AgencyRejected) as info:
        await client.call("getRandom", headers=headers, amount=1)
    assert f"X-Road header {field}" in str(info.value) and why in str(info.value)
    assert info.value.code == "request-not-built"
    assert not is_retryable(info.value)
    assert stub.received == []  # nothing went out


async def test_other_unbuildable_requests_are_rejected_too(
    soap_stub: StubFactory, xroad_wsdl: Path, xroad_map: UrlMap
) -> None:
    client, stub = await soap_stub(xroad_wsdl, {"getRandom": lambda r: {}}, url_map=xroad_map)
    for kwargs in (
        {"amount": "\ud800"},  # a lone surrogate in a parameter
        {"headers": {"client": {"memberCode": "\x00"}}, "amount": 1},  # zeep's header-part form
        {"headers": [object()], "amount": 1},  # neither an element nor a mapping
    ):
        with pytest.raises(AgencyRejected, match="cannot build SOAP request 'getRandom'"):
            await client.call("getRandom", **kwargs)
    assert stub.received == []


def test_ids_from_configuration_are_checked_when_parsed() -> None:
    assert XRoadClient.parse("VN/GOV/000123/lienthong") == CLIENT
    assert XRoadService.parse("VN/GOV/000456/registry/getRandom/v1") == SERVICE
    with pytest.raises(ValueError, match=r"client\.memberCode has ':'"):
        XRoadClient.parse("VN/GOV/a:b")
    with pytest.raises(ValueError, match=r"service\.serviceCode has '%'"):
        XRoadService.parse("VN/GOV/000456/registry/get%20Random")
