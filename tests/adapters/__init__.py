"""Adapter tests. Real-world artefacts live in ../shared/realworld beside the checkout (CI lays shared/
there). Their absence fails the tests that need them: a skip would let CI pass without ever loading one."""

from __future__ import annotations

from pathlib import Path

import pytest

REALWORLD = (Path(__file__).resolve().parents[2] / ".." / "shared" / "realworld").resolve()


def realworld(*parts: str) -> Path:
    """A path under ../shared/realworld; fails the test when it is not there."""
    path = REALWORLD.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"real-world artefact missing: {path} (tests expect shared/ beside the repository)")
    return path


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


def xxe(system_id: str) -> bytes:
    return f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "{system_id}">]><a>&x;</a>'.encode()
