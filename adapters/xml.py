"""Hardened XML for agency answers: no DTDs, no entities, no network, a size cap; offline XSD validation.

Agency answers are untrusted. `parse_xml` rejects any document with a DOCTYPE (billion laughs, XXE)
before libxml2 sees the internal subset, and parses with entity resolution, DTD loading and network
access all off as a second line of defence.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from gateway.errors import ConfigError, MalformedAnswer, UnsafeAnswer

DEFAULT_MAX_BYTES = 4 * 1024 * 1024

# A DOCTYPE can only appear in the prolog: after an optional BOM, XML declaration, comments and PIs.
# Possessive quantifiers keep this linear on hostile input; CDATA later in the body is never matched.
_PROLOG_DOCTYPE = re.compile(
    r"\A(?:\ufeff|\xef\xbb\xbf)?\s*+(?:<\?(?:[^?]|\?(?!>))*+\?>\s*+|<!--(?:[^-]|-(?!->))*+-->\s*+)*+<!DOCTYPE",
    re.IGNORECASE,
)
# Byte patterns that announce a non-ASCII-compatible encoding (XML 1.0, appendix F).
_WIDE_ENCODINGS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)


def _has_doctype(data: bytes) -> bool:
    codec = next((c for prefix, c in _WIDE_ENCODINGS if data.startswith(prefix)), "latin-1")
    # latin-1 maps bytes 1:1, so it reads the ASCII markup of UTF-8 and single-byte encodings alike.
    return _PROLOG_DOCTYPE.match(data.decode(codec, errors="replace")) is not None


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, agency: str = "") -> etree._Element:
    """Parse an untrusted document. UnsafeAnswer: too large or has a DTD; MalformedAnswer: not XML."""
    where = f"{agency}: " if agency else ""
    if len(data) > max_bytes:
        raise UnsafeAnswer(f"{where}XML of {len(data)} bytes exceeds {max_bytes}", agency=agency)
    if _has_doctype(data):
        raise UnsafeAnswer(f"{where}XML with a DOCTYPE/DTD is refused", agency=agency)
    if not data.strip():
        raise MalformedAnswer(f"{where}empty answer where XML was expected", agency=agency)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        if "amplification" in str(exc):  # libxml2's own entity-bomb guard
            raise UnsafeAnswer(f"{where}XML entity expansion refused: {exc}", agency=agency) from exc
        raise MalformedAnswer(f"{where}answer is not well-formed XML: {exc}", agency=agency) from exc
    # Belt and braces for encodings the prolog check cannot read (EBCDIC ...): refused, unexpanded.
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack doctype/internalDTD
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeAnswer(f"{where}XML with a DOCTYPE/DTD is refused", agency=agency)
    return root


class UnmappedURL(ConfigError):
    """A schema or WSDL refers to a remote URL that has no local copy; nothing is ever fetched."""

    def __init__(self, url: str, source: str = "url_map") -> None:
        self.url = url
        super().__init__([(source, "", f"no local copy of {url} (remote documents are never fetched)")])


class UrlMap:
    """Remote document URLs -> local files. A key ending in "/" whose target is a folder maps a remote
    folder onto a local one: that covers relative imports inside remote schemas (they resolve against
    the remote base). Building one touches nothing; `lookup` reads the file system (run it off-loop)."""

    def __init__(self, entries: Mapping[str, str | os.PathLike[str]] | None = None) -> None:
        self.entries: dict[str, Path] = {url: Path(target) for url, target in (entries or {}).items()}

    def __len__(self) -> int:
        return len(self.entries)

    def merged(self, other: UrlMap) -> UrlMap:
        out = UrlMap()
        out.entries = {**self.entries, **other.entries}
        return out

    def lookup(self, url: str) -> Path:
        """The local file for a remote URL, or UnmappedURL."""
        if url in self.entries and not self.entries[url].is_dir():
            return self.entries[url].resolve()
        folders = sorted((k for k in self.entries if k.endswith("/")), key=len, reverse=True)
        for prefix in (k for k in folders if url.startswith(k)):
            # ".../soap/encoding/" is one document: only a folder target makes a folder entry.
            folder, rest = self.entries[prefix].resolve(), urlsplit(url[len(prefix) :])
            if not folder.is_dir() or not rest.path or rest.query or rest.fragment:
                continue
            target = (folder / rest.path).resolve()
            if target.is_relative_to(folder):  # "../" must not climb out of the mapped folder
                return target
        raise UnmappedURL(url)

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.entries.items()}


def is_remote(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return bool(scheme) and scheme != "file" and len(scheme) > 1  # "C:" is a drive, not a scheme


class _OfflineResolver(etree.Resolver):
    """Remote imports come from the URL map; anything else remote is an error, never a fetch."""

    def __init__(self, url_map: UrlMap) -> None:
        super().__init__()
        self.url_map = url_map
        self.failed: list[UnmappedURL] = []

    # lxml-stubs omit the context argument and resolve_filename.
    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> object:  # type: ignore[override]
        if not system_url or not is_remote(system_url):
            return None  # local file: libxml2 reads it (network is off in the parser anyway)
        try:
            return self.resolve_filename(str(self.url_map.lookup(system_url)), context)  # type: ignore[attr-defined]
        except UnmappedURL as exc:
            self.failed.append(exc)
            raise


def load_schema(path: str | os.PathLike[str], *, url_map: UrlMap | None = None) -> etree.XMLSchema:
    """Load a local XSD and its imports without network access. Blocking: call at start-up or in a thread."""
    resolver = _OfflineResolver(url_map or UrlMap())
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    parser.resolvers.add(resolver)
    try:
        return etree.XMLSchema(etree.parse(os.fspath(path), parser))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        if resolver.failed:
            raise resolver.failed[0] from exc
        raise ConfigError([(os.fspath(path), "", f"cannot load XML schema: {exc}")]) from exc


class InvalidDocument(MalformedAnswer):
    """A document that parses but breaks its schema; `problems` lists "line N: message"."""

    def __init__(self, problems: list[str], *, agency: str = "") -> None:
        self.problems = problems
        where = f"{agency}: " if agency else ""
        text = f"{where}document does not match its schema:\n  " + "\n  ".join(problems)
        super().__init__(text, agency=agency)


def validate(doc: etree._Element | etree._ElementTree, schema: etree.XMLSchema, *, agency: str = "") -> None:
    """Raise InvalidDocument listing every schema error with its line number."""
    if schema.validate(doc):
        return
    problems = [f"line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]
    raise InvalidDocument(problems or ["invalid (no detail from libxml2)"], agency=agency)
