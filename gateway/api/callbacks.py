"""Agencies report status changes here; the plugin turns their wire format into canonical updates.

An agency's credentials reach only the dossiers routed to it: any other is refused (403) and audited,
and nothing of the callback is kept. The callback's nonce (handed over by the plugin's verifier) is
recorded in the transaction that applies it: a callback that failed to apply (a full disk: 503) is
applied when sent again, byte for byte; a replay within [callbacks] replay_window is refused (401).
"""

from __future__ import annotations

from aiohttp import web

from adapters.signing import collect_nonces
from gateway.api.access import audit
from gateway.api.dossiers import principal_of
from gateway.api.keys import CONNECTORS, LIVE, METRICS, STORE
from gateway.api.responses import json_response
from gateway.errors import Forbidden, InvalidResult, NotFound, Unauthenticated, WrongAgency
from gateway.store.base import ReplayedRequest, ReplayKey, UpdateSource

routes = web.RouteTableDef()


@routes.post("/v1/callbacks/{agency}")
async def callback(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("callback")
    agency = request.match_info["agency"]
    if p.conf.agency != agency:
        raise Forbidden(f"client {p.client_id!r} may post callbacks for {p.conf.agency!r} only")
    config = request.app[LIVE].current.config
    conf = config.agencies.get(agency)
    if conf is None:
        raise NotFound(f"no agency {agency!r}")
    endpoint = next(iter(conf.endpoints))
    body = await request.read()
    connector = request.app[CONNECTORS][(agency, endpoint)]
    with collect_nonces() as nonces:
        updates = await connector.handle_callback(body, request.headers)
    replay = ReplayKey(agency, " ".join(nonces), config.gateway.callbacks.replay_window) if nonces else None
    # A callback names no office: an agency of several endpoints is bound by its instance alone.
    source = UpdateSource.of_agency(agency, endpoint if len(conf.endpoints) == 1 else None)
    try:
        outcomes = await request.app[STORE].apply_updates(updates, source=source, replay=replay)
    except ReplayedRequest:
        await audit(request, "callback", allowed=False, basis="replayed", detail={"agency": agency})
        raise Unauthenticated(f"{agency} callback signature rejected: nonce already used") from None
    except WrongAgency as exc:
        detail = {"agency": agency, "event_id": exc.event_id}
        await audit(request, "callback", allowed=False, basis="wrong-agency", dossier_id=exc.dossier_id, detail=detail)
        raise
    except InvalidResult as exc:
        await audit(request, "callback", allowed=False, basis="invalid-result", detail={"agency": agency})
        raise exc from None
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    await request.app[METRICS].finished(request.app[STORE], outcomes)
    return json_response({"received": len(updates), "applied": sum(o.applied for o in outcomes)})
