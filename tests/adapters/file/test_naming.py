from __future__ import annotations

import pytest

from adapters.file import naming
from adapters.file.naming import UnsafeName

UNSAFE = [
    "../etc/passwd",
    "a/b.xml",
    "a\\b.xml",
    "/etc/passwd",
    ".hidden",
    ".hidden.xml",
    "..",
    ".",
    "",
    "a\0b.xml",
    "x" * 152,
    "a..b.xml",
    "đơn.xml",
    "a b.xml",
    "-leading-dash.xml",
    "C:\\windows\\x.xml",
]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        naming.safe_name(name)
    assert not naming.is_safe_name(name)


@pytest.mark.parametrize("name", ["answer-HS-2024-000123.xml", "A.xml", "x" * 151, "r_1.v2-final.XML"])
def test_safe_names_pass_unchanged(name: str) -> None:
    assert naming.safe_name(name) == name


@pytest.mark.parametrize(
    ("name", "single"),
    [
        ("../etc/passwd", False),
        ("a/b.xml", False),
        ("a\\b.xml", False),
        ("a\0b", False),
        ("..", False),
        (".", False),
        ("", False),
        ("é" * 200, False),  # 400 bytes: over the filesystem limit
        ("bad-\udcff.xml", False),  # undecodable byte from a listing
        (".hidden", True),
        ("a b.xml", True),
        ("đơn.xml", True),
    ],
)
def test_single_component(name: str, single: bool) -> None:
    assert naming.is_single_component(name) is single


@pytest.mark.parametrize("folder", ["../x", "/abs", "a/../b", "", "a//b", "a/.hidden", "a\\b"])
def test_unsafe_folders(folder: str) -> None:
    with pytest.raises(UnsafeName):
        naming.safe_folder(folder)


def test_safe_folders_are_normalised() -> None:
    assert naming.safe_folder("agency/inbox/") == "agency/inbox"


def test_temp_names_are_recognised_and_never_safe() -> None:
    tmp = naming.temp_name("answer-1.xml", "0123456789abcdef")
    assert naming.is_temp_name(tmp)
    assert not naming.is_safe_name(tmp)
    assert not naming.is_temp_name("answer-1.xml")


def test_request_name_refuses_a_hostile_correlation_id() -> None:
    assert naming.request_name("req", "HS-1") == "req-HS-1.xml"
    for bad in ("../../x", "a/b", "x\0", "a b"):
        with pytest.raises(UnsafeName):
            naming.request_name("req", bad)


def test_quarantine_name_is_safe_for_any_input() -> None:
    assert naming.quarantine_name("ok.xml") == "ok.xml"
    for bad in (".hidden.xml", "a b.xml", "bad-\udcff.xml"):
        q = naming.quarantine_name(bad)
        assert naming.is_safe_name(q) and q.startswith("unsafe-")
    assert naming.quarantine_name(".a.xml") != naming.quarantine_name(".b.xml")
