"""GET /v1/feed: every status change once, in commit order, in the national portal's own format."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from contracts.portal import PortalDossier, PortalProgress
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status


async def read_feed(h: GatewayHarness, who: str, page: int) -> list[dict[str, Any]]:
    """Everything the feed holds for `who`, pulled `page` items at a time from the start."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        resp = await h.client.get(f"/v1/feed?after={after}&limit={page}", headers=h.headers(who))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        items += body["items"]
        if not body["items"]:
            assert body["next_after"] == after
            return items
        assert body["next_after"] == body["items"][-1]["seq"]
        after = body["next_after"]


async def test_the_portal_pulls_every_change_once_in_order(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    accepted, procedure = {}, {}
    for i, centre in enumerate(["centre-hanoi", "centre-hcm", "centre-hanoi"]):
        resp = await harness.client.post("/v1/dossiers", json=submission(i), headers=harness.headers(centre))
        body = await resp.json()
        accepted[body["code"]], procedure[body["code"]] = centre, submission(i)["procedure_code"]
    for code in accepted:
        assert (await wait_status(harness, code, 9, who="portal"))["status"] == 9

    items = await read_feed(harness, "portal", page=2)
    seqs = [it["seq"] for it in items]
    assert seqs == sorted(set(seqs))  # in order, none twice
    by_code: dict[str, list[str]] = defaultdict(list)
    for it in items:
        progress, record = it["progress"], it["dossier"]
        assert progress["MaHoSo"] == record["MaHoSo"]
        by_code[record["MaHoSo"]].append(progress["TrangThai"])
        # The record is the dossier as it is now, in the portal's types: finished, with the date it finished.
        assert (record["TrangThaiHoSo"], record["MaTTHC"]) == ("9", procedure[record["MaHoSo"]])
        assert record["NgayKetThucXuLy"] and len(record["NgayKetThucXuLy"]) == 14
        assert record["DonViXuLy"] == "Bộ Công an: Cơ sở dữ liệu quốc gia về dân cư"
        # Names, not the gateway's ids: the centre for the receipt, the agency for its own steps.
        assert progress["NguoiXuLy"] != accepted[record["MaHoSo"]] and not progress["NguoiXuLy"].startswith("agency:")
        PortalDossier.model_validate(record)
        PortalProgress.model_validate(progress)
    assert {code: statuses for code, statuses in by_code.items()} == {code: ["2", "4", "9"] for code in accepted}
    assert await read_feed(harness, "portal", page=1000) == items  # the same feed, whatever the page size

    # A centre reads only its own dossiers' changes.
    hcm = await read_feed(harness, "centre-hcm", page=10)
    assert {it["dossier"]["MaHoSo"] for it in hcm} == {c for c, centre in accepted.items() if centre == "centre-hcm"}
    assert [it["seq"] for it in hcm] == [it["seq"] for it in items if accepted[it["dossier"]["MaHoSo"]] == "centre-hcm"]

    # Asking from the last seq seen gives nothing new until something changes.
    last = seqs[-1]
    resp = await harness.client.get(f"/v1/feed?after={last}", headers=harness.headers("portal"))
    assert (await resp.json()) == {"items": [], "next_after": last}


async def test_feed_parameters_and_access(harness: GatewayHarness) -> None:
    for query in ("after=-1", "after=first", "limit=0", "limit=1001"):
        resp = await harness.client.get(f"/v1/feed?{query}", headers=harness.headers("portal"))
        body = await assert_problem(resp, 400, "invalid-request")
        assert body["errors"][0]["path"] == f"query.{query.split('=')[0]}"
    await assert_problem(await harness.client.get("/v1/feed"), 401, "unauthenticated")
    resp = await harness.client.get("/v1/feed", headers=harness.headers("police-callbacks"))
    await assert_problem(resp, 403, "forbidden")
