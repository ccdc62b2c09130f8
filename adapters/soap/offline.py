"""Load WSDLs with zeep strictly offline: local files and a URL map, never a fetch.

Bundled in `schemas/` (byte-for-byte, notices inside): the W3C `xml.xsd` of 2009/01 (from
nordic-institute/X-Road @ fcd16216, src/addons/wsdlvalidator/src/test/resources/xsd/xml.xsd), served
for both of its URLs (2001 and 2009/01) and for a WSDL that uses xml:lang without importing it; and the
SOAP 1.1 encoding schema (from mvantellingen/python-zeep @ a345e020, tests/wsdl_files/soap-enc.xsd),
which zeep auto-imports for any WSDL that mentions soapenc types.

A load error names the file (and line) at fault: the document that imports an unmapped URL, the
schema where zeep or libxml2 stumbled, or where a name zeep cannot resolve is used. zeep's warnings
(a message part it cannot read, an operation it drops) are kept on `OfflineTransport.warnings`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit
from urllib.request import url2pathname

import zeep
import zeep.exceptions
import zeep.transports
from lxml import etree
from zeep.loader import absolute_location
from zeep.xsd.const import AUTO_IMPORT_NAMESPACES

from adapters.xml import UnmappedURL, UrlMap, is_remote
from gateway.errors import ConfigError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
XML_NS = "http://www.w3.org/XML/1998/namespace"
BUILTIN_URLS = UrlMap(
    {
        "http://www.w3.org/2001/xml.xsd": SCHEMAS / "xml.xsd",
        "https://www.w3.org/2001/xml.xsd": SCHEMAS / "xml.xsd",
        "http://www.w3.org/2009/01/xml.xsd": SCHEMAS / "xml.xsd",
        "https://www.w3.org/2009/01/xml.xsd": SCHEMAS / "xml.xsd",
        XML_NS: SCHEMAS / "xml.xsd",  # where zeep looks when it auto-imports the namespace (below)
        "http://schemas.xmlsoap.org/soap/encoding/": SCHEMAS / "soap-encoding.xsd",
        "https://schemas.xmlsoap.org/soap/encoding/": SCHEMAS / "soap-encoding.xsd",
    }
)
# zeep auto-imports only the SOAP encoding namespace; a schema using xml:lang without importing the
# XML namespace is common in agencies' WSDLs, and zeep then fails to resolve the attribute. One list
# in zeep, extended once for the process.
if XML_NS not in AUTO_IMPORT_NAMESPACES:
    AUTO_IMPORT_NAMESPACES.append(XML_NS)

# warnings.catch_warnings swaps process-wide state: loads take turns (they run once, at start-up).
_LOAD_LOCK = threading.Lock()
_REFERENCE = re.compile(r"\{([^{}\s]*)\}([\w.\-]+)")
_REFERENCING_ATTRIBUTES = ("type", "element", "ref", "base", "itemType", "message", "binding")


def zeep_settings() -> zeep.Settings:
    # forbid_external stays off: it would refuse mapped URLs too; OfflineTransport is the guard.
    return zeep.Settings(
        strict=True,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=False,
        xml_huge_tree=False,
        force_https=False,
    )


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class OfflineTransport(zeep.transports.Transport):
    """A zeep transport that reads local files and mapped URLs only. It never opens a socket:
    WSDL loading is its one job; SoapTransport posts the calls over aiohttp."""

    def __init__(self, url_map: UrlMap | None = None, *, source: str = "url_map") -> None:
        # No super().__init__(): it would create a requests.Session we must never use.
        self.url_map = BUILTIN_URLS.merged(url_map or UrlMap())
        self.source = source
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self.logger = logging.getLogger(__name__)
        self.session = None
        self._close_session = False
        self.loaded: list[str] = []
        self.documents: dict[str, bytes] = {}  # url (or path) as zeep asked for it -> its content
        self.files: dict[str, Path] = {}  # url -> the local file read for it
        self.warnings: list[str] = []  # zeep's warnings while loading

    def local_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme.lower() == "file":
            return Path(url2pathname(parts.path))
        if is_remote(url):
            try:
                return self.url_map.lookup(url)
            except UnmappedURL as exc:
                raise UnmappedURL(url, self.importer(url) or self.source) from exc
        return Path(url)

    def load(self, url: str) -> bytes:
        if not url:
            raise ValueError("No url given to load")
        path = self.local_path(url)
        try:
            content = path.read_bytes()
        except OSError as exc:
            where = self.importer(url) or self.source
            raise ConfigError([(where, "", f"cannot read {path} (for {url}): {exc.strerror}")]) from exc
        self.loaded.append(url)
        self.documents[url] = content
        self.files[url] = path
        return content

    def where(self, url: str) -> str:
        """A document's name for messages: its file, and the URL it stands for when that differs."""
        path = self.files.get(url)
        if path is None or str(path) == url:
            return url
        return f"{path} (for {url})"

    def _elements(self) -> Iterator[tuple[str, etree._Element]]:
        for url, content in list(self.documents.items()):
            try:
                root = etree.fromstring(content, _safe_parser())
            except etree.XMLSyntaxError:
                continue
            for el in root.iter():
                if isinstance(el.tag, str):
                    yield url, el

    def importer(self, url: str) -> str | None:
        """Where a document already loaded imports or includes `url`: "file:line", or None."""
        for doc, el in self._elements():
            for attr in ("schemaLocation", "location"):
                value = el.get(attr)
                if value and absolute_location(value.strip(), doc) == url:  # type: ignore[no-untyped-call]
                    return f"{self.where(doc)}:{el.sourceline}"
        return None

    def user_of(self, clark: str) -> str | None:
        """Where a document already loaded refers to the name `{ns}local`: "file:line", or None."""
        ns, _, local = clark[1:].partition("}")
        for doc, el in self._elements():
            for attr in _REFERENCING_ATTRIBUTES:
                value = el.get(attr)
                if not value or (":" not in value and local != value):
                    continue
                prefix, _, name = value.strip().rpartition(":")
                if name == local and el.nsmap.get(prefix or None) == ns:
                    return f"{self.where(doc)}:{el.sourceline}"
        return None

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("OfflineTransport never sends requests; SoapTransport posts over aiohttp")

    get = post = post_xml = _load_remote_data = _refuse

    def close(self) -> None:
        return None

    def __del__(self) -> None:  # the base class closes a session we never opened
        return None


