"""Signed receipts and results, their verification, and the public status page (docs/citizens.md).

For centres (read scope, audited like any opening of a dossier): a dossier's receipt as JSON, its detached
signature, its printable page; a result document's signature. For anyone, keyless and limited per address
(middleware): `GET /v1/verify` checks a signature, `GET /v1/verify/keys` gives the public keys, and
`/status/{code}?k=...` (the receipt's QR code) shows a dossier's status, never who applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import datetime

import orjson
from aiohttp import web

from contracts import Dossier, DossierStatus
from gateway.api.access import open_dossier
from gateway.api.keys import LIVE, STORE
from gateway.api.public import cacheable
from gateway.api.responses import json_response
from gateway.errors import FieldError, InvalidRequest, NotFound
from gateway.receipts import (
    PAGE_POLICY,
    receipt_bytes,
    receipt_metadata,
    receipt_page,
    result_metadata,
    status_page,
    status_path,
    status_view,
)
from gateway.signatures import MAX_SIGNATURE, SHA256_HEX, Signer, load_signer
from gateway.store.base import AuditEntry

routes = web.RouteTableDef()
SIGNER = web.AppKey("signer", Signer)
JOSE = "application/jose"
PUBLIC_CLIENT = "public"  # who the audit log names for a keyless reader of a status page


async def load(app: web.Application) -> None:
    """The signing key, read once at start-up off the event loop; none configured: nothing is signed."""
    config = app[LIVE].current.config
    signer = await asyncio.to_thread(load_signer, config.gateway.signing, config.base_dir)
    if signer is not None:
        app[SIGNER] = signer


def _signer(request: web.Request) -> Signer:
    signer = request.app.get(SIGNER)
    if signer is None:
        raise NotFound("this gateway signs nothing: no [signing] key is configured")
    return signer


def _base(request: web.Request) -> str:
    return request.app[LIVE].current.config.gateway.server.base_url()


def _status_url(request: web.Request, signer: Signer, code: str) -> str:
    return _base(request) + status_path(code, signer.status_token(code))


def _receipt(request: web.Request, d: Dossier) -> tuple[Signer, bytes]:
    signer = _signer(request)
    return signer, receipt_bytes(d, _status_url(request, signer, d.code))


@routes.get("/v1/dossiers/{ref}/receipt")
async def get_receipt(request: web.Request) -> web.Response:
    d = await open_dossier(request, "receipt")
    _, body = _receipt(request, d)
    return web.Response(
        body=body,
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{d.code}.json"',
            "Link": f'</v1/dossiers/{d.id}/receipt/signature>; rel="signature"',
        },
    )


@routes.get("/v1/dossiers/{ref}/receipt/signature")
async def get_receipt_signature(request: web.Request) -> web.Response:
    d = await open_dossier(request, "receipt")
    signer, body = _receipt(request, d)
    jws = signer.sign(body, receipt_metadata(d, _base(request)))
    return web.Response(
        text=jws, content_type=JOSE, headers={"Content-Disposition": f'attachment; filename="receipt-{d.code}.jws"'}
    )


@routes.get("/v1/dossiers/{ref}/receipt/page")
async def get_receipt_page(request: web.Request) -> web.Response:
    d = await open_dossier(request, "receipt")
    signer, body = _receipt(request, d)
    page = await asyncio.to_thread(  # the QR code's encoding is CPU work: beside the event loop
        receipt_page,
        d,
        _status_url(request, signer, d.code),
        hashlib.sha256(body).hexdigest(),
        signer.kid,
        _base(request) + "/v1/verify",
    )
    return web.Response(
        text=page,
        content_type="text/html",
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"},
    )


@routes.get("/v1/dossiers/{ref}/results/{index}/signature")
async def get_result_signature(request: web.Request) -> web.Response:
    d = await open_dossier(request, "result")
    signer = _signer(request)
    try:
        index = int(request.match_info["index"])
        doc = d.results[index]
    except (ValueError, IndexError):
        raise NotFound(f"dossier {d.code} has {len(d.results)} result documents") from None
    finished = await _finished_at(request, d)
    jws = signer.sign_digest(doc.sha256, doc.size, result_metadata(d, index, _base(request), finished))
    name = f"{d.code}-{index}.jws"
    return web.Response(text=jws, content_type=JOSE, headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _finished_at(request: web.Request, d: Dossier) -> datetime | None:
    """When the result came (the first event that finished the dossier): the same signature every time."""
    for event in await request.app[STORE].events(d.id):
        if event.status == DossierStatus.FINISHED:
            return event.at
    return None


@routes.get("/v1/verify")
async def verify(request: web.Request) -> web.Response:
    """Check a detached signature, and the document's SHA-256 against it when given; the answer carries what
    was signed (no personal data is ever in a signature)."""
    signature = request.query.get("signature", "").strip()
    sha256 = request.query.get("sha256")
    errors = []
    if not signature:
        errors.append(FieldError("query.signature", "the detached signature (a compact JWS) is required", "missing"))
    elif len(signature) > MAX_SIGNATURE:
        errors.append(FieldError("query.signature", f"at most {MAX_SIGNATURE} characters", "too_long"))
    if sha256 is not None and not SHA256_HEX.match(sha256.lower()):
        errors.append(FieldError("query.sha256", "64 hexadecimal digits: the document's SHA-256", "invalid"))
    if errors:
        raise InvalidRequest("give the signature, and the document's sha256 to check it too", errors=errors)
    verdict = _signer(request).verifier.check(signature, sha256=sha256)
    body = {
        "valid": verdict.valid,
        "reason": verdict.reason or None,
        "document_checked": sha256 is not None,
        "kid": verdict.kid or None,
        "signed": verdict.claims or None,
    }
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get("/v1/verify/keys")
async def verify_keys(request: web.Request) -> web.Response:
    """The public keys signatures are checked with (JWKS): what an offline verifier needs."""
    return cacheable(request, orjson.dumps(_signer(request).verifier.jwks()), "application/json")


@routes.get("/status/{code}")
async def public_status(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    signer = _signer(request)
    token = request.query.get("k", "")
    d = None
    if hmac.compare_digest(
        token, signer.status_token(code)
    ):  # only a link the gateway made opens a dossier: codes are guessable
        d = await request.app[STORE].get_dossier(code)
    allowed = d is not None and d.code == code
    entry = AuditEntry(
        client_id=PUBLIC_CLIENT,
        action="status",
        outcome="allowed" if allowed else "denied",
        basis="status-link" if allowed else "wrong-link",
        dossier_id=str(d.id) if d is not None and allowed else None,
        detail={} if allowed else {"ref_sha256": hashlib.sha256(code.encode()).hexdigest()[:32]},
    )
    await request.app[STORE].audit([entry])
    if d is None or not allowed:
        raise NotFound(f"no dossier status at {request.path}")
    return web.Response(
        text=status_page(status_view(d)),
        content_type="text/html",
        headers={
            "Content-Security-Policy": PAGE_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",  # the link's token must not leak to another site
        },
    )
