"""Configuration errors name their file and key, in load_config and in `lienthong conf check`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from tests.gateway.conftest import CONF

DEMO_CONF = Path(__file__).resolve().parents[2] / "conf" / "demo"
UNKNOWN_POLIS = "unknown agency kind 'polis' (known: justice, land, police, social_insurance, tax)"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """A copy of the demo configuration to break."""
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(conf: Path, registry: Registry) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as err:
        load_config(conf, registry)
    return err.value.problems


def check(conf: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run `lienthong conf check`; it fails and prints one line per problem."""
    assert main(["conf", "check", str(conf)]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert out.err.strip() == f"{len(lines)} problem(s) found"
    return lines


def test_core_conf_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conf", "check", str(CONF)]) == 0
    assert (
        capsys.readouterr().out.strip()
        == f"{CONF}: ok: 6 clients, 1 agencies, 2 routes, 2 procedures, 0 bundles, 0 calendar days"
    )


def test_demo_conf_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conf", "check", str(DEMO_CONF)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{DEMO_CONF}: ok: 8 clients, 5 agencies, 10 routes, 10 procedures, 3 bundles, 0 calendar days"
    )


def test_unknown_agency_kind(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    edit(conf / "agencies.toml", 'kind = "police"', 'kind = "polis"')
    assert problems(conf, registry) == [("agencies.toml", "agency.police.kind", UNKNOWN_POLIS)]
    assert check(conf, capsys) == [f"{conf / 'agencies.toml'}: agency.police.kind: {UNKNOWN_POLIS}"]


def test_route_to_unknown_endpoint(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    edit(conf / "routes.toml", 'endpoint = "national"', 'endpoint = "provincial"')
    assert problems(conf, registry) == [("routes.toml", "route[0]", "agency 'police' has no endpoint 'provincial'")]
    assert check(conf, capsys) == [f"{conf / 'routes.toml'}: route[0]: agency 'police' has no endpoint 'provincial'"]


def test_route_to_unknown_agency(conf: Path, registry: Registry) -> None:
    (conf / "routes.toml").write_text('[[route]]\nprocedure = "*"\nagency = "land"\nendpoint = "x"\n', encoding="utf-8")
    assert problems(conf, registry) == [("routes.toml", "route[0].agency", "no agency named 'land'")]


def test_bad_toml(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    edit(conf / "gateway.toml", "[limits]", "[limits")
    lineno = (conf / "gateway.toml").read_text(encoding="utf-8").splitlines().index("[limits") + 1
    [(file, key, msg)] = problems(conf, registry)
    assert (file, key) == ("gateway.toml", "")
    assert re.fullmatch(rf"not valid TOML: .*\(at line {lineno}, column 8\)", msg), msg
    [line] = check(conf, capsys)
    assert line.startswith(f"{conf / 'gateway.toml'}: (file): not valid TOML: ")
    assert line.endswith(f"(at line {lineno}, column 8)")


def test_missing_env_var(
    conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LT_TEST_POLICE_SECRET", raising=False)
    edit(conf / "agencies.toml", "${POLICE_SECRET:-demo-police-shared-secret-2025}", "${LT_TEST_POLICE_SECRET}")
    message = "environment variable LT_TEST_POLICE_SECRET is not set and has no default"
    assert problems(conf, registry) == [("agencies.toml", "agency.police.endpoints.national.secret", message)]
    assert check(conf, capsys) == [f"{conf / 'agencies.toml'}: agency.police.endpoints.national.secret: {message}"]
    monkeypatch.setenv("LT_TEST_POLICE_SECRET", "set-from-the-environment-0001")
    config = load_config(conf, registry)
    assert config.endpoint_settings[("police", "national")].secret == "set-from-the-environment-0001"


def test_submit_scope_without_unit(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    edit(conf / "clients.toml", 'unit = "000.00.01.H17"\n', "")
    assert problems(conf, registry) == [
        (
            "clients.toml",
            "client.centre-danang",
            "a client with the submit scope needs its receiving unit (unit)",
        )
    ]
    assert check(conf, capsys) == [
        f"{conf / 'clients.toml'}: client.centre-danang: a client with the submit scope needs its receiving unit (unit)"
    ]


def test_endpoint_settings_are_checked_by_the_plugin_model(conf: Path, registry: Registry) -> None:
    edit(conf / "agencies.toml", "timeout = 5.0", "timeout = -1\nretries = 3")
    found = problems(conf, registry)
    assert sorted(found) == [
        ("agencies.toml", "agency.police.endpoints.national.retries", "Extra inputs are not permitted"),
        ("agencies.toml", "agency.police.endpoints.national.timeout", "Input should be greater than 0"),
    ]


def test_every_problem_is_listed_at_once(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    edit(conf / "agencies.toml", 'kind = "police"', 'kind = "polis"')
    edit(conf / "procedures.toml", 'code = "1.004203"', 'code = "1.999999"')
    edit(conf / "clients.toml", 'agency = "police"', 'agency = "land"')
    assert sorted(problems(conf, registry)) == [
        ("agencies.toml", "agency.police.kind", UNKNOWN_POLIS),
        ("clients.toml", "client.police-callbacks.agency", "no agency named 'land'"),
        ("procedures.toml", "procedure[1].code", "no plugin serves procedure 1.999999"),
    ]
    assert len(check(conf, capsys)) == 3


def test_offered_procedure_without_route(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (conf / "routes.toml").write_text(
        '[[route]]\nprocedure = "1.004203"\nagency = "police"\nendpoint = "national"\n', encoding="utf-8"
    )
    assert check(conf, capsys) == [
        f"{conf / 'routes.toml'}: (file): procedure 1.004194 is offered but no route serves it"
    ]


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main(["conf", "check", str(missing)]) == 1
    assert capsys.readouterr().out.strip() == f"{missing}: (file): configuration folder not found"


CALENDAR = """
[[day_off]]
date = 2027-01-28
reason = "Thông báo của Văn phòng Chính phủ (ví dụ)"

[[working_day]]
date = 2027-01-30
reason = "Làm bù cho ngày 28/01/2027"
"""


def test_calendar_days_are_read_and_counted(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    (conf / "calendar.toml").write_text(CALENDAR, encoding="utf-8")
    config = load_config(conf, registry)
    assert [(d.date.isoformat(), d.reason) for d in config.calendar.day_off] == [
        ("2027-01-28", "Thông báo của Văn phòng Chính phủ (ví dụ)")
    ]
    assert [d.date.isoformat() for d in config.calendar.working_day] == ["2027-01-30"]
    assert main(["conf", "check", str(conf)]) == 0
    assert capsys.readouterr().out.strip().endswith(", 0 bundles, 2 calendar days")


def test_calendar_problems_name_their_key(conf: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    (conf / "calendar.toml").write_text(
        CALENDAR
        + '\n[[working_day]]\ndate = 2027-01-28\nreason = "x"\n'  # a day off and a working day at once
        + '\n[[day_off]]\ndate = "2027-02-30"\nreason = "x"\n'  # no such day
        + "\n[[day_off]]\ndate = 2027-03-01\n",  # no reason
        encoding="utf-8",
    )
    found = problems(conf, registry)
    assert [(f, k) for f, k, _ in found] == [
        ("calendar.toml", "day_off[1].date"),
        ("calendar.toml", "day_off[2].reason"),
    ]
    (conf / "calendar.toml").write_text(
        CALENDAR + '\n[[working_day]]\ndate = 2027-01-28\nreason = "x"\n', encoding="utf-8"
    )
    assert problems(conf, registry) == [
        ("calendar.toml", "working_day[1].date", "2027-01-28 is already listed as day_off[0].date")
    ]
    (conf / "calendar.toml").write_text("[[holiday]]\ndate = 2027-01-28\n", encoding="utf-8")
    assert problems(conf, registry) == [("calendar.toml", "holiday", "Extra inputs are not permitted")]
    assert check(conf, capsys) == [f"{conf / 'calendar.toml'}: holiday: Extra inputs are not permitted"]