def _located(exc: BaseException, transport: OfflineTransport, wsdl: str) -> str:
    """The file (and line) an error from zeep or lxml is about, as well as can be told."""
    filename = getattr(exc, "filename", None)
    line = getattr(exc, "sourceline", None) or getattr(exc, "lineno", None)
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, zeep.exceptions.XMLSyntaxError | etree.XMLSyntaxError) and transport.loaded:
        # Not well-formed: the document loaded last (lxml names its importer, zeep's base URL).
        filename = transport.loaded[-1]
        line = line or getattr(cause, "lineno", None)
    elif isinstance(cause, etree.LxmlError) and not filename:
        filename = getattr(cause, "filename", None)
        line = line or getattr(cause, "lineno", None)
    if filename:
        where = transport.where(str(filename))
        return f"{where}:{line}" if line else where
    for name in _REFERENCE.findall(str(exc)):
        found = transport.user_of(f"{{{name[0]}}}{name[1]}")
        if found:
            return found
    return wsdl


def load_client(
    wsdl_path: str | os.PathLike[str],
    url_map: UrlMap | None = None,
    *,
    wsse: Any = None,
) -> zeep.Client:
    """Parse a local WSDL and everything it imports. Blocking: run it in a thread from async code.

    zeep's warnings end up on `client.transport.warnings`; a failure is a ConfigError naming the file
    (and line) at fault, with those warnings."""
    path = Path(wsdl_path).resolve()
    if not path.is_file():
        raise ConfigError([(str(path), "", "WSDL file not found")])
    transport = OfflineTransport(url_map, source=str(path))
    failure: Exception | None = None
    with _LOAD_LOCK:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                client = zeep.Client(  # type: ignore[no-untyped-call]
                    str(path), transport=transport, settings=zeep_settings(), wsse=wsse
                )
            except ConfigError:
                raise
            except Exception as exc:  # zeep raises many kinds: all mean this WSDL cannot be used
                failure = exc
        _reemit_others(caught)
    transport.warnings = list(dict.fromkeys(str(w.message) for w in caught if _from_zeep(w)))
    if failure is not None:
        reason = f"zeep cannot load this WSDL: {type(failure).__name__}: {failure}"
        if transport.warnings:
            reason += "; zeep warned: " + "; ".join(transport.warnings)
        raise ConfigError([(_located(failure, transport, str(path)), "", reason)]) from failure
    return client


def _from_zeep(w: warnings.WarningMessage) -> bool:
    return f"{os.sep}zeep{os.sep}" in w.filename


def _reemit_others(caught: list[warnings.WarningMessage]) -> None:
    """Warnings from elsewhere (another thread, during the load) go on as if never caught."""
    for w in caught:
        if not _from_zeep(w):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
MIME_NS = "http://schemas.xmlsoap.org/wsdl/mime/"


def mime_operations(transport: OfflineTransport, binding: etree.QName) -> dict[str, list[str]]:
    """Operations of a binding whose input or output is SOAP with Attachments (mime:multipartRelated),
    with where: {"uploadDocument": ["input"]}. zeep finds no soap:body inside the MIME parts."""
    out: dict[str, list[str]] = {}
    for content in transport.documents.values():
        try:
            root = etree.fromstring(content, _safe_parser())
        except etree.XMLSyntaxError:
            continue
        if root.tag != f"{{{WSDL_NS}}}definitions" or root.get("targetNamespace", "") != (binding.namespace or ""):
            continue
        for node in root.iterfind(f"{{{WSDL_NS}}}binding[@name='{binding.localname}']/{{{WSDL_NS}}}operation"):
            where = [
                direction
                for direction in ("input", "output")
                if node.find(f"{{{WSDL_NS}}}{direction}/{{{MIME_NS}}}multipartRelated") is not None
            ]
            if where:
                out[node.get("name", "")] = where
    return out
