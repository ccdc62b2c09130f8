"""KPIs over HTTP: JSON and CSV for operators, the on-time series, the league from conf/league.toml (in full
for operators, a centre's own row for a centre), and clear problems for bad queries."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from gateway.api.keys import STORE
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_cli import cli
from tests.gateway.test_kpi import EXPECTED, HANOI, HCM, seeded

PERIOD = "from=2025-12-31&to=2026-01-31"


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    # Volume alone: HCM finished as many as Hà Nội (2 each) but on time more; with on-time weight 0 the
    # two tie on volume, so the weights decide the order through the on-time rate below.
    (conf / "league.toml").write_text("[league]\non_time_weight = 1.0\nvolume_weight = 0.5\n", "utf-8")
    return conf


async def test_kpis_per_centre_as_json_and_csv(harness: GatewayHarness) -> None:
    await seeded(harness.app[STORE])
    op = harness.headers("operator")
    resp = await harness.client.get(f"/v1/admin/kpis?by=centre&{PERIOD}", headers=op)
    assert resp.status == 200
    body = await resp.json()
    names = {ln["item"]: ln.pop("name") for ln in body["items"]}
    assert names == {HANOI: "Trung tâm phục vụ hành chính công phường Hoàn Kiếm", HCM: names[HCM]} and names[HCM]
    assert {ln.pop("item"): ln for ln in body["items"]} == EXPECTED
    resp = await harness.client.get(f"/v1/admin/kpis?by=centre&{PERIOD}&format=csv", headers=op)
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "kpis-centre-2025-12-31-2026-01-31.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [(r["centre"], r["on_time_rate"], r["p90_working_days"]) for r in rows] == [
        (HANOI, "0.5", "3"),
        (HCM, "1.0", "4"),
    ]
    resp = await harness.client.get(f"/v1/admin/kpis/series?by=centre&{PERIOD}&bucket=week", headers=op)
    series = {s["item"]: s["points"] for s in (await resp.json())["items"]}
    # Hà Nội finished A in the week of 5/1 (on time) and B in the week of 12/1 (late).
    assert [(p["bucket"], p["on_time_rate"]) for p in series[HANOI] if p["finished"]] == [
        ("2026-01-05", 1.0),
        ("2026-01-12", 0.0),
    ]


async def test_kpis_refuse_bad_queries_and_centres(harness: GatewayHarness) -> None:
    op = harness.headers("operator")
    for query, field in (
        ("by=commune", "query.by"),
        ("from=31/12/2025", "query.from"),
        ("from=2026-02-01&to=2026-01-01", "query.from"),
    ):
        resp = await harness.client.get(f"/v1/admin/kpis?{query}", headers=op)
        assert resp.status == 400 and resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["type"].endswith("invalid-request") and body["errors"][0]["path"] == field
    assert (await harness.client.get("/v1/admin/kpis", headers=harness.headers())).status == 403


async def test_the_league_shows_operators_everything_and_a_centre_its_own_row(harness: GatewayHarness) -> None:
    await seeded(harness.app[STORE])
    resp = await harness.client.get(f"/v1/kpis/league?{PERIOD}", headers=harness.headers("operator"))
    assert resp.status == 200
    body = await resp.json()
    assert body["weights"]["on_time_weight"] == 1.0 and body["weights"]["volume_weight"] == 0.5
    # HCM: 1.0 * 1.0 + 0.5 * 2/2 = 1.5; Hà Nội: 1.0 * 0.5 + 0.5 * 2/2 = 1.0
    assert [(r["rank"], r["centre"], r["score"]) for r in body["items"]] == [(1, HCM, 1.5), (2, HANOI, 1.0)]
    assert all("figures" in r for r in body["items"])
    assert body["previous"] == {"from": "2025-11-29", "to": "2025-12-30"}
    assert [r["movement"] for r in body["items"]] == [None, None]  # nobody ranked the month before

    mine = await (await harness.client.get(f"/v1/kpis/league?{PERIOD}", headers=harness.headers())).json()
    assert mine["own"] == HANOI
    assert [(r["rank"], r["centre"]) for r in mine["items"]] == [(1, HCM), (2, HANOI)]
    assert "figures" not in mine["items"][0] and mine["items"][1]["figures"]["late"] == 1


async def test_the_command_line_prints_the_kpis_and_rebuilds_them(harness: GatewayHarness) -> None:
    await seeded(harness.app[STORE])
    code, out = await cli("kpis", "report", "--by", "centre", "--from", "2025-12-31", "--to", "2026-01-31")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["centre"], r["finished"], r["on_time_rate"]) for r in rows] == [(HANOI, "2", "0.5"), (HCM, "2", "1.0")]
    code, out = await cli("kpis", "rebuild")
    assert (code, out.strip()) == (0, "KPIs recomputed from the events of 5 dossier(s)")
    code, out = await cli("kpis", "report", "--from", "31/12/2025")
    assert code != 0 and "YYYY-MM-DD" in out


def test_conf_check_names_a_bad_league_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "league.toml").write_text('[league]\non_time_weight = -1\nvolume = "speed"\n', "utf-8")
    assert main(["conf", "check", str(conf)]) == 1
    out = capsys.readouterr().out
    assert "league.toml: league.on_time_weight: Input should be greater than or equal to 0" in out
    assert "league.volume: Input should be 'finished' or 'received'" in out
