"""Police endpoint settings: which procedure codes go out as removals, and how a bad value is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.cli import main
from plugins.police.settings import REMOVAL_PROCEDURE, PoliceSettings
from tests.gateway.conftest import CONF

BASE = {"url": "http://127.0.0.1:8701", "key_id": "lienthong-gateway", "secret": "police-settings-secret-0001"}


def test_removal_is_the_plugins_code_by_default() -> None:
    assert PoliceSettings.model_validate(BASE).removal_procedures == (REMOVAL_PROCEDURE,) == ("1.004206",)


def test_an_endpoint_names_its_own_removal_codes() -> None:
    s = PoliceSettings.model_validate({**BASE, "removal_procedures": ["1.004299", "2.000123"]})
    assert s.removal_procedures == ("1.004299", "2.000123")
    assert PoliceSettings.model_validate({**BASE, "removal_procedures": []}).removal_procedures == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [(["1.04206"], "a procedure code looks like 1.001193"), (["1.004206", "1.004206"], "1.004206 listed twice")],
)
def test_a_bad_removal_code_is_refused(value: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PoliceSettings.model_validate({**BASE, "removal_procedures": value})


@pytest.mark.parametrize(
    ("value", "key", "message"),
    [
        (
            '["1.004299", "1.04206"]',
            "removal_procedures[1]",
            "a procedure code looks like 1.001193 (one digit, a dot, six digits)",
        ),
        ('["1.004206", "1.004299", "1.004206"]', "removal_procedures", "1.004206 listed twice"),
    ],
)
def test_conf_check_names_the_file_and_key_of_a_bad_removal_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, key: str, message: str
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    agencies = conf / "agencies.toml"
    text = agencies.read_text(encoding="utf-8")
    assert text.rstrip().endswith('secret = "${POLICE_SECRET:-demo-police-shared-secret-2025}"')  # the endpoint's table
    agencies.write_text(f"{text}removal_procedures = {value}\n", encoding="utf-8")
    assert main(["conf", "check", str(conf)]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"{agencies}: agency.police.endpoints.national.{key}: {message}"]
    assert out.err.strip() == "1 problem(s) found"
