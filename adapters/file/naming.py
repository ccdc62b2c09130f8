"""File and folder names: names from outside are data, never paths.

Two levels:
- `safe_name` is the strict rule for every name we create or accept as an answer.
- `is_single_component` is the weaker rule a store applies to a *source* name it was given by a
  listing, so that an answer with an odd but harmless name (`.hidden.xml`, `a b.xml`) can still be
  moved to quarantine. Anything that could leave the folder (`/`, `..`, NUL) fails both.
"""

from __future__ import annotations

import hashlib
import re

from gateway.errors import UnsafeAnswer

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
SIDECAR_SUFFIX = ".sha256"
REASON_SUFFIX = ".reason.txt"
# `.<name>.tmp-<16 hex>`: what write_atomic writes before the rename.
TEMP_NAME = re.compile(r"\..+\.tmp-[0-9a-f]{16}")
_FOLDER_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_MAX_COMPONENT_BYTES = 255


class UnsafeName(UnsafeAnswer):
    """A file or folder name that could escape its folder or is not on the allowed pattern."""


def safe_name(name: str) -> str:
    """Return `name` if it matches the strict pattern, else raise UnsafeName (never normalises)."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise UnsafeName(f"unsafe file name {name!r}")
    return name


def is_safe_name(name: str) -> bool:
    try:
        safe_name(name)
    except UnsafeName:
        return False
    return True


def is_single_component(name: str) -> bool:
    """True if `name` names an entry directly inside a folder and nothing else."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        return False
    try:
        return len(name.encode("utf-8")) <= _MAX_COMPONENT_BYTES
    except UnicodeEncodeError:  # lone surrogates from a non-UTF-8 listing
        return False


def safe_folder(folder: str) -> str:
    """A configured folder: relative, `/`-separated, every part on a strict pattern."""
    parts = folder.strip("/").split("/") if folder else []
    if not parts or any(not _FOLDER_PART.fullmatch(p) or ".." in p for p in parts):
        raise UnsafeName(f"unsafe folder {folder!r}")
    if folder.startswith("/"):
        raise UnsafeName(f"folder must be relative to the store root: {folder!r}")
    return "/".join(parts)


def is_temp_name(name: str) -> bool:
    return TEMP_NAME.fullmatch(name) is not None


def temp_name(name: str, token: str) -> str:
    return f".{name}.tmp-{token}"


def sidecar_name(name: str) -> str:
    return name + SIDECAR_SUFFIX


def reason_name(name: str) -> str:
    return name + REASON_SUFFIX


def quarantine_name(name: str) -> str:
    """The name to quarantine under: the name itself if safe, else a stable digest of it."""
    if is_safe_name(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"unsafe-{digest}.bin"


def request_name(prefix: str, correlation_id: str, suffix: str = ".xml") -> str:
    """`<prefix>-<correlation id><suffix>`, refused unless the result is a safe name."""
    return safe_name(f"{prefix}-{correlation_id}{suffix}")
