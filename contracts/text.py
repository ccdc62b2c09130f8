"""Text the contract accepts: no control characters.

A NUL or another control character in a name or a summary is never meant, and it breaks what comes
later (an XML document for the land office or the justice system cannot carry it, so every delivery
would fail). Refused at the edge with the field's path. Fields marked `MULTILINE` (summaries, notes)
and free-form objects (a procedure's form) may hold line breaks and tabs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_BAD = "\x7f-\x9f\ufffe\uffff\ud800-\udfff"  # DEL, C1 controls, non-characters, lone surrogates
_ONE_LINE = re.compile(f"[\x00-\x1f{_BAD}]")
_MULTILINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_BAD}]")  # tab, line feed and carriage return allowed

Loc = tuple[str | int, ...]


class _Multiline:
    """Marker in a field's metadata: `Annotated[str, MULTILINE]`."""

    def __repr__(self) -> str:
        return "MULTILINE"


MULTILINE = _Multiline()


class _Base64:
    """Marks a base64 field: checked by decoding, which refuses every other character (a scan is waste)."""

    def __repr__(self) -> str:
        return "BASE64"


BASE64 = _Base64()


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """Why `text` is refused, or None."""
    found = (_MULTILINE if multiline else _ONE_LINE).search(text)
    if found is None:
        return None
    where = f"U+{ord(found.group()):04X} at position {found.start()}"
    if not multiline and found.group() in "\t\n\r":
        return f"this field is one line: no line breaks or tabs ({where})"
    return f"control characters are not allowed ({where})"


# In JSON text as orjson writes it: escaped C0 controls (line breaks and tabs too, for keys), raw DEL, C1
# controls and non-characters. Finding none in one C-speed pass spares the walk over every string.
_SUSPECT = re.compile(rb"\\u00[01][0-9a-fA-F]|\\[bfnrt]|\x7f|\xc2[\x80-\x9f]|\xef\xbf[\xbe\xbf]")


def json_control_characters(value: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """Each string of a free-form JSON value (its keys too) holding a control character, by path."""
    try:
        if _SUSPECT.search(orjson.dumps(value)) is None:
            return []
    except TypeError:  # not plain JSON (a lone surrogate, a key that is no string): walk it
        pass
    return _walk(value, loc)


def _walk(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    if isinstance(value, str):
        why = None if value.isprintable() else control_character(value, multiline=True)
        if why is not None:
            found.append((loc, why))
    elif isinstance(value, dict):
        for k, v in value.items():
            why = control_character(k) if isinstance(k, str) and not k.isprintable() else None
            if why is not None:
                found.append(((*loc, k), f"in this key: {why}"))
            found += _walk(v, (*loc, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += _walk(v, (*loc, i))
    return found
