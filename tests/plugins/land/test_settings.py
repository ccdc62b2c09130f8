"""Land endpoint settings: the pinned host key in its three spellings, what an SFTP office requires."""

from __future__ import annotations

import asyncssh
import pytest
from pydantic import ValidationError

from adapters.file import LocalFolderStore, SftpStore
from plugins.land.settings import LandSettings

# "!" and "#" never occur in a base64 key, so the password cannot turn up in repr by chance.
PASSWORD = "land!office#secret"
KEY = asyncssh.generate_private_key("ssh-ed25519")
LINE = KEY.export_public_key().decode().strip()  # "ssh-ed25519 AAAA... comment" or without comment
B64 = LINE.split()[1]


def sftp(**kw: object) -> LandSettings:
    base: dict[str, object] = {"host": "10.1.2.3", "username": "lienthong", "password": PASSWORD, "root": "/hanoi"}
    return LandSettings.model_validate(base | kw)


@pytest.mark.parametrize(
    "spelling",
    [LINE, f"{LINE} land-office@hanoi", B64, f"[10.1.2.3]:2222 {LINE}", f"10.1.2.3,sftp.hn {LINE}", f"  {B64}\n"],
)
def test_host_key_spellings_normalise_to_the_same_pinned_key(spelling: str) -> None:
    assert sftp(host_key=spelling).host_key == f"ssh-ed25519 {B64}"


@pytest.mark.parametrize("bad", ["not a key", "ssh-ed25519 AAAAbroken", "QUJD", "a b c"])
def test_a_host_key_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="host_key"):
        sftp(host_key=bad)


def test_an_sftp_office_needs_a_pinned_key_and_credentials() -> None:
    with pytest.raises(ValidationError, match="needs host_key"):
        sftp()
    with pytest.raises(ValidationError, match="needs host, username, password"):
        LandSettings.model_validate({"host_key": LINE})


def test_url_is_derived_and_the_store_matches_the_transport() -> None:
    s = sftp(host_key=LINE, port=2222)
    assert s.url == "sftp://lienthong@10.1.2.3:2222/hanoi"
    assert isinstance(s.store("land"), SftpStore)
    assert PASSWORD not in repr(s) and PASSWORD not in str(s)
    local = LandSettings.model_validate({"transport": "local", "root": "/srv/land/hanoi"})
    assert local.url == "file:///srv/land/hanoi"
    assert isinstance(local.store("land"), LocalFolderStore)


@pytest.mark.parametrize("folder", ["../outbox", "/abs", "a/../b", ""])
def test_folders_stay_under_the_root(folder: str) -> None:
    with pytest.raises(ValidationError):
        sftp(host_key=LINE, outbox=folder)
