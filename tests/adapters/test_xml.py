"""Hardened XML parsing and offline XSD validation."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

import adapters.xml as axml
from adapters.xml import InvalidDocument, UnmappedURL, UrlMap, load_schema, parse_xml, validate
from gateway.errors import ConfigError, MalformedAnswer, UnsafeAnswer, is_retryable
from tests.adapters import BILLION_LAUGHS, realworld, xxe


@pytest.fixture
def no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves a document is refused before libxml2 is asked to parse it."""

    def boom() -> None:
        raise AssertionError("the parser must not run")

    monkeypatch.setattr(axml, "_parser", boom)


def test_parses_plain_xml() -> None:
    root = parse_xml(b'<?xml version="1.0" encoding="utf-8"?><a xmlns="urn:x"><b>1</b></a>')
    assert root.tag == "{urn:x}a"
    assert root.findtext("{urn:x}b") == "1"


def test_billion_laughs_refused_before_parsing(no_parser: None) -> None:
    started = time.perf_counter()
    with pytest.raises(UnsafeAnswer) as info:
        parse_xml(BILLION_LAUGHS, agency="vies")
    assert time.perf_counter() - started < 0.5
    assert not is_retryable(info.value)
    assert info.value.agency == "vies"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_billion_laughs_in_wide_encodings_refused_before_parsing(codec: str, no_parser: None) -> None:
    doc = BILLION_LAUGHS.decode().replace('version="1.0"', f'version="1.0" encoding="{codec}"').encode(codec)
    with pytest.raises(UnsafeAnswer):
        parse_xml(doc)


def test_utf16_answer_parses() -> None:
    doc = '<?xml version="1.0" encoding="utf-16"?><a>Hà Nội</a>'.encode("utf-16")
    assert parse_xml(doc).text == "Hà Nội"


@pytest.mark.parametrize(
    "doc",
    [
        xxe("file:///etc/passwd"),
        xxe("/etc/hostname"),
        b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
        b"<!-- leading comment --><?pi x?>\n<!doctype a [<!ENTITY x 'y'>]><a>&x;</a>",
        b"\xef\xbb\xbf<!DOCTYPE a><a/>",
    ],
    ids=["entity-file-url", "entity-file-path", "external-dtd", "after-comment-and-pi", "after-bom"],
)
def test_dtd_and_external_entities_refused(doc: bytes, no_parser: None) -> None:
    with pytest.raises(UnsafeAnswer):
        parse_xml(doc)


async def test_external_entity_over_http_never_fetched(aiohttp_server: AiohttpServer) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="secret")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = await aiohttp_server(app)
    for doc in (
        xxe(str(server.make_url("/entity"))),
        f'<!DOCTYPE a SYSTEM "{server.make_url("/dtd")}"><a/>'.encode(),
    ):
        with pytest.raises(UnsafeAnswer):
            parse_xml(doc)
    assert hits == []


def test_doctype_text_inside_cdata_is_fine() -> None:
    root = parse_xml(b"<a><![CDATA[<!DOCTYPE html><html/>]]></a>")
    assert root.text == "<!DOCTYPE html><html/>"


def test_oversize_refused_before_parsing(no_parser: None) -> None:
    with pytest.raises(UnsafeAnswer, match="exceeds 100"):
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", max_bytes=100)


@pytest.mark.parametrize(
    "doc",
    [b"", b"   \n", b"not xml at all", b"<a><b></a>", b"<a>&undefined;</a>", b'{"json": true}'],
    ids=["empty", "blank", "text", "unbalanced", "undefined-entity", "json"],
)
def test_garbage_is_malformed_and_retryable(doc: bytes) -> None:
    with pytest.raises(MalformedAnswer) as info:
        parse_xml(doc)
    assert is_retryable(info.value)


def test_prolog_check_is_linear_on_hostile_input() -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedAnswer):
        parse_xml(b"<?" * 500_000 + b"<!DOCTYPE")
    with pytest.raises(MalformedAnswer):
        parse_xml(b"<!--" + b"-" * 1_000_000)
    assert time.perf_counter() - started < 2


def test_iso_8859_1_answer_from_xroad_parses() -> None:
    root = parse_xml(realworld("xroad-soap-messages", "queries", "getstate-iso88591.answer").read_bytes())
    assert root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"


