"""The WSDL's XML Schema compiled by libxml2, to check an answer's Body before zeep maps it.

zeep is lenient on input: a value it cannot convert becomes None, and a missing or nil required
element passes. libxml2 validates instead, and names each wrong element by its path. The schema is
built from the same documents zeep loaded: the WSDL's inline schemas (each resolved against its WSDL's
location, so relative imports work) and everything they import, remote imports from the URL map only.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree

from adapters.xml import UrlMap, is_remote

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_XSD = "http://www.w3.org/2001/xml.xsd"  # built in (offline.BUILTIN_URLS)
INLINE = "urn:lienthong:inline-schema:"  # made-up locations the resolver answers from memory
WRAPPER_NS = "urn:lienthong:answer-schema"
MAX_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class InlineSchema:
    base_url: str  # where the WSDL that holds it lives: its relative imports resolve from there
    namespace: str | None
    text: bytes


def inline_schemas(documents: Iterable[tuple[str, bytes]]) -> list[InlineSchema]:
    """The xsd:schema elements under wsdl:types of every WSDL document among `documents`."""
    out: list[InlineSchema] = []
    for url, content in documents:
        try:
            root = etree.fromstring(content, _parser(), base_url=url)
        except etree.XMLSyntaxError:
            continue  # zeep read it; it is a schema or an unparsable leftover, not a WSDL of ours
        if root.tag != f"{{{WSDL_NS}}}definitions":
            continue
        for node in root.iterfind(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema"):
            # tostring (unlike deepcopy) keeps every in-scope namespace declaration: QNames inside need them.
            node = etree.fromstring(etree.tostring(node), _parser())
            if node.find(f"{{{XSD_NS}}}import[@namespace='{XML_NS}']") is None:
                # zeep reads xml:lang without an import of the XML namespace; libxml2 wants one.
                node.insert(0, etree.Element(f"{{{XSD_NS}}}import", namespace=XML_NS, schemaLocation=XML_XSD))
            out.append(InlineSchema(url, node.get("targetNamespace") or None, etree.tostring(node)))
    return out


class _Resolver(etree.Resolver):
    def __init__(self, documents: dict[str, tuple[bytes, str]], url_map: UrlMap) -> None:
        super().__init__()
        self.documents = documents
        self.url_map = url_map

    # lxml-stubs omit the context argument and resolve_string/resolve_filename.
    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> object:  # type: ignore[override]
        if not system_url:
            return None
        if system_url in self.documents:
            text, base = self.documents[system_url]
            return self.resolve_string(text, context, base_url=base)
        if is_remote(system_url):
            return self.resolve_filename(str(self.url_map.lookup(system_url)), context)  # type: ignore[attr-defined]
        return None


def _parser(resolver: etree.Resolver | None = None) -> etree.XMLParser:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    if resolver is not None:
        parser.resolvers.add(resolver)
    return parser


def build(documents: Iterable[tuple[str, bytes]], url_map: UrlMap) -> etree.XMLSchema:
    """Compile the inline schemas of the WSDL documents (and their imports) into one schema.

    Blocking (reads the imported files). Raises etree.XMLSchemaParseError, or UnmappedURL for a
    remote import with no local copy."""
    memory: dict[str, tuple[bytes, str]] = {}
    by_ns: dict[str | None, list[str]] = defaultdict(list)
    for i, schema in enumerate(inline_schemas(documents)):
        url = f"{INLINE}{i}"
        memory[url] = (schema.text, schema.base_url)
        by_ns[schema.namespace].append(url)
    imports: list[tuple[str | None, str]] = [(XML_NS, XML_XSD)]
    for ns, urls in by_ns.items():
        if len(urls) == 1:
            imports.append((ns, urls[0]))
            continue
        # libxml2 imports a namespace once: several inline schemas of one namespace are included
        # into one made-up schema document of that namespace, which is imported.
        joined = f"{INLINE}ns:{quote(ns or '', safe='')}"
        target = f' targetNamespace="{_attr(ns)}"' if ns else ""
        includes = "".join(f'<xs:include schemaLocation="{u}"/>' for u in urls)
        memory[joined] = (f'<xs:schema xmlns:xs="{XSD_NS}"{target}>{includes}</xs:schema>'.encode(), joined)
        imports.append((ns, joined))
    body = "".join(
        f'<xs:import{f" namespace={_quoted(ns)}" if ns else ""} schemaLocation="{_attr(loc)}"/>' for ns, loc in imports
    )
    wrapper = f'<xs:schema xmlns:xs="{XSD_NS}" targetNamespace="{WRAPPER_NS}">{body}</xs:schema>'
    resolver = _Resolver(memory, url_map)
    doc = etree.fromstring(wrapper.encode(), _parser(resolver), base_url=f"{INLINE}wrapper")
    return etree.XMLSchema(doc)


def _attr(value: str | None) -> str:
    return (value or "").replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _quoted(value: str) -> str:
    return f'"{_attr(value)}"'


def problems(schema: etree.XMLSchema, element: etree._Element) -> list[str]:
    """What is wrong with one Body element: "path: message" for each error libxml2 reports, at most 10."""
    standalone = copy.deepcopy(element)  # validated as the root of its own document
    if schema.validate(standalone):
        return []
    out = []
    for error in list(schema.error_log)[:MAX_PROBLEMS]:  # type: ignore[call-overload]
        out.append(f"{error.path or '/'}: {error.message}")
    return out or ["invalid (no detail from libxml2)"]
