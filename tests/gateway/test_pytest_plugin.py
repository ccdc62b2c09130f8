"""The pytest plugin shipped with the gateway, used as a plugin author uses it: a test folder of its
own, the kind named in its pytest settings, pytest run in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SETTINGS = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
lienthong_kind = {kind}
"""

TESTS = """
from gateway.sdk import DossierStatus
from gateway.sdk.testing import delivery


async def test_a_connector_bound_to_the_running_simulator(lienthong_connector, lienthong_dossier, lienthong_simulator):
    dossier = lienthong_dossier()
    assert dossier.status == DossierStatus.RECEIVED and dossier.procedure_code == "1.004194"
    receipt = await lienthong_connector.submit(dossier, delivery("same-key"))
    again = await lienthong_connector.submit(dossier, delivery("same-key", attempt=2))
    assert receipt.agency_ref and receipt.agency_ref == again.agency_ref
    stats = await lienthong_simulator.stats()
    assert stats["accepted"] == 1 and stats["duplicates"] == 1
    callback = await lienthong_simulator.callbacks.next()
    [update] = await lienthong_connector.handle_callback(callback.body, callback.headers)
    assert update.dossier_code == dossier.code or update.dossier_id == dossier.id


def test_a_dossier_from_a_procedure_form(lienthong_dossier):
    form = {"new_address": {"province": "79", "commune": "27028", "line": "Số 1"}, "legal_basis": "own_house"}
    dossier = lienthong_dossier("1.004203", form)
    assert dossier.submission.form["new_address"]["province"] == "79"
    assert {a.component_code for a in dossier.submission.attachments} >= {"TK01"}


async def test_the_gateway_in_process(lienthong_gateway, lienthong_kind):
    body = lienthong_kind.demo_dossiers(3, 1)[0]
    answer = await lienthong_gateway.submit(body)
    final = await lienthong_gateway.wait_status(answer["id"], 9)
    assert [r["name"] for r in final["results"]]
"""


def run(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_fixtures_run_a_plugins_simulator_connector_and_gateway(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(SETTINGS.format(kind="police"))
    (tmp_path / "test_police.py").write_text(TESTS)
    done = run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


@pytest.mark.parametrize(("kind", "message"), [("", "set lienthong_kind"), ("permits", "no installed plugin")])
def test_a_missing_or_unknown_kind_says_what_to_do(tmp_path: Path, kind: str, message: str) -> None:
    (tmp_path / "pytest.ini").write_text(SETTINGS.format(kind=kind))
    (tmp_path / "test_x.py").write_text("def test_x(lienthong_kind):\n    pass\n")
    done = run(tmp_path)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
