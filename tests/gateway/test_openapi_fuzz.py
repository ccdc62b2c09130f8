"""The OpenAPI document against the live gateway: schemathesis (pinned) generates requests for every
operation from the document the gateway serves and checks every answer: no server error, the status
documented, the body and headers as documented. A centre's key for the centres' operations, an
operator's for the admin ones; a real police simulator behind the gateway; rate limits off and a signing
key set, so that the requests reach the operations' logic (receipts, signatures, verification). A bounded
run (a fixed seed, about 2,000 cases)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.sandbox.demo import DEMO_KEYS, police_sim
from gateway.sandbox.launcher import Stack
from plugins.police.demo import demo_dossiers
from tests.gateway.conftest import CONF

pytestmark = pytest.mark.slow
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
SEED = "20261205"


async def schemathesis(
    url: str, key: str, paths: str, examples: int, report: Path, config: Path | None = None
) -> tuple[int, str, dict[str, int]]:
    st = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st),
        *(["--config-file", str(config)] if config else []),
        "run",
        f"{url}/v1/openapi.json",
        "--url",
        url,
        "-H",
        f"X-Api-Key: {key}",
        "--include-path-regex",
        paths,
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        SEED,
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        cwd=report.parent,  # its cache (.schemathesis/) goes there, not into the repository
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 900)
    return proc.returncode or 0, out.decode(), await asyncio.to_thread(counts, report)


def counts(report: Path) -> dict[str, int]:
    """Cases run, from schemathesis' event stream (its exit status says whether any check failed)."""
    cases = 0
    for line in report.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished is not None:
            cases += len(finished.get("recorder", {}).get("cases", {}))
    return {"cases": cases}


def no_rate_limits(gateway_toml: Path) -> None:
    """Rate limits off: the requests reach the operations' logic instead of 429."""
    with gateway_toml.open("a", encoding="utf-8") as fh:
        fh.write("\n[rate_limits]\nenabled = false\n")


async def submitted(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        body = demo_dossiers(42, 1)[0]
        headers = {"X-Api-Key": DEMO_KEYS["centre-hanoi"]}
        async with http.post(f"{url}/v1/dossiers", json=body, headers=headers) as r:
            assert r.status == 202, await r.text()
            dossier: str = (await r.json())["id"]
        for _ in range(100):  # delivered and answered: events, a status past received
            async with http.get(f"{url}/v1/dossiers/{dossier}/events", headers=headers) as r:
                if len((await r.json())["events"]) > 2:
                    break
            await asyncio.sleep(0.1)
    return dossier


async def test_every_operation_answers_as_documented(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    await asyncio.to_thread(shutil.copytree, CONF, conf)
    await asyncio.to_thread(no_rate_limits, conf / "gateway.toml")
    stack = Stack(conf, tmp_path, [police_sim()])
    stack.extra_env["LIENTHONG_SIGNING_KEY"] = base64.b64encode(os.urandom(32)).decode()  # an Ed25519 seed
    try:
        await stack.start_simulators()
        await stack.start_gateway()
        url = stack.gateway_url
        # A dossier delivered first: the listings, KPIs, league and attempts answer with real items, and the
        # operations on one dossier reach it below (generated ids are all unknown: 404).
        dossier = await submitted(url)
        centres = await schemathesis(url, DEMO_KEYS["centre-hanoi"], "^/v1/(?!admin/)", 20, tmp_path / "centre.ndjson")
        admin = await schemathesis(url, DEMO_KEYS["operator"], "^/v1/admin/", 20, tmp_path / "admin.ndjson")
        config = tmp_path / "schemathesis.toml"
        await asyncio.to_thread(config.write_text, f'[parameters]\n"path.ref" = "{dossier}"\n')
        one = await schemathesis(
            url, DEMO_KEYS["centre-hanoi"], "^/v1/dossiers/\\{ref\\}", 20, tmp_path / "one.ndjson", config
        )
        # Its timeline as an operator reads it: status events and delivery attempts.
        history = await schemathesis(
            url, DEMO_KEYS["operator"], "^/v1/admin/dossiers/\\{ref\\}", 20, tmp_path / "history.ndjson", config
        )
    finally:
        await stack.stop()
    for code, out, _ in (centres, admin, one, history):
        assert code == 0 and "generated, " in out and " failed" not in out.split("Test cases:")[-1], out[:8000]
    total = centres[2]["cases"] + admin[2]["cases"] + one[2]["cases"] + history[2]["cases"]
    print(f"schemathesis: {total} cases, every check passed")
    assert total >= 1500, (total, centres[1][-3000:], admin[1][-3000:])
    gateway_log = await asyncio.to_thread((tmp_path / "gateway.log").read_text)
    assert '"unhandled_error"' not in gateway_log
    # The third pass reached the dossier: its operations answered from it, not 404.
    lines = [json.loads(line) for line in gateway_log.split("\n") if line]  # only \n ends a line
    on_it = [ln for ln in lines if ln.get("event") == "request" and ln.get("path") == f"/v1/dossiers/{dossier}"]
    assert sum(ln["status"] == 200 for ln in on_it) >= 10, len(on_it)
    for path in (f"/v1/dossiers/{dossier}/receipt", f"/v1/admin/dossiers/{dossier}/timeline"):
        reached = [ln for ln in lines if ln.get("event") == "request" and ln.get("path") == path]
        assert any(ln["status"] == 200 for ln in reached), (path, len(reached))
