"""`lienthong demo` as a user runs it: five simulators and the gateway as processes, every dossier finished."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.sandbox.demo import DEMO_KEYS, police_sim, portal_sim
from tests.gateway.test_metrics import run_promtool

pytestmark = pytest.mark.slow


async def test_demo_delivers_everything_once(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "demo",
        "--dossiers",
        "30",
        "--workdir",
        str(tmp_path / "run"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # the demo needs no files of the working folder
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "RESULT: all delivered with all their documents, none twice" in text
    assert "police system DOWN" in text and "police system UP again" in text
    # Each agency took each dossier routed to it exactly once, and found every one with all its documents.
    rows = re.findall(r"^  (police|tax|land|justice|social_insurance) +(\d+) +(\d+) +(\d+) ", text, re.M)
    assert {agency for agency, *_ in rows} == {"police", "tax", "land", "justice", "social_insurance"}, text
    assert all(routed == received == docs_ok for _, routed, received, docs_ok in rows), text
    uploaded = re.search(r"documents: (\d+) sent inline, (\d+) uploaded first", text)
    assert uploaded is not None and int(uploaded[1]) > 0 and int(uploaded[2]) > 0, text
    assert re.search(r"422 jurisdiction\.province: the case lies in province 48", text), text
    for bundle in ("birth-residence-health-card", "death-residence-funeral", "land-transfer"):
        assert re.search(rf"^  {bundle} +\d+  completed: \d+  \(", text, re.M), text
    assert re.search(r"422 urn:lienthong:problem:no-route: .*province 31", text), text
    assert "its view agrees with every dossier" in text
    # The feed is pushed to the portal simulator too, through its outage, and its view agrees.
    assert "national portal DOWN" in text and "national portal UP again" in text
    assert "its pushed view agrees with every dossier" in text
    # The citizen-facing services (gateway/sandbox/services_demo.py), in the run and in the final table.
    assert "the same key sent twice answered [201, 200]" in text
    assert "the applicant's reminder, read at /v1/appointments/events: Lịch hẹn hồ sơ" in text
    assert re.search(r"events booked, reminder, moved, .*cancelled$", text, re.M), text
    assert re.search(r"^  appointment \(land, referred\): booked, .*moved, cancelled \(200\)", text, re.M), text
    assert "wallet: the VNeID wallet service DOWN" in text
    assert re.search(r"^  wallet: \S+ returned \(10\) into the VNeID wallet after its outage.*HinhThuc 2$", text, re.M)
    assert "the platform's callback LOST" in text
    paid = r"^  payment: .*callback lost, found by reconciliation; bundle completed; .*DuocThanhToanTrucTuyen 1$"
    assert re.search(paid, text, re.M), text
    # Citizens: every procedure's guide and page, searched with and without diacritics; a signed receipt and
    # result verified, refused after one changed byte, and the receipt's status link without personal data.
    assert re.search(r"^  guides: 10/10 procedures with a guide, 10 pages with a QR code, .* \(ok\)$", text, re.M), text
    assert re.search(r"^  receipts: .* refused after one changed byte, .* \(ok\)$", text, re.M), text
    assert "one changed byte refused (4/4:" in text
    assert re.search(r"the receipt's QR link /status/\S+: status '[^']+' only, no personal data", text), text
    await asyncio.to_thread(check_logs, tmp_path / "run")
    # The scrape the demo took at its end passes promtool (its absence fails: .ci/setup installs it).
    metrics = await asyncio.to_thread((tmp_path / "run" / "metrics.prom").read_text)
    await asyncio.to_thread(run_promtool, metrics)
    for agency in ("police", "tax", "land", "justice", "social_insurance"):
        assert f'lienthong_agency_call_duration_seconds_count{{agency="{agency}"' in metrics, agency


def check_logs(run: Path) -> None:
    """Every line every process wrote is JSON; no personal id, name, key or agency secret is in them in
    clear; every dossier code is there intact (masking never garbles an identifier)."""
    logs = sorted(run.glob("*.log"))
    assert any(p.name == "gateway.log" for p in logs), logs
    text = ""
    for path in logs:
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):  # not splitlines: U+2028
            if line.strip():
                try:
                    orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise AssertionError(f"{path.name}:{n} is not JSON: {line[:300]}") from None
        text += path.read_text(encoding="utf-8")
    db = sqlite3.connect(run / "lienthong.db")
    try:
        codes = [c for (c,) in db.execute("SELECT code FROM dossiers")]
        submissions = [orjson.loads(s) for (s,) in db.execute("SELECT submission FROM dossiers")]
    finally:
        db.close()
    personal: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and key in ("personal_id", "child_personal_id", "full_name", "phone"):
                    personal.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(submissions)
    assert len(codes) >= 30 and len(personal) >= 30
    assert [c for c in codes if c not in text] == []
    assert [p for p in personal if p in text] == []
    secrets = {*DEMO_KEYS.values(), police_sim().secret, portal_sim()[0].secret}
    assert [s for s in secrets if s in text] == []
