"""Adapter tests. Real-world artefacts live in ../shared/realworld beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

REALWORLD = (Path(__file__).resolve().parents[2] / ".." / "shared" / "realworld").resolve()


def realworld(*parts: str) -> Path:
    """A path under ../shared/realworld; skips the test when the shared folder is not beside the checkout."""
    path = REALWORLD.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-world artefact not available: {path}")
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
