"""The transaction browser: delivery jobs and every attempt at them, searched by dossier, agency, endpoint,
state, time and error text; a dossier's timeline (status events and attempts together); re-running one
dossier's delivery or a filtered set, after a dry-run count, audited."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.api.dossiers import principal_of
from gateway.api.keys import DISPATCHER, LIVE, STORE
from gateway.api.responses import json_response, query_int, read_json
from gateway.errors import FieldError, InvalidRequest, NotFound, ValidationFailed
from gateway.maintenance import parse_when
from gateway.store.attempts import OUTCOMES, AttemptQuery, AttemptRecord
from gateway.store.base import AuditEntry, JobRecord
from gateway.store.deliveries import RERUNNABLE
from gateway.store.filters import JobFilter

routes = web.RouteTableDef()
JOB_STATES = ("waiting", "pending", "leased", "done", "dead", "cancelled")


class _Filters:
    """The browser's filters from a query string (`where` "query") or a JSON body ("body"): each checked,
    each error with its path."""

    def __init__(self, request: web.Request, values: dict[str, Any], where: str) -> None:
        self.request, self.values, self.where = request, values, where
        self.errors: list[FieldError] = []

    def _path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where == "query" else name

    def text(self, name: str, max_len: int = 200) -> str | None:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or len(raw) > max_len:
            self.errors.append(FieldError(self._path(name), f"a text of at most {max_len} characters"))
            return None
        return raw

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        raw = self.text(name)
        if raw is not None and raw not in allowed:
            self.errors.append(FieldError(self._path(name), f"one of: {', '.join(allowed)}"))
            return None
        return raw

    def agency(self) -> str | None:
        agencies = tuple(self.request.app[LIVE].current.config.agencies)
        raw = self.text("agency")
        if raw is not None and raw not in agencies:
            self.errors.append(FieldError(self._path("agency"), f"no agency named {raw!r}: {', '.join(agencies)}"))
            return None
        return raw

    def instant(self, name: str) -> float | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return parse_when(raw, datetime.now(UTC), ago=True).timestamp()
        except ValueError as exc:
            self.errors.append(FieldError(self._path(name), str(exc)))
            return None

    def check(self) -> None:
        if self.errors:
            kind = InvalidRequest if self.where == "query" else ValidationFailed
            raise kind("the filters have invalid values", errors=self.errors)


async def _dossier_id(request: web.Request, ref: str | None) -> str | None:
    """A dossier named by id or code, as its id; a dossier that does not exist matches nothing."""
    if ref is None:
        return None
    d = await request.app[STORE].get_dossier(ref)
    return str(d.id) if d is not None else "00000000-0000-0000-0000-000000000000"


def _job(j: JobRecord) -> dict[str, Any]:
    return {
        "id": j.id,
        "dossier_id": str(j.dossier_id),
        "agency": j.agency,
        "endpoint": j.endpoint,
        "step": j.step,
        "state": j.state,
        "attempts": j.attempts,
        "last_error": j.last_error,
        "updated_at": datetime.fromtimestamp(j.updated_at, UTC).isoformat() if j.updated_at else None,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _attempt(a: AttemptRecord, bodies: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "job_id": a.job_id,
        "dossier_id": a.dossier_id,
        "agency": a.agency,
        "endpoint": a.endpoint,
        "step": a.step,
        "attempt": a.attempt,
        "at": _iso(a.started_at),
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
        "error": a.error,
        "agency_ref": a.agency_ref,
    }
    if bodies:
        out |= {"request_body": a.request_body, "response_body": a.response_body}
    return out


async def _job_filter(request: web.Request, f: _Filters, *, states: tuple[str, ...]) -> JobFilter:
    agency, endpoint, text = f.agency(), f.text("endpoint"), f.text("error")
    state = f.choice("state", states)
    # `since` is the older spelling of `from` (lienthong deliveries --since); either narrows the same way.
    since, until = f.instant("from") or f.instant("since"), f.instant("to")
    dossier = f.text("dossier")
    ids = f.values.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(type(i) is int for i in ids)):
        f.errors.append(FieldError(f._path("ids"), "a list of job ids"))
        ids = None
    f.check()
    return JobFilter(
        ids=tuple(ids) if ids is not None else None,
        dossier_id=await _dossier_id(request, dossier),
        agency=agency,
        endpoint=endpoint,
        states=(state,) if state else None,
        text=text,
        since=since,
        until=until,
    )


@routes.get("/v1/admin/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    """Delivery jobs, newest first, by state, agency, endpoint, dossier (id or code), error text and when
    they last changed (`from`, `to`: a date and time, or a duration before now)."""
    principal_of(request).require("admin")
    limit = query_int(request, "limit", 200, low=1, high=10_000)
    where = await _job_filter(request, _Filters(request, dict(request.query), "query"), states=JOB_STATES)
    jobs = await request.app[STORE].find_jobs(where, limit)
    return json_response({"items": [_job(j) for j in jobs]})


@routes.get("/v1/admin/attempts")
async def attempts(request: web.Request) -> web.Response:
    """Every delivery attempt, newest first, by dossier, agency, endpoint, outcome, time and error text;
    `before` (an attempt id) pages back; `bodies=true` adds the captured bodies."""
    principal_of(request).require("admin")
    f = _Filters(request, dict(request.query), "query")
    agency, endpoint, outcome, text = f.agency(), f.text("endpoint"), f.choice("outcome", OUTCOMES), f.text("error")
    since, until, dossier = f.instant("from"), f.instant("to"), f.text("dossier")
    f.check()
    query = AttemptQuery(
        dossier_id=await _dossier_id(request, dossier),
        agency=agency,
        endpoint=endpoint,
        outcome=outcome,
        since=since,
        until=until,
        text=text,
        before_id=query_int(request, "before", None, low=1, high=2**62),
        limit=query_int(request, "limit", 100, low=1, high=1000),
    )
    found = await request.app[STORE].attempts(query)
    bodies = request.query.get("bodies") == "true"
    return json_response(
        {
            "items": [_attempt(a, bodies) for a in found],
            "next_before": found[-1].id if len(found) == query.limit else None,
        }
    )


@routes.get("/v1/admin/dossiers/{ref}/timeline")
async def timeline(request: web.Request) -> web.Response:
    """A dossier's status events and delivery attempts in the order they happened (audited: the operator
    opened the dossier's history)."""
    p = principal_of(request)
    p.require("admin")
    store = request.app[STORE]
    d = await store.get_dossier(request.match_info["ref"])
    if d is None:
        raise NotFound(f"no dossier {request.match_info['ref']!r}")
    await store.audit([AuditEntry(p.client_id, "timeline", "allowed", "admin", str(d.id))])
    events, tried = await store.events(d.id), await store.dossier_attempts(str(d.id))
    # Merged by time, each kind in its own order: events as the log has them (an agency's event carries the
    # agency's clock), attempts as they were made.
    logged = [
        (
            e.at.timestamp(),
            {"kind": "event", "at": e.at.isoformat(), "status": int(e.status), "actor": e.actor, "note": e.note},
        )
        for e in events
    ]
    made = [(a.started_at, {"kind": "attempt", **_attempt(a, True)}) for a in tried]
    items = [entry for _, entry in heapq.merge(logged, made, key=lambda t: t[0])]
    return json_response(
        {"dossier": {"id": str(d.id), "code": d.code, "status": int(d.status), "agency": d.agency}, "items": items}
    )


