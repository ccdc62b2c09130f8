"""Operator endpoints: deliveries by state, replay of dead letters, agency checks, the audit log, reload."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import structlog
from aiohttp import web

from contracts import DossierStatus
from gateway import live
from gateway.api.dossiers import principal_of
from gateway.api.keys import CHECKPOINTER, CONNECTORS, DISPATCHER, LIVE, REGISTRY, STORE
from gateway.api.responses import json_response, query_int, read_json
from gateway.checkpoints import verify_log
from gateway.errors import ConfigError, Conflict, FieldError, ValidationFailed
from gateway.server import SERVER_TLS
from gateway.store.base import AuditEntry

routes = web.RouteTableDef()
log = structlog.get_logger("lienthong.admin")


@routes.get("/v1/admin/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    principal_of(request).require("admin")
    state = request.query.get("state")
    if state not in (None, "pending", "leased", "done", "dead"):
        raise ValidationFailed("unknown state", errors=[FieldError("state", "pending, leased, done or dead")])
    limit = query_int(request, "limit", 200, low=1, high=10_000)
    jobs = await request.app[STORE].jobs(state, limit=limit)  # type: ignore[arg-type]
    return json_response(
        {
            "items": [
                {
                    "id": j.id,
                    "dossier_id": str(j.dossier_id),
                    "agency": j.agency,
                    "endpoint": j.endpoint,
                    "step": j.step,
                    "state": j.state,
                    "attempts": j.attempts,
                    "last_error": j.last_error,
                }
                for j in jobs
            ]
        }
    )


@routes.post("/v1/admin/deliveries/replay")
async def replay(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("admin")
    raw, _ = await read_json(request) if request.body_exists else ({}, b"")
    ids = raw.get("ids") if isinstance(raw, dict) else None
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
        raise ValidationFailed("ids is a list of job ids", errors=[FieldError("ids", "a list of integers")])
    n = await request.app[STORE].replay_dead(ids)
    await admin_audit(
        request.app, p.client_id, "replay", detail={"ids": ids if ids is not None else "all", "replayed": n}
    )
    request.app[DISPATCHER].wake()
    return json_response({"replayed": n})


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
    try:
        changed = await reload_and_audit(request.app, principal_of(request).client_id)
    except ConfigError as exc:
        errors = [FieldError(f"{file}: {key}" if key else file, message) for file, key, message in exc.problems]
        raise ValidationFailed("the configuration has errors; nothing was changed", errors=errors) from None
    except live.RestartNeeded as exc:
        raise Conflict(str(exc), extra={"restart_needed": exc.parts}) from None
    return json_response({"reloaded": True, "changed": changed})


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


@routes.get("/v1/admin/agencies")
async def agencies(request: web.Request) -> web.Response:
    principal_of(request).require("admin")
    connectors = request.app[CONNECTORS]
    checks = await asyncio.gather(*(c.check() for c in connectors.values()))
    return json_response(
        {
            "items": [
                {"agency": a, "endpoint": e, "ok": r.ok, "detail": r.detail, "latency_ms": r.latency_ms}
                for (a, e), r in zip(connectors, checks, strict=True)
            ]
        }
    )


@routes.get("/v1/admin/overview")
async def overview(request: web.Request) -> web.Response:
    """What the operator dashboard shows: dossiers by status, deliveries by agency, dead letters, the
    bundles waiting for someone to act (the centre retries, supplements or cancels; the operator sees why),
    and the latest refused accesses to dossiers from the audit log."""
    principal_of(request).require("admin")
    store, dispatcher = request.app[STORE], request.app[DISPATCHER]
    counts, dead, bundles, refused = await asyncio.gather(
        store.counts(), store.jobs("dead", limit=50), store.bundles_needing_action(limit=50), store.refused_accesses(20)
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
            "jobs_by_state": counts["jobs_by_state"],
            "agencies": agencies,
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
