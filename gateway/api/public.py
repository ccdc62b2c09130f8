"""The citizen-facing public routes: the procedure catalog with its guides (JSON), and each guide as a
printable page with its QR code. No key; rate-limited per source address (middleware); cacheable: an
ETag from the body's hash, `If-None-Match` answered 304."""

from __future__ import annotations

import asyncio
import hashlib

import orjson
from aiohttp import web

from gateway.api.keys import LIVE
from gateway.errors import NotFound
from gateway.guides import guide_path, public_view, render_index, render_page

routes = web.RouteTableDef()
MAX_AGE = 300  # the catalog changes by reload: five minutes of staleness in a browser or proxy is fine
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def cacheable(request: web.Request, body: bytes, content_type: str, **headers: str) -> web.Response:
    """The body with a strong ETag and Cache-Control; 304 without a body when the client holds it already."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    common = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}", "Vary": "Accept-Encoding", **headers}
    held = request.headers.get("If-None-Match", "")
    if etag in (t.strip().removeprefix("W/") for t in held.split(",")) or held.strip() == "*":
        return web.Response(status=304, headers=common)
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=common)


def _base(request: web.Request) -> str:
    # The configured address, never the request's Host: a page cached by a proxy must not carry a forged one.
    return request.app[LIVE].current.config.gateway.server.base_url()


@routes.get("/v1/public/procedures")
async def search(request: web.Request) -> web.Response:
    catalog = request.app[LIVE].current.catalog
    found = catalog.search(agency_kind=request.query.get("agency") or None, q=request.query.get("q") or None)
    base = _base(request)
    return cacheable(request, orjson.dumps({"items": [public_view(p, base) for p in found]}), "application/json")


@routes.get("/v1/public/procedures/{code}")
async def get_one(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    spec = request.app[LIVE].current.catalog.get(code)
    if spec is None:
        raise NotFound(f"procedure {code} is not in the catalog")
    return cacheable(request, orjson.dumps(public_view(spec, _base(request))), "application/json")


@routes.get("/guide")
async def guide_index(request: web.Request) -> web.Response:
    """The guides an applicant searches, by keyword and agency, with or without diacritics."""
    catalog = request.app[LIVE].current.catalog
    q, agency = request.query.get("q", "").strip(), request.query.get("agency", "").strip()
    found = catalog.search(agency_kind=agency or None, q=q or None)
    titles = {a.kind: a.title for a in reversed(request.app[LIVE].current.config.agencies.values()) if a.title}
    kinds = {p.agency_kind: titles.get(p.agency_kind, p.agency_kind) for p in catalog.procedures.values()}
    page = render_index(found, sorted(kinds.items(), key=lambda kv: kv[1]), q, agency).encode()
    return cacheable(request, page, "text/html", **{"Content-Security-Policy": PAGE_POLICY})


@routes.get("/guide/{code}")
async def guide_page(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    spec = request.app[LIVE].current.catalog.get(code)
    if spec is None:
        raise NotFound(f"procedure {code} is not in the catalog")
    # Encoding a QR code (choosing its mask) takes milliseconds of CPU: done beside the event loop.
    page = (await asyncio.to_thread(render_page, spec, _base(request) + guide_path(code))).encode()
    return cacheable(request, page, "text/html", **{"Content-Security-Policy": PAGE_POLICY})
