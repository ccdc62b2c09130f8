"""Answers are checked against the WSDL's schema before zeep maps them: a value zeep would turn into None,
or a missing or nil required element, is a MalformedAnswer naming the element, permanent by default."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiohttp
import pytest

from adapters.soap.transport import SoapTransport
from adapters.xml import UrlMap
from gateway.errors import MalformedAnswer, is_retryable
from tests.adapters import REALWORLD
from tests.adapters.soap.conftest import DATA, SDI_RICEVI_FILE, RawFactory
from tests.adapters.soap.test_offline import EXPECTED

ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
SDI_TYPES = "http://www.fatturapa.gov.it/sdi/ws/trasmissione/v1.0/types"
PERSON_WSDL = DATA / "person-lookup.wsdl"
TAX_WSDL = Path(__file__).resolve().parents[3] / "plugins" / "tax" / "wsdl" / "tax.wsdl"


def _sdi_answer(inner: str) -> bytes:
    return (
        f'<S:Envelope xmlns:S="{ENV11}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><S:Body>'
        f'<ns2:rispostaSdIRiceviFile xmlns:ns2="{SDI_TYPES}">{inner}</ns2:rispostaSdIRiceviFile>'
        f"</S:Body></S:Envelope>"
    ).encode()


async def _ricevi_file(session: aiohttp.ClientSession, url: str, **kwargs: object) -> object:
    client = SoapTransport(session, SDI_RICEVI_FILE, agency="sdi", address=url, **kwargs)  # type: ignore[arg-type]
    return await client.call("RiceviFile", NomeFile="IT01234567890_00001.xml", File=b"<fattura/>")


async def test_a_valid_answer_is_mapped(raw_server: RawFactory, session: aiohttp.ClientSession) -> None:
    url = await raw_server(
        _sdi_answer(
            "<IdentificativoSdI>123</IdentificativoSdI><DataOraRicezione>2025-03-14T10:30:00Z</DataOraRicezione>"
        )
    )
    result = await _ricevi_file(session, url)
    assert result.IdentificativoSdI == 123  # type: ignore[attr-defined]
    assert result.DataOraRicezione == dt.datetime(2025, 3, 14, 10, 30, tzinfo=dt.UTC)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("inner", "problems"),
    [
        (  # zeep alone gives IdentificativoSdI=None
            "<IdentificativoSdI>ABC</IdentificativoSdI><DataOraRicezione>2025-03-14T10:30:00Z</DataOraRicezione>",
            ["Body/rispostaSdIRiceviFile/IdentificativoSdI: Element 'IdentificativoSdI': 'ABC' is not a valid value"],
        ),
        (  # zeep alone gives DataOraRicezione=None
            "<IdentificativoSdI>123</IdentificativoSdI><DataOraRicezione>30.06.1966</DataOraRicezione>",
            ["Body/rispostaSdIRiceviFile/DataOraRicezione: Element 'DataOraRicezione': '30.06.1966' is not a valid"],
        ),
        (  # a required element missing
            "<IdentificativoSdI>123</IdentificativoSdI>",
            [f"Body/rispostaSdIRiceviFile: Element '{{{SDI_TYPES}}}rispostaSdIRiceviFile': Missing child element(s)"],
        ),
        (  # nil where the schema does not allow it
            '<IdentificativoSdI xsi:nil="true"/><DataOraRicezione>2025-03-14T10:30:00Z</DataOraRicezione>',
            ["Body/rispostaSdIRiceviFile/IdentificativoSdI: Element 'IdentificativoSdI': The element is not 'nilla"],
        ),
        (  # a value outside the enumeration
            "<IdentificativoSdI>1</IdentificativoSdI><DataOraRicezione>2025-03-14T10:30:00Z</DataOraRicezione>"
            "<Errore>EI99</Errore>",
            ["Body/rispostaSdIRiceviFile/Errore: Element 'Errore': [facet 'enumeration'] The value 'EI99'"],
        ),
    ],
    ids=["integer", "date", "missing", "nil", "enumeration"],
)
async def test_an_invalid_answer_is_malformed_and_names_the_element(
    raw_server: RawFactory, session: aiohttp.ClientSession, inner: str, problems: list[str]
) -> None:
    url = await raw_server(_sdi_answer(inner))
    with pytest.raises(MalformedAnswer) as info:
        await _ricevi_file(session, url)
    message = str(info.value)
    assert message.startswith("sdi: answer to 'RiceviFile' breaks the WSDL's schema: ")
    for problem in problems:
        assert problem in message
    assert (info.value.code, info.value.status) == ("invalid-answer", 200)
    assert not is_retryable(info.value)  # the agency would answer the same again


async def test_an_operation_may_retry_invalid_answers(raw_server: RawFactory, session: aiohttp.ClientSession) -> None:
    url = await raw_server(_sdi_answer("<IdentificativoSdI>ABC</IdentificativoSdI>"))
    with pytest.raises(MalformedAnswer) as info:
        await _ricevi_file(session, url, retry_invalid_answers=["RiceviFile"])
    assert is_retryable(info.value)


def _person_answer(inner: str) -> bytes:
    return (
        f'<S:Envelope xmlns:S="{ENV11}"><S:Body><p:findPersonResponse xmlns:p="urn:lienthong:test:person">'
        f"<p:requestId>42</p:requestId>{inner}</p:findPersonResponse></S:Body></S:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (
            "<p:fullName>Trần Thị Vân</p:fullName><p:dateOfBirth>1990-02-03</p:dateOfBirth>",
            {"fullName": "Trần Thị Vân", "dateOfBirth": dt.date(1990, 2, 3), "refusalCode": None},
        ),
        (  # the second sequence of the choice: zeep's strict mode refused this schema-valid answer
            "<p:refusalCode>NOT_FOUND</p:refusalCode><p:refusalText>không tìm thấy</p:refusalText><p:note>x</p:note>",
            {"fullName": None, "refusalCode": "NOT_FOUND", "refusalText": "không tìm thấy", "note": "x"},
        ),
    ],
    ids=["first-sequence", "second-sequence"],
)
async def test_a_choice_of_two_sequences(
    raw_server: RawFactory, session: aiohttp.ClientSession, inner: str, expected: dict[str, object]
) -> None:
    url = await raw_server(_person_answer(inner))
    client = SoapTransport(session, PERSON_WSDL, agency="register", address=url)
    result = await client.call("findPerson", personalId="001099012345")
    assert result.requestId == 42
    for name, value in expected.items():
        assert getattr(result, name) == value


async def test_both_branches_of_a_choice_at_once_are_malformed(
    raw_server: RawFactory, session: aiohttp.ClientSession
) -> None:
    url = await raw_server(
        _person_answer(
            "<p:fullName>A</p:fullName><p:dateOfBirth>1990-02-03</p:dateOfBirth><p:refusalCode>X</p:refusalCode>"
        )
    )
    client = SoapTransport(session, PERSON_WSDL, agency="register", address=url)
    with pytest.raises(MalformedAnswer, match=r"Body/findPersonResponse/refusalCode: .*This element is not expected"):
        await client.call("findPerson", personalId="001099012345")


@pytest.mark.parametrize("wsdl", sorted(k for k, v in EXPECTED.items() if not isinstance(v, str)))
async def test_every_realworld_wsdl_has_its_answers_checked(
    session: aiohttp.ClientSession, xroad_map: UrlMap, wsdl: str
) -> None:
    transport = SoapTransport(session, REALWORLD / wsdl, agency="t", url_map=xroad_map)
    await transport.load()
    described = transport.describe()
    assert described["answers_schema_checked"] is True, described["load_warnings"]


async def test_the_bundled_and_test_wsdls_have_their_answers_checked(session: aiohttp.ClientSession) -> None:
    for wsdl in [TAX_WSDL, SDI_RICEVI_FILE, PERSON_WSDL, DATA / "dossier-status.wsdl"]:
        transport = SoapTransport(session, wsdl, agency="t")
        await transport.load()
        assert transport.describe()["answers_schema_checked"] is True, wsdl
