"""`lienthong conf diff` and POST /v1/admin/reload?dry_run=true: what a reload would change, item by item,
secrets masked; the reload itself logs and audits the same lines."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from gateway.auth import hash_key
from gateway.cli import main
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_reload import drop_client, edit

NEW_SECRET = "a-new-police-secret-from-the-agency"
NEW_KEY_HASH = hash_key("lt_a-new-key-for-hanoi")


def change(conf: Path) -> None:
    """An added route, a removed client, a changed fee, a rotated key."""
    edit(
        conf / "routes.toml",
        lambda t: t + '\n[[route]]\nprocedure = "1.001193"\nagency = "police"\nendpoint = "national"\n',
    )
    edit(conf / "clients.toml", lambda t: drop_client(t, "centre-danang"))
    edit(
        conf / "procedures.toml", lambda t: t.replace('code = "1.004194"\n', 'code = "1.004194"\nfees_vnd = 25000\n', 1)
    )
    hanoi = (conf / "clients.toml").read_text().split("[client.centre-hanoi]")[1].split("api_key_sha256 = ")[1][1:65]
    edit(conf / "clients.toml", lambda t: t.replace(hanoi, NEW_KEY_HASH))


@pytest.fixture
def gateway_conf(tmp_path: Path) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    return copy


def test_the_diff_of_two_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    shutil.copytree(CONF, new)
    change(new)
    edit(new / "agencies.toml", lambda t: t.replace("demo-police-shared-secret-2025", NEW_SECRET))
    assert main(["conf", "diff", str(new), "--against", str(CONF)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "+ route 1.001193 -> police/national" in lines
    assert "- client centre-danang" in lines
    assert "~ procedure 1.004194: fees_vnd 0 -> 25000" in lines
    assert "~ client centre-hanoi: api_key_sha256 *** -> ***" in lines
    assert "~ agency police: endpoints.national.secret *** -> *** (restart needed)" in lines
    assert (
        lines[-1]
        == "a reload would be refused: agencies.toml (agencies and endpoints) changed; restart the gateway to apply"
    )
    assert NEW_SECRET not in out and NEW_KEY_HASH not in out and "demo-police-shared-secret" not in out
    assert main(["conf", "diff", str(CONF), "--against", str(CONF)]) == 0
    assert capsys.readouterr().out.strip() == "no change"


async def test_a_dry_run_then_the_reload_shows_and_audits_the_same_diff(
    harness: GatewayHarness, gateway_conf: Path
) -> None:
    await asyncio.to_thread(change, gateway_conf)
    resp = await harness.client.post("/v1/admin/reload?dry_run=true", headers=harness.headers("operator"))
    assert resp.status == 200
    preview = await resp.json()
    assert preview["would_reload"] is True and preview["restart_needed"] == []
    assert sorted(preview["lines"]) == sorted(
        [
            "+ route 1.001193 -> police/national",
            "~ client centre-hanoi: api_key_sha256 *** -> ***",
            "- client centre-danang",
            "~ procedure 1.004194: fees_vnd 0 -> 25000",
        ]
    )
    fee = next(c for c in preview["changes"] if c["section"] == "procedure")
    assert fee["fields"] == {"fees_vnd": {"before": 0, "after": 25000}}
    # Nothing changed yet: the removed client still gets in.
    assert (await harness.client.get("/v1/procedures", headers=harness.headers("centre-danang"))).status == 200

    resp = await harness.client.post("/v1/admin/reload", headers=harness.headers("operator"))
    assert resp.status == 200
    assert sorted((await resp.json())["changed"]["diff"]) == sorted(preview["lines"])
    assert (await harness.client.get("/v1/procedures", headers=harness.headers("centre-danang"))).status == 401
    audit = await (await harness.client.get("/v1/admin/audit", headers=harness.headers("operator"))).json()
    actions = {r["action"]: r for r in audit["items"]}
    assert actions["reload-preview"]["detail"] == {"changes": 4, "restart_needed": []}
    assert sorted(actions["reload"]["detail"]["diff"]) == sorted(preview["lines"])
    assert NEW_KEY_HASH not in str(audit)


async def test_a_dry_run_of_a_broken_folder_names_the_errors(harness: GatewayHarness, gateway_conf: Path) -> None:
    await asyncio.to_thread(
        edit,
        gateway_conf / "routes.toml",
        lambda t: t + '\n[[route]]\nprocedure = "1.001193"\nagency = "customs"\nendpoint = "x"\n',
    )
    resp = await harness.client.post("/v1/admin/reload?dry_run=true", headers=harness.headers("operator"))
    assert resp.status == 422
    problem = await resp.json()
    assert any(e["path"].startswith("routes.toml") for e in problem["errors"]), problem
