"""Documents: uploaded before the dossier that names them (streamed, never whole in memory), and a
dossier's attachments downloaded back from the document store."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from aiohttp.multipart import parse_content_disposition

from contracts.text import control_character
from gateway.api.access import open_dossier
from gateway.api.dossiers import principal_of
from gateway.api.keys import DOCUMENTS, LIVE, READ_DOCUMENTS, STORE, UPLOADS
from gateway.api.responses import json_response
from gateway.documents.base import CHUNK, DigestMismatch, DocumentMissing, DocumentTooLarge
from gateway.documents.digests import BadDigestField, expected_digests
from gateway.documents.rules import NotOfType, limits_for, sniffed
from gateway.errors import (
    FieldError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from gateway.ids import new_id
from gateway.store.base import NewUpload

routes = web.RouteTableDef()


def _filename(request: web.Request) -> str | None:
    header = request.headers.get("Content-Disposition")
    if not header:
        return None
    _, params = parse_content_disposition(header)
    name = params.get("filename*") or params.get("filename")
    if name and (why := control_character(name)) is not None:  # as in every name a centre sends
        raise InvalidRequest(
            f"the file name in Content-Disposition: {why}",
            errors=[FieldError("headers.Content-Disposition", why, "control_character")],
        )
    return name[:200].strip() or None if name else None


async def arriving(body: aiohttp.StreamReader, whole: float, pause: float) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive: all within `whole` seconds, and none after a pause longer than
    `pause`; otherwise 408. The middleware does not read this route's body first (it streams, larger than
    any body it would hold), so the deadline it puts on other bodies is kept here."""
    loop = asyncio.get_running_loop()
    end = loop.time() + whole
    while True:
        try:
            async with asyncio.timeout_at(min(end, loop.time() + pause)):
                chunk = await body.read(CHUNK)
        except TimeoutError:
            late = "did not arrive" if loop.time() >= end else "stopped arriving"
            limit = whole if loop.time() >= end else pause
            raise RequestTimeout(f"the document {late} within {limit:g} s") from None
        if not chunk:
            return
        yield chunk


@routes.post("/v1/documents")
async def upload(request: web.Request) -> web.Response:
    """Take one document as the request body; 201 with the id a dossier's attachment names it by.

    `?procedure=&component=` checks it against that component's limits now rather than at intake. The
    body is streamed to the document store: within `[documents] upload_timeout`, never pausing longer than
    `[limits] body_timeout`, never past the component's (or the gateway's) size limit.
    """
    p = principal_of(request)
    p.require("submit")
    live = request.app[LIVE].current
    settings = live.config.gateway.documents
    procedure = request.query.get("procedure")
    spec = live.catalog.get(procedure) if procedure else None
    if procedure and spec is None:
        raise ValidationFailed(
            f"procedure {procedure} is not offered here",
            errors=[FieldError("query.procedure", "not in the procedure catalog", "unknown_procedure")],
        )
    limits = limits_for(settings, spec, request.query.get("component"))
    if "Content-Type" not in request.headers:
        raise UnsupportedMediaType(
            "send the document's media type in Content-Type",
            errors=[FieldError("headers.Content-Type", "missing", "missing")],
        )
    media_type = request.content_type
    if (problem := limits.type_problem(media_type)) is not None:
        raise UnsupportedMediaType(
            problem, errors=[FieldError("headers.Content-Type", problem, "media_type_not_allowed")]
        )
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise UnsupportedMediaType(
            "send the document as it is, without a content coding",
            errors=[FieldError("headers.Content-Encoding", "only identity", "content_coding")],
        )
    name = _filename(request)
    length = request.content_length
    if length is not None and (problem := limits.size_problem(length)) is not None:
        raise PayloadTooLarge(problem, errors=[FieldError("headers.Content-Length", problem, "too_large")])
    try:
        declared = expected_digests(request.headers)
    except BadDigestField as exc:
        raise InvalidRequest(str(exc), errors=[FieldError(f"headers.{exc.field}", str(exc), "bad_digest")]) from None
    documents = request.app[DOCUMENTS]
    try:
        # An upload in progress holds a few chunks of its body; one waiting for its turn, only what the
        # connection buffers (aiohttp stops reading the socket past that).
        async with request.app[UPLOADS]:
            stored = await documents.put(
                sniffed(
                    arriving(request.content, settings.upload_timeout, live.config.gateway.limits.body_timeout),
                    media_type,
                ),
                max_bytes=limits.max_bytes,
                expected={algorithm: digest for algorithm, (digest, _) in declared.items()},
            )
    except DocumentTooLarge as exc:
        problem = f"the document is larger than the {exc.limit} bytes accepted for {limits.where()}"
        raise PayloadTooLarge(problem, errors=[FieldError("body", problem, "too_large")]) from None
    except DigestMismatch as exc:
        field = declared[exc.algorithm][1]
        raise ValidationFailed(
            "the document is not the one its digest names",
            errors=[FieldError(f"headers.{field}", str(exc), "digest_mismatch")],
        ) from None
    except NotOfType as exc:
        raise UnsupportedMediaType(str(exc), errors=[FieldError("body", str(exc), "not_of_type")]) from None
    except (aiohttp.ClientPayloadError, ConnectionError) as exc:
        raise InvalidRequest(f"the upload did not arrive whole: {exc}") from None
    now = datetime.now(UTC)
    new = NewUpload(
        id=str(new_id()),
        client_id=p.client_id,
        sha256=stored.sha256,
        size=stored.size,
        media_type=media_type,
        name=name,
        created_at=now,
        expires_at=time.time() + settings.upload_ttl,
    )
    try:
        await request.app[STORE].create_upload(new)
    except BaseException:
        await documents.discard(stored)
        raise
    body = {
        "id": new.id,
        "sha256": new.sha256,
        "size": new.size,
        "media_type": new.media_type,
        "name": new.name,
        "expires_at": datetime.fromtimestamp(new.expires_at, UTC).isoformat(),
    }
    return json_response(body, status=201, headers={"Location": f"/v1/documents/{new.id}"})


@routes.get("/v1/dossiers/{ref}/attachments/{index}")
async def download_attachment(request: web.Request) -> web.StreamResponse:
    """A submitted document, streamed from the document store."""
    d = await open_dossier(request, "attachment")
    try:
        a = d.submission.attachments[int(request.match_info["index"])]
    except (ValueError, IndexError):
        raise NotFound(f"dossier {d.code} has {len(d.submission.attachments)} attachments") from None
    headers = {
        "Content-Type": a.media_type or "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{d.code}-{request.match_info["index"]}"',
    }
    if a.sha256:
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(a.sha256)).decode()}:"
    if a.content_base64 is not None:  # kept inline by a gateway older than the document store
        return web.Response(body=base64.b64decode(a.content_base64), headers=headers)
    documents = request.app[READ_DOCUMENTS]
    if a.sha256 is None or not await documents.exists(a.sha256):
        raise NotFound(f"attachment {request.match_info['index']} of {d.code} is not in the document store yet")
    path = request.app[DOCUMENTS].local_path(a.sha256)
    if path is not None and await documents.in_folder(a.sha256):
        return web.FileResponse(path, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    try:
        async for chunk in documents.chunks(a.sha256):
            await response.write(chunk)
    except DocumentMissing:
        pass  # swept between the check and the read: the response ends short, as the client sees
    await response.write_eof()
    return response