# --- URL map -----------------------------------------------------------------


def test_url_map_exact_and_folder(tmp_path: Path) -> None:
    (tmp_path / "xsd").mkdir()
    m = UrlMap({"http://a.example/x.xsd": tmp_path / "x.xsd", "http://b.example/xsd/": tmp_path / "xsd"})
    assert m.lookup("http://a.example/x.xsd") == (tmp_path / "x.xsd").resolve()
    assert m.lookup("http://b.example/xsd/sub/y.xsd") == (tmp_path / "xsd" / "sub" / "y.xsd").resolve()
    assert len(m) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/other.xsd",
        "https://a.example/x.xsd",
        "http://b.example/xsd/../secret",
        "http://b.example/xsd/",
        "http://b.example/xsd/y.xsd?wsdl",
        "ftp://b.example/xsd/y.xsd",
    ],
)
def test_url_map_refuses_unmapped_and_escaping_urls(tmp_path: Path, url: str) -> None:
    (tmp_path / "xsd").mkdir()
    m = UrlMap({"http://a.example/x.xsd": tmp_path / "x.xsd", "http://b.example/xsd/": tmp_path / "xsd"})
    with pytest.raises(UnmappedURL) as info:
        m.lookup(url)
    assert isinstance(info.value, ConfigError)
    assert url in str(info.value)


# --- XSD -----------------------------------------------------------------------


def test_load_schema_with_local_relative_imports() -> None:
    schema = load_schema(realworld("xroad-message-protocol", "message.xsd"))
    assert schema is not None


def test_validate_xroad_queries_lists_line_numbers() -> None:
    queries = realworld("xroad-soap-messages", "queries")
    schema = load_schema(realworld("xroad-soap-messages", "_validate_wrapper.xsd"))
    validate(parse_xml((queries / "simple.query").read_bytes()), schema)
    with pytest.raises(InvalidDocument) as info:
        validate(parse_xml((queries / "missingobjecttype.query").read_bytes()), schema, agency="xroad")
    assert info.value.problems[0].startswith("line 12: ")
    assert "objectType" in info.value.problems[0]
    assert "line 12" in str(info.value)
    with pytest.raises(InvalidDocument, match=r"line 23: .*Fault"):
        validate(parse_xml((queries / "soapfaulterror.query").read_bytes()), schema)


def _importing_xsd(tmp_path: Path, location: str) -> Path:
    xsd = tmp_path / "wrapper.xsd"
    xsd.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:local">'
        f'<xs:import namespace="http://x-road.eu/xsd/xroad.xsd" schemaLocation="{location}"/>'
        "</xs:schema>"
    )
    return xsd


def test_load_schema_remote_import_needs_url_map(tmp_path: Path) -> None:
    xsd = _importing_xsd(tmp_path, "http://x-road.eu/xsd/xroad.xsd")
    with pytest.raises(UnmappedURL, match=re.escape("http://x-road.eu/xsd/xroad.xsd")):
        load_schema(xsd)
    # The remote xroad.xsd imports xml.xsd and identifiers.xsd relatively: a folder entry covers them.
    load_schema(xsd, url_map=UrlMap({"http://x-road.eu/xsd/": realworld("xroad-example-getrandom")}))


def test_load_schema_broken_file_is_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xsd"
    bad.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element/></xs:schema>")
    with pytest.raises(ConfigError, match=r"bad\.xsd"):
        load_schema(bad)
    with pytest.raises(ConfigError, match=r"missing\.xsd"):
        load_schema(tmp_path / "missing.xsd")


def test_url_map_folder_key_with_file_target_is_one_document(tmp_path: Path) -> None:
    # http://schemas.xmlsoap.org/soap/encoding/ ends in "/" but names a single schema.
    target = tmp_path / "soap-enc.xsd"
    target.write_text("<x/>")
    m = UrlMap({"http://schemas.xmlsoap.org/soap/encoding/": target})
    assert m.lookup("http://schemas.xmlsoap.org/soap/encoding/") == target.resolve()
    with pytest.raises(UnmappedURL):
        m.lookup("http://schemas.xmlsoap.org/soap/encoding/other.xsd")