@routes.post("/v1/admin/deliveries/rerun")
async def rerun(request: web.Request) -> web.Response:
    """Send again the done or dead jobs of a filter (`state`: dead by default): one dossier's (`dossier`),
    these `ids`, an agency's, an endpoint's, those whose error says `error`, changed between `from` and
    `to`. `dry_run: true` answers how many it would send, and sends nothing. Audited with the count."""
    p = principal_of(request)
    p.require("admin")
    raw, _ = await read_json(request)
    if not isinstance(raw, dict):
        raise ValidationFailed("send a JSON object", errors=[FieldError("", "an object of filters")])
    dry_run = raw.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ValidationFailed("dry_run is true or false", errors=[FieldError("dry_run", "true or false")])
    where = await _job_filter(request, _Filters(request, raw, "body"), states=RERUNNABLE)
    narrowed = (where.ids, where.dossier_id, where.agency, where.endpoint, where.text, where.since, where.until)
    if where.states == ("done",) and all(v is None for v in narrowed):
        # Sending every delivered dossier again is never what an operator means.
        raise ValidationFailed(
            "re-running delivered jobs needs a filter", errors=[FieldError("state", "done needs another filter")]
        )
    detail = {k: v for k, v in raw.items() if k != "dry_run" and v is not None}
    entry = AuditEntry(p.client_id, "rerun", "allowed", "admin", where.dossier_id, detail=detail)
    store = request.app[STORE]
    if dry_run:
        return json_response({"dry_run": True, "matched": await store.rerun_jobs(where, audit=None, dry_run=True)})
    n = await store.rerun_jobs(where, audit=entry)
    request.app[DISPATCHER].wake()
    return json_response({"dry_run": False, "rerun": n})
