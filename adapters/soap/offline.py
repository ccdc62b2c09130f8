"""Load WSDLs with zeep strictly offline: local files and a URL map, never a fetch.

Bundled in `schemas/` (byte-for-byte, notices inside): the W3C `xml.xsd` (from nordic-institute/X-Road
@ fcd16216, src/addons/wsdlvalidator/src/test/resources/xsd/xml.xsd) and the SOAP 1.1 encoding schema
(from mvantellingen/python-zeep @ a345e020, tests/wsdl_files/soap-enc.xsd). zeep auto-imports the
latter for any WSDL that mentions soapenc types, and the former for xml:lang without a location.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit
from urllib.request import url2pathname

import zeep
import zeep.transports

from adapters.xml import UnmappedURL, UrlMap, is_remote
from gateway.errors import ConfigError

SCHEMAS = Path(__file__).resolve().parent / "schemas"
BUILTIN_URLS = UrlMap(
    {
        "http://www.w3.org/2001/xml.xsd": SCHEMAS / "xml.xsd",
        "https://www.w3.org/2001/xml.xsd": SCHEMAS / "xml.xsd",
        "http://schemas.xmlsoap.org/soap/encoding/": SCHEMAS / "soap-encoding.xsd",
        "https://schemas.xmlsoap.org/soap/encoding/": SCHEMAS / "soap-encoding.xsd",
    }
)


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

    def local_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme.lower() == "file":
            return Path(url2pathname(parts.path))
        if is_remote(url):
            try:
                return self.url_map.lookup(url)
            except UnmappedURL as exc:
                raise UnmappedURL(url, self.source) from exc
        return Path(url)

    def load(self, url: str) -> bytes:
        if not url:
            raise ValueError("No url given to load")
        path = self.local_path(url)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigError([(self.source, "", f"cannot read {path} (for {url}): {exc.strerror}")]) from exc
        self.loaded.append(url)
        return content

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("OfflineTransport never sends requests; SoapTransport posts over aiohttp")

    get = post = post_xml = _load_remote_data = _refuse

    def close(self) -> None:
        return None

    def __del__(self) -> None:  # the base class closes a session we never opened
        return None


def load_client(
    wsdl_path: str | os.PathLike[str],
    url_map: UrlMap | None = None,
    *,
    wsse: Any = None,
) -> zeep.Client:
    """Parse a local WSDL and everything it imports. Blocking: run it in a thread from async code."""
    path = Path(wsdl_path).resolve()
    if not path.is_file():
        raise ConfigError([(str(path), "", "WSDL file not found")])
    transport = OfflineTransport(url_map, source=str(path))
    try:
        return zeep.Client(  # type: ignore[no-untyped-call]
            str(path), transport=transport, settings=zeep_settings(), wsse=wsse
        )
    except ConfigError:
        raise
    except Exception as exc:  # zeep raises many kinds: all mean this WSDL cannot be used
        reason = f"zeep cannot load this WSDL: {type(exc).__name__}: {exc}"
        raise ConfigError([(str(path), "", reason)]) from exc
