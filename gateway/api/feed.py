"""The status feed the national portal pulls: every status change in commit order, in the portal's format.

GET /v1/feed?after=<seq>&limit=<n>: the portal keeps `next_after` and asks again from there; nothing is
skipped and nothing comes twice. Each item is one progress record (CapNhatTienDoHoSoMC) and the dossier's
current record (DongBoHoSoMC), which the portal upserts by MaHoSo: the same records, field for field, that
the gateway pushes to the portal with `[portal] push_url` set (gateway/portal.py, contracts/portal.py). A
centre reads its own dossiers' feed.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.access import audit
from gateway.api.dossiers import principal_of
from gateway.api.keys import LIVE, STORE
from gateway.api.responses import json_response, query_int
from gateway.portal import PortalRecords

routes = web.RouteTableDef()


@routes.get("/v1/feed")
async def feed(request: web.Request) -> web.Response:
    p = principal_of(request)
    p.require("read")
    after = query_int(request, "after", 0, low=0, high=2**63 - 1)
    limit = query_int(request, "limit", 100, low=1, high=1000)
    client = p.client_id if p.conf.kind == "centre" else None
    items = await request.app[STORE].feed(after=after, limit=limit, client_id=client)
    basis = "own" if client is not None else "all-dossiers"
    build = PortalRecords(request.app[LIVE].current)
    await audit(request, "feed", basis=basis, detail={"after": after, "count": len(items)})
    return json_response(
        {
            "items": [build.feed_item(item) for item in items],
            "next_after": items[-1].event.seq if items else after,
        }
    )
