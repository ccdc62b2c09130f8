"""`lienthong init DIR`: a starter configuration from the templates beside this module (carried in the
wheel), with an operator key and the audit pseudonym key generated for this installation."""

from __future__ import annotations

import os
import secrets
from importlib import resources
from pathlib import Path

from gateway.auth import hash_key, new_key

FILES = ("gateway.toml", "clients.toml", "agencies.toml", "routes.toml", "procedures.toml")


def write_starter(folder: Path) -> str:
    """Write the starter files into `folder` (created; refused if it holds any of them); returns the
    operator's API key, which is kept nowhere else (only its hash, in clients.toml). Blocking."""
    existing = [name for name in FILES if (folder / name).exists()]
    if existing:
        raise FileExistsError(f"{folder} already has {', '.join(existing)}: nothing written")
    folder.mkdir(parents=True, exist_ok=True)
    key = new_key()
    values = {"operator_key_sha256": hash_key(key), "pseudonym_key": secrets.token_urlsafe(32)}
    templates = resources.files(__package__)
    for name in FILES:
        text = templates.joinpath(name).read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace("{{" + placeholder + "}}", value)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o600)  # the pseudonym key and the hashes: for the gateway's user only
    return key
