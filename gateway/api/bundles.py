"""Bundles (liên thông): submit, follow, retry a failed step, cancel the remaining ones."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from contracts.bundle import BundleView
from gateway.api.access import audit, ref_record
from gateway.api.dossiers import IDEMPOTENCY_HEADER, principal_of
from gateway.api.keys import DISPATCHER, INTAKE, STORE
from gateway.api.responses import json_response, read_json
from gateway.errors import Conflict, NotFound

routes = web.RouteTableDef()


@routes.post("/v1/bundles")
async def submit(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("submit")
    intake = request.app[INTAKE]
    async with intake.slots:  # as for single dossiers (Intake.slots)
        raw, body = await read_json(request)
        bid, created = await intake.submit_bundle(p, raw, body, request.headers.get(IDEMPOTENCY_HEADER))
    if created:
        request.app[DISPATCHER].wake()
    view = await request.app[STORE].get_bundle(str(bid))
    return json_response(view, status=202 if created else 200, headers={"Location": f"/v1/bundles/{bid}"})


async def load_visible(request: web.Request, action: str = "bundle") -> BundleView:
    """The bundle named by the path, if this client may see it; audited either way, a refusal answered
    and audited as a missing bundle is (same status, same path: a read, then the audit record)."""
    p = principal_of(request)
    p.require("read")
    ref = request.match_info["ref"]
    try:
        UUID(ref)
    except ValueError:
        view = None
    else:
        view = await request.app[STORE].get_bundle(ref)
    visible = view is not None and (p.conf.kind != "centre" or view.client_id == p.client_id)
    if visible:
        basis = "own" if p.conf.kind == "centre" else "all-dossiers"
    else:
        basis = "not-found" if view is None else "other-client"
    detail = {"bundle_id": str(view.id)} if view is not None else {"bundle_" + k: v for k, v in ref_record(ref).items()}
    await audit(request, action, allowed=visible, basis=basis, detail=detail)
    if view is None or not visible:
        raise NotFound(f"no bundle {ref} for client {p.client_id!r}")
    return view


@routes.get("/v1/bundles/{ref}")
async def get_bundle(request: web.Request) -> web.Response:
    return json_response(await load_visible(request))


@routes.post("/v1/bundles/{ref}/retry")
async def retry(request: web.Request) -> web.Response:
    principal_of(request).require("submit")
    view = await load_visible(request, "bundle-retry")
    if "retry" not in view.actions:
        raise Conflict(f"nothing to retry: the bundle is {view.state}", extra={"actions": view.actions})
    n = await request.app[STORE].retry_bundle(view.id)
    request.app[DISPATCHER].wake()
    return json_response({"retried": n, "bundle": await request.app[STORE].get_bundle(str(view.id))})


@routes.post("/v1/bundles/{ref}/cancel")
async def cancel(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("submit")
    view = await load_visible(request, "bundle-cancel")
    if "cancel_remaining" not in view.actions:
        raise Conflict(f"no remaining steps to cancel: the bundle is {view.state}", extra={"actions": view.actions})
    n = await request.app[STORE].cancel_bundle(view.id, actor=p.client_id)
    return json_response({"cancelled": n, "bundle": await request.app[STORE].get_bundle(str(view.id))})
