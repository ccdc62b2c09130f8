"""Operator endpoints: deliveries by state, replay of dead letters, agency endpoints' state and checks,
pauses, the audit log, reload."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from contracts import DossierStatus
from gateway import live
from gateway.api.dossiers import principal_of
from gateway.api.keys import CHECKPOINTER, CONNECTORS, DISPATCHER, GATE, LIVE, REGISTRY, STORE
from gateway.api.responses import json_response, query_int, read_json
from gateway.checkpoints import verify_log
from gateway.errors import ConfigError, Conflict, FieldError, NotFound, ValidationFailed
from gateway.maintenance import parse_when
from gateway.server import SERVER_TLS
from gateway.store.base import AuditEntry, Pause

routes = web.RouteTableDef()
log = structlog.get_logger("lienthong.admin")


@routes.post("/v1/admin/deliveries/replay")
async def replay(request: web.Request) -> web.Response:
    """Dead letters become pending again: all, or these ids, of an agency (and endpoint), dead since when."""
    p = principal_of(request)
    p.require("admin")
    raw, _ = await read_json(request) if request.body_exists else ({}, b"")
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    ids = body.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
        raise ValidationFailed("ids is a list of job ids", errors=[FieldError("ids", "a list of integers")])
    agency, endpoint = _agency_endpoint(request, body.get("agency"), body.get("endpoint"), required=False)
    since = _instant(body, "since", ago=True) if body.get("since") is not None else None
    detail = {"ids": ids if ids is not None else "all", "agency": agency, "endpoint": endpoint, "since": since}
    n = await request.app[STORE].replay_dead(
        ids,
        agency=agency,
        endpoint=endpoint,
        since=since.timestamp() if since else None,
        audit=AuditEntry(p.client_id, "replay", "allowed", "admin", detail=_jsonable(detail)),
    )
    request.app[DISPATCHER].wake()
    return json_response({"replayed": n})


def _jsonable(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in detail.items() if v is not None}


def _agency_endpoint(
    request: web.Request, agency: Any, endpoint: Any, *, required: bool
) -> tuple[str | None, str | None]:
    """An agency (and endpoint) named in a request, checked against the configuration: `required`, it is
    the path's (404 when unknown); otherwise the body's, optional (422 when unknown)."""
    agencies = request.app[LIVE].current.config.agencies
    if agency is None and not required and endpoint is None:
        return None, None
    if required and agency not in agencies:
        raise NotFound(f"no agency named {agency!r}")
    if not isinstance(agency, str) or agency not in agencies:
        raise ValidationFailed(
            f"no agency named {agency!r}", errors=[FieldError("agency", f"one of: {', '.join(agencies)}")]
        )
    if endpoint is not None and (not isinstance(endpoint, str) or endpoint not in agencies[agency].endpoints):
        known = ", ".join(agencies[agency].endpoints)
        raise ValidationFailed(
            f"agency {agency!r} has no endpoint {endpoint!r}", errors=[FieldError("endpoint", f"one of: {known}")]
        )
    return agency, endpoint


def _instant(body: dict[str, Any], name: str, *, ago: bool = False) -> datetime:
    raw = body.get(name)
    if not isinstance(raw, str):
        raise ValidationFailed(f"{name} is missing", errors=[FieldError(name, "a date and time, or a duration")])
    try:
        return parse_when(raw, datetime.now(UTC), ago=ago)
    except ValueError as exc:
        raise ValidationFailed(str(exc), errors=[FieldError(name, str(exc))]) from None


@routes.get("/v1/admin/audit")
async def audit_log(request: web.Request) -> web.Response:
    principal_of(request).require("admin")
    after = query_int(request, "after", 0, low=0, high=2**63 - 1)
    limit = query_int(request, "limit", 100, low=1, high=1000)
    records = await request.app[STORE].audit_log(
        after=after, limit=limit, dossier_id=request.query.get("dossier"), client_id=request.query.get("client")
    )
    return json_response(
        {
            "items": [
                {
                    "seq": r.seq,
                    "at": r.at.isoformat(),
                    "client": r.client_id,
                    "action": r.action,
                    "outcome": r.outcome,
                    "basis": r.basis,
                    "dossier_id": r.dossier_id,
                    "detail": r.detail,
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                }
                for r in records
            ],
            "next_after": records[-1].seq if records else after,
        }
    )


@routes.get("/v1/admin/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    """Walk the log: its chain, and with an audit key its seals and its checkpoints (the store's and the
    exported folder's); the head, and the last checkpoint."""
    principal_of(request).require("admin")
    store = request.app[STORE]
    checkpointer = request.app.get(CHECKPOINTER)
    if checkpointer is None:
        check = await store.verify_audit()
        head = await store.audit_head()
        problems = [] if check.ok else [f"record {check.first_bad}: {check.reason}"]
        last = None
    else:
        chain, _, _ = await checkpointer.known()
        verdict = await verify_log(store, checkpointer.verifier, chain.valid)
        check, head, problems, last = verdict.check, verdict.head, verdict.problems, chain.last
    return json_response(
        {
            "ok": not problems,
            "checked": check.checked,
            "first_bad": check.first_bad,
            "reason": check.reason,
            "problems": problems,
            "head": {"seq": head[0], "hash": head[1]},
            "sealed": checkpointer is not None,
            "checkpoint": last.summary() if last is not None else None,
        }
    )


@routes.post("/v1/admin/reload")
async def reload_configuration(request: web.Request) -> web.Response:
    """Load the configuration folder again and swap clients, procedures, routes and bundles in; load the
    listener's certificate again."""
    principal_of(request).require("admin")
    if request.query.get("dry_run", "false").lower() in ("true", "1", "yes"):
        return await _reload_preview(request)
    try:
        changed = await reload_and_audit(request.app, principal_of(request).client_id)
    except ConfigError as exc:
        errors = [FieldError(f"{file}: {key}" if key else file, message) for file, key, message in exc.problems]
        raise ValidationFailed("the configuration has errors; nothing was changed", errors=errors) from None
    except live.RestartNeeded as exc:
        raise Conflict(str(exc), extra={"restart_needed": exc.parts}) from None
    return json_response({"reloaded": True, "changed": changed})


async def _reload_preview(request: web.Request) -> web.Response:
    """?dry_run=true: what a reload would change, item by item (secrets masked), and whether it would be
    refused for a restart; nothing changes. Audited as an operator's look at the configuration."""
    by = principal_of(request).client_id
    try:
        changes, restart = await live.preview(request.app[LIVE], request.app[REGISTRY])
    except ConfigError as exc:
        errors = [FieldError(f"{file}: {key}" if key else file, message) for file, key, message in exc.problems]
        raise ValidationFailed("the configuration has errors; a reload would change nothing", errors=errors) from None
    await admin_audit(request.app, by, "reload-preview", detail={"changes": len(changes), "restart_needed": restart})
    return json_response(
        {
            "dry_run": True,
            "would_reload": not restart,
            "restart_needed": restart,
            "changes": [c.as_json() for c in changes],
            "lines": [c.line() for c in changes],
        }
    )


async def reload_and_audit(app: web.Application, by: str) -> dict[str, Any]:
    """A reload (API or SIGHUP): configuration, then the listener's certificate, each audited as an admin
    action, refused or done. ConfigError and RestartNeeded leave everything as it was."""
    try:
        changed = await live.reload(app[LIVE], app[REGISTRY])
    except (ConfigError, live.RestartNeeded) as exc:
        await admin_audit(
            app, by, "reload", allowed=False, basis="configuration-refused", detail={"error": str(exc)[:500]}
        )
        raise
    state = app.get(SERVER_TLS)
    if state is not None:
        try:
            changed["tls"] = await asyncio.to_thread(state.reload)
        except (OSError, ssl.SSLError, ValueError) as exc:
            # The configuration is in; the listener keeps serving its previous certificate.
            changed["tls"] = {"error": f"the certificate was not reloaded: {exc}"}
            log.error("certificate_reload_failed", error=str(exc))
    await admin_audit(app, by, "reload", detail=_reload_summary(changed))
    log.info("configuration_reloaded", by=by, **changed)
    return changed


def _reload_summary(changed: dict[str, Any]) -> dict[str, Any]:
    """What the audit record keeps of a reload: what changed, without empty lists."""
    out: dict[str, Any] = {}
    for part, diff in changed.items():
        if isinstance(diff, dict):
            kept = {k: v for k, v in diff.items() if v}
            if kept:
                out[part] = kept
        elif isinstance(diff, list) and diff:  # the item-by-item diff (secrets masked)
            out[part] = diff
    return out


async def admin_audit(
    app: web.Application,
    by: str,
    action: str,
    *,
    allowed: bool = True,
    basis: str = "admin",
    detail: dict[str, Any] | None = None,
) -> None:
    """An operator's action in the audit log, beside the accesses to dossiers."""
    outcome = "allowed" if allowed else "denied"
    await app[STORE].audit([AuditEntry(by, action, outcome, basis, None, detail or {})])


def endpoint_items(app: web.Application, pending: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Each agency endpoint's state (closed, open, maintenance, paused; since and until when, why) with its
    pending jobs and those held (pending at an endpoint that may not be called now)."""
    gate, dispatcher = app[GATE], app[DISPATCHER]
    now = time.time()
    items = []
    for agency, endpoint in gate.endpoints:
        item = gate.state(agency, endpoint, now)
        n = pending.get((agency, endpoint), 0)
        item |= {
            "pending": n,
            "held": n if gate.decide(agency, endpoint, now) != "call" else 0,
            "concurrency": dispatcher.concurrency.get(agency),
            "in_flight": dispatcher.in_flight.get(agency, 0),
        }
        items.append(item)
    return items


@routes.get("/v1/admin/agencies")
async def agencies(request: web.Request) -> web.Response:
    """Every endpoint's state; with ?check=false, no connectivity check (an endpoint held is never checked:
    nothing is sent to it)."""
    principal_of(request).require("admin")
    connectors = request.app[CONNECTORS]
    items = endpoint_items(request.app, await request.app[STORE].pending_by_endpoint())
    if request.query.get("check", "true").lower() not in ("false", "0", "no"):
        checked = [i for i in items if i["state"] not in ("paused", "maintenance")]
        results = await asyncio.gather(*(connectors[(i["agency"], i["endpoint"])].check() for i in checked))
        for item, r in zip(checked, results, strict=True):
            item |= {"ok": r.ok, "detail": r.detail, "latency_ms": r.latency_ms}
        for item in items:
            item.setdefault("ok", None)
            item.setdefault("detail", f"not checked: {item['state']} until {item['paused_until']}")
            item.setdefault("latency_ms", None)
    return json_response({"items": items})


@routes.post("/v1/admin/agencies/{agency}/pause")
async def pause(request: web.Request) -> web.Response:
    """Send nothing to an agency (or one endpoint) until a time: its deliveries are held, its pollers wait."""
    p = principal_of(request)
    p.require("admin")
    raw, _ = await read_json(request)
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    agency, endpoint = _agency_endpoint(request, request.match_info["agency"], body.get("endpoint"), required=True)
    assert agency is not None
    until = _instant(body, "until")
    reason = body.get("reason")
    errors = []
    if until <= datetime.now(UTC):
        errors.append(FieldError("until", "a time to come"))
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 500:
        errors.append(FieldError("reason", "why, in 1 to 500 characters"))
    if errors:
        raise ValidationFailed("the pause has invalid fields", errors=errors)
    assert isinstance(reason, str)
    held = Pause(agency, endpoint, until.timestamp(), reason.strip(), p.client_id, time.time())
    detail = {"agency": agency, "endpoint": endpoint, "until": until, "reason": held.reason}
    await request.app[STORE].pause(held, AuditEntry(p.client_id, "pause", "allowed", "admin", detail=_jsonable(detail)))
    gate = request.app[GATE]
    gate.holds.paused(held)
    gate.note_holds()
    items = [i for i in endpoint_items(request.app, {}) if i["agency"] == agency]
    return json_response({"paused": _jsonable(detail), "endpoints": items})


@routes.post("/v1/admin/agencies/{agency}/resume")
async def resume(request: web.Request) -> web.Response:
    """End an agency's pauses (or one endpoint's): what was held goes at once."""
    p = principal_of(request)
    p.require("admin")
    raw, _ = await read_json(request) if request.body_exists else ({}, b"")
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    agency, endpoint = _agency_endpoint(request, request.match_info["agency"], body.get("endpoint"), required=True)
    assert agency is not None
    detail = _jsonable({"agency": agency, "endpoint": endpoint})
    ended = await request.app[STORE].resume(
        agency, endpoint, AuditEntry(p.client_id, "resume", "allowed", "admin", detail=detail)
    )
    gate = request.app[GATE]
    gate.holds.resumed(agency, endpoint)
    gate.note_holds()
    request.app[DISPATCHER].wake(agency)
    items = [i for i in endpoint_items(request.app, {}) if i["agency"] == agency]
    return json_response({"resumed": len(ended), "endpoints": items})


@routes.get("/v1/admin/overview")
async def overview(request: web.Request) -> web.Response:
    """What the operator dashboard shows: dossiers by status (and those whose delivery was given up),
    deliveries by agency, each agency endpoint's state (breaker, window, pause) with its pending and held
    jobs, dead letters, the bundles waiting for someone to act (the centre retries, supplements or cancels;
    the operator sees why), and the latest refused accesses to dossiers from the audit log."""
    principal_of(request).require("admin")
    store, dispatcher = request.app[STORE], request.app[DISPATCHER]
    counts, dead, bundles, refused, pending = await asyncio.gather(
        store.counts(),
        store.jobs("dead", limit=50),
        store.bundles_needing_action(limit=50),
        store.refused_accesses(20),
        store.pending_by_endpoint(),
    )
    agencies = []
    for name, limit in dispatcher.concurrency.items():
        agencies.append(
            {
                "agency": name,
                "concurrency": limit,
                "in_flight": dispatcher.in_flight.get(name, 0),
                **{
                    state: counts["jobs_by_agency"].get(f"{name}:{state}", 0)
                    for state in ("waiting", "pending", "leased", "done", "dead")
                },
            }
        )
    return json_response(
        {
            "dossiers_by_status": [
                {"status": int(s), "label": s.label, "count": counts["dossiers_by_status"].get(int(s), 0)}
                for s in DossierStatus
            ],
            "overdue": counts["overdue"],
            "undeliverable": counts["undeliverable"],
            "jobs_by_state": counts["jobs_by_state"],
            # A large store's counts are reused for a while (gateway/store/costly.py): the page says how old.
            "counted_at": counts["counted_at"].isoformat(),
            "counts_age_seconds": round((datetime.now(UTC) - counts["counted_at"]).total_seconds(), 1),
            "agencies": agencies,
            "endpoints": endpoint_items(request.app, pending),
            "delivered_total": dispatcher.delivered,
            "dead": [
                {
                    "id": j.id,
                    "dossier_id": str(j.dossier_id),
                    "agency": j.agency,
                    "step": j.step,
                    "attempts": j.attempts,
                    "last_error": j.last_error,
                }
                for j in dead
            ],
            "bundles_needing_action": [
                {
                    "id": str(b.id),
                    "bundle": b.bundle,
                    "client_id": b.client_id,
                    "state": b.state,
                    "actions": b.actions,
                    "steps": [
                        {
                            "step": st.step,
                            "status": int(st.status),
                            "delivery": st.delivery,
                            "last_error": st.last_error,
                        }
                        for st in b.steps
                    ],
                }
                for b in bundles
            ],
            "refused_accesses": [
                {
                    "seq": r.seq,
                    "at": r.at.isoformat(),
                    "client": r.client_id,
                    "action": r.action,
                    "basis": r.basis,
                    "dossier_id": r.dossier_id,
                }
                for r in refused
            ],
        }
    )
