"""`lienthong init`: a starter folder that passes its check and holds no demo secret; secrets from
NAME_FILE; the demo's public secrets found wherever a configuration uses them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.auth import hash_key
from gateway.cli import demo_conf, main
from gateway.config.loader import interpolate
from gateway.demo_secrets import demo_secrets_in
from gateway.starter import FILES, write_starter


def test_a_starter_folder_passes_its_check_and_uses_no_demo_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "conf"
    assert main(["init", str(folder)]) == 0
    key = capsys.readouterr().out.split("clients.toml): ")[1].split()[0]
    assert hash_key(key) in (folder / "clients.toml").read_text()
    assert key not in "".join((folder / f).read_text() for f in FILES)  # only its hash is kept
    assert all(stat.S_IMODE((folder / f).stat().st_mode) == 0o600 for f in FILES)
    assert main(["conf", "check", str(folder)]) == 0
    assert demo_secrets_in(folder) == []
    other = tmp_path / "other"
    write_starter(other)
    assert (other / "gateway.toml").read_text() != (folder / "gateway.toml").read_text()  # keys of its own
    with pytest.raises(FileExistsError):
        write_starter(folder)


def test_the_demo_configuration_is_found_out(monkeypatch: pytest.MonkeyPatch) -> None:
    found = demo_secrets_in(demo_conf())
    assert "clients.toml: client.operator.api_key_sha256" in found
    assert "agencies.toml: agency.police.endpoints.national.secret" in found
    monkeypatch.setenv("POLICE_SECRET", "a-real-one")
    assert "agencies.toml: agency.police.endpoints.national.secret" not in demo_secrets_in(demo_conf())


def test_a_secret_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "police"
    secret.write_text("from-the-file\n")
    monkeypatch.delenv("POLICE_SECRET", raising=False)
    monkeypatch.setenv("POLICE_SECRET_FILE", str(secret))
    missing: list[tuple[str, str]] = []
    assert interpolate({"secret": "${POLICE_SECRET}"}, missing) == {"secret": "from-the-file"}
    monkeypatch.setenv("POLICE_SECRET", "from-the-environment")  # the variable itself wins
    assert interpolate("${POLICE_SECRET}", missing) == "from-the-environment"
    monkeypatch.delenv("POLICE_SECRET")
    monkeypatch.setenv("POLICE_SECRET_FILE", str(tmp_path / "absent"))
    assert interpolate("${POLICE_SECRET:-x}", missing, "secret") == ""
    assert missing == [("secret", f"POLICE_SECRET_FILE ({tmp_path / 'absent'}: FileNotFoundError)")]


def test_commands_need_a_folder(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LIENTHONG_CONF", raising=False)
    assert main(["conf", "check"]) == 2
    assert "no configuration folder: give --conf DIR or set LIENTHONG_CONF" in capsys.readouterr().err
    monkeypatch.setenv("LIENTHONG_CONF", str(demo_conf()))
    assert main(["conf", "check"]) == 0
