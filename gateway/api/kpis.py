"""Centre performance: KPIs per centre, agency, procedure or province over a period (JSON or CSV), the
on-time rate over time, and the league table of centres (operators in full, a centre its own row)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from contracts.calendar import VN_TZ
from gateway import kpi
from gateway.api.dossiers import principal_of
from gateway.api.keys import LIVE, STORE
from gateway.api.responses import json_response
from gateway.errors import FieldError, InvalidRequest, ServiceUnavailable
from gateway.store.kpis import DIMENSIONS

routes = web.RouteTableDef()
MAX_DAYS = 1100  # about three years: a longer report is an export job, not a request


def _date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            f"query parameter {name} must be a date (YYYY-MM-DD), not {raw!r}",
            errors=[FieldError(f"query.{name}", "a date, YYYY-MM-DD")],
        ) from None


def period_of(request: web.Request) -> tuple[date, date]:
    """[from, to] in local days; by default the last 30 days, today included."""
    today = datetime.now(VN_TZ).date()
    end = _date(request, "to", today)
    start = _date(request, "from", end - timedelta(days=29))
    if start > end:
        raise InvalidRequest("from is after to", errors=[FieldError("query.from", "a day no later than to")])
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(
            f"the period is longer than {MAX_DAYS} days", errors=[FieldError("query.from", f"at most {MAX_DAYS} days")]
        )
    return start, end


def _by(request: web.Request) -> str:
    by = request.query.get("by", "centre")
    if by not in DIMENSIONS:
        raise InvalidRequest(
            f"cannot group by {by!r}", errors=[FieldError("query.by", f"one of: {', '.join(DIMENSIONS)}")]
        )
    return by


def centre_names(request: web.Request) -> dict[str, str]:
    """Each centre's name (clients.toml) by its unit code; a unit of several clients takes the first."""
    names: dict[str, str] = {}
    for client in request.app[LIVE].current.config.clients.values():
        if client.unit is not None:
            names.setdefault(client.unit, client.name)
    return names


async def _report(request: web.Request, by: str, start: date, end: date) -> list[dict[str, Any]]:
    rows = await request.app[STORE].kpi_rows(by, start, end, datetime.now(UTC))
    lines = kpi.report(rows)
    if by == "centre":
        names = centre_names(request)
        for line in lines:
            line["name"] = names.get(line["item"])
    return lines


@routes.get("/v1/admin/kpis")
async def kpis(request: web.Request) -> web.Response:
    """Every figure per item of `by` over [from, to]; `format=csv` for a spreadsheet."""
    principal_of(request).require("admin")
    by, (start, end) = _by(request), period_of(request)
    lines = await _report(request, by, start, end)
    if request.query.get("format") == "csv":
        name = f"kpis-{by}-{start.isoformat()}-{end.isoformat()}.csv"
        return web.Response(
            text=kpi.to_csv(by, lines),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response({"by": by, "from": start.isoformat(), "to": end.isoformat(), "items": lines})


BUCKETS = ("day", "week", "month")


def _bucket(day: str, size: str) -> str:
    d = date.fromisoformat(day)
    if size == "week":
        return (d - timedelta(days=d.weekday())).isoformat()
    if size == "month":
        return d.replace(day=1).isoformat()
    return day


@routes.get("/v1/admin/kpis/series")
async def series(request: web.Request) -> web.Response:
    """The on-time rate of each item of `by` per day, week or month of [from, to] (the console's chart)."""
    principal_of(request).require("admin")
    by, (start, end) = _by(request), period_of(request)
    size = request.query.get("bucket", "week")
    if size not in BUCKETS:
        raise InvalidRequest(f"unknown bucket {size!r}", errors=[FieldError("query.bucket", "day, week or month")])
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for item, day, received, finished, on_time in await request.app[STORE].kpi_series(by, start, end):
        acc = sums[(item, _bucket(day, size))]
        acc[0] += received
        acc[1] += finished
        acc[2] += on_time
    buckets = sorted({b for _, b in sums})
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (item, b), (received, finished, on_time) in sorted(sums.items()):
        items[item].append(
            {
                "bucket": b,
                "received": received,
                "finished": finished,
                "on_time": on_time,
                "on_time_rate": round(on_time / finished, 4) if finished else None,
            }
        )
    return json_response(
        {
            "by": by,
            "bucket": size,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "buckets": buckets,
            "items": [{"item": k, "points": v} for k, v in sorted(items.items())],
        }
    )


@routes.get("/v1/kpis/league")
async def league(request: web.Request) -> web.Response:
    """Centres ranked by the weights of conf/league.toml over [from, to], with their movement since the
    period of the same length before. An operator sees every row in full; a centre sees the ranking and
    its own row's figures."""
    p = principal_of(request)
    p.require("read")
    start, end = period_of(request)
    prev_start, prev_end = kpi.previous_period(start, end)
    try:
        settings = await asyncio.to_thread(kpi.load_league, request.app[LIVE].current.config.base_dir)
    except ValueError as exc:
        raise ServiceUnavailable(f"the league's weights cannot be read: {exc}") from None
    current, previous = await asyncio.gather(
        _report(request, "centre", start, end), _report(request, "centre", prev_start, prev_end)
    )
    standings = kpi.league(current, previous, settings)
    own = p.conf.unit
    rows = []
    for st in standings:
        row: dict[str, Any] = {
            "rank": st.rank,
            "centre": st.centre,
            "name": st.line.get("name"),
            "score": st.score,
            "movement": st.movement,
            "previous_rank": st.previous_rank,
        }
        if p.is_admin or st.centre == own:
            row["figures"] = st.line
        rows.append(row)
    return json_response(
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "previous": {"from": prev_start.isoformat(), "to": prev_end.isoformat()},
            "weights": settings.model_dump(),
            "own": own if not p.is_admin else None,
            "items": rows,
        }
    )
