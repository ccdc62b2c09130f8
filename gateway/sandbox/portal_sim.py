"""A national portal simulator that takes pushed status changes (`lienthong simulate portal`).

POST /dongbo/hoso with X-Api-Key (SimulatorOptions.secret) and {"items": [...], "next_after": seq}, the
body the gateway's pusher sends. Each item's records are checked against the portal's contract; the
latest DongBoHoSoMC is kept per MaHoSo (an upsert, as the real portal does), and progress records are
counted by seq, a seq seen before counting as a duplicate. The same faults as agency simulators
(gateway/sdk/simulation.py), plus POST /_sim/refuse {"status": 403} to answer every push with a 4xx until
{"status": null}. GET /_sim/view: what the portal holds; GET /_sim/stats: its counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from contracts.portal import PortalDossier, PortalProgress
from gateway.sdk.simulation import STATS, SimulatorOptions, new_simulator

log = structlog.get_logger("lienthong.simulator")

PUSH_PATH = "/dongbo/hoso"


@dataclass
class PortalView:
    api_key: str
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict)  # MaHoSo -> latest DongBoHoSoMC
    statuses: dict[str, list[int]] = field(default_factory=dict)  # MaHoSo -> TrangThai of each new seq
    seen: set[int] = field(default_factory=set)
    last_seq: int = 0
    refuse: int | None = None  # answer every push with this status (a 4xx), keeping nothing


VIEW = web.AppKey("portal_view", PortalView)


def _malformed() -> web.Response:
    return web.Response(status=200, body=b'{"received": ', content_type="application/json")


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


async def _push(request: web.Request) -> web.Response:
    view, stats = request.app[VIEW], request.app[STATS]
    if request.headers.get("X-Api-Key") != view.api_key:
        stats["unauthorised"] += 1
        return _problem(401, "wrong or missing X-Api-Key")
    if view.refuse is not None:
        stats["refused"] += 1
        return _problem(view.refuse, "refused (simulated)")
    try:
        body = await request.json()
        items = body["items"]
        next_after = int(body["next_after"])
        checked = [
            (int(it["seq"]), PortalProgress.model_validate(it["progress"]), PortalDossier.model_validate(it["dossier"]))
            for it in items
        ]
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        stats["invalid"] += 1
        log.warning("portal_push_invalid", error=str(exc)[:500])
        return _problem(422, f"not a valid push: {str(exc)[:300]}")
    if checked and next_after != checked[-1][0]:
        stats["invalid"] += 1
        return _problem(422, "next_after is not the last item's seq")
    stats["pushes"] += 1
    for seq, progress, record in checked:
        stats["items"] += 1
        if seq in view.seen:
            stats["duplicates"] += 1
        else:
            if seq < view.last_seq:
                stats["out_of_order"] += 1  # a change older than one already taken, and new: must never happen
            view.seen.add(seq)
            view.statuses.setdefault(progress.MaHoSo, []).append(progress.TrangThai)
            stats["progress"] += 1
        view.last_seq = max(view.last_seq, seq)
        view.dossiers[record.MaHoSo] = record.model_dump()  # the portal upserts by MaHoSo
    return web.json_response({"received": len(checked), "next_after": next_after})


async def _view(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    return web.json_response(
        {
            "dossiers": view.dossiers,
            "statuses": view.statuses,
            "progress_records": len(view.seen),
            "last_seq": view.last_seq,
        }
    )


async def _refuse(request: web.Request) -> web.Response:
    try:
        status = (await request.json())["status"]
        if status is not None and not (isinstance(status, int) and 400 <= status < 500):
            raise ValueError("status must be a 4xx or null")
    except (ValueError, KeyError, TypeError) as exc:
        return _problem(422, str(exc))
    request.app[VIEW].refuse = status
    log.info("portal_refuse_changed", status=status)
    return web.json_response({"status": status})


def create_portal_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed)
    app[VIEW] = PortalView(api_key=options.secret)
    app.router.add_post(PUSH_PATH, _push)
    app.router.add_get("/_sim/view", _view)
    app.router.add_post("/_sim/refuse", _refuse)
    return app
