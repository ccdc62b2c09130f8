"""`lienthong plugin new NAME --protocol rest|soap|file`: a plugin as a distribution of its own.

It writes a folder that installs with `pip install -e`, passes the conformance kits and its own tests
as written, and runs in `lienthong demo --conf` once its agency, route and procedure are added to a
copy of the demo configuration (its README says how). The templates are in `templates/`: `common/` for
every protocol, then the protocol's own connector, simulator and tests.
"""

from __future__ import annotations

import re
import string
import zlib
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

PROTOCOLS = ("rest", "soap", "file")
NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# The agency's endpoint in the README's configuration snippet, per protocol.
AGENCY_TOML = {
    "rest": (
        'url = "$${{{upper}_URL:-http://127.0.0.1:8790}}"\nsecret = "$${{{upper}_SECRET:-change-me-to-a-long-secret}}"'
    ),
    "soap": 'url = "$${{{upper}_URL:-http://127.0.0.1:8791/ws}}"',
    "file": (
        'host = "$${{{upper}_SFTP_HOST:-127.0.0.1}}"\nport = 22\nusername = "lienthong"\n'
        'password = "$${{{upper}_SFTP_PASSWORD:-change-me}}"\nhost_key = "ssh-ed25519 AAAA..."'
    ),
}


class ScaffoldError(ValueError):
    """The plugin cannot be written as asked (a bad name, a folder in the way)."""


@dataclass(frozen=True)
class Scaffold:
    name: str
    protocol: str
    folder: Path  # the distribution written
    package: str
    procedure: str
    agency_toml: str  # what to add to a configuration's agencies.toml, routes.toml, procedures.toml
    route_toml: str
    procedure_toml: str


def procedure_code(name: str) -> str:
    """A procedure code of its own for the new plugin (2.xxxxxx: none of the national 1.xxxxxx ones)."""
    return f"2.{100_000 + zlib.crc32(name.encode()) % 900_000:06d}"


def new_plugin(name: str, protocol: str, target: Path, *, title: str | None = None) -> Scaffold:
    """Write the plugin `name` (an agency kind name) speaking `protocol` into `target/lienthong-<name>`."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r}: a plugin name is lower_snake_case, 2-40 characters, starting with a letter")
    if protocol not in PROTOCOLS:
        raise ScaffoldError(f"protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    dist = f"lienthong-{name.replace('_', '-')}"
    folder = target / dist
    if folder.exists() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} exists and is not empty")
    package = f"lienthong_{name}"
    values = {
        "name": name,
        "dist": dist,
        "pkg": package,
        "Class": "".join(part.capitalize() for part in name.split("_")),
        "title": title or f"{name.replace('_', ' ').capitalize()} agency",
        "protocol": protocol,
        "code": procedure_code(name),
        "polls": "False" if protocol == "rest" else "True",
    }
    endpoint = string.Template(AGENCY_TOML[protocol].format(upper=name.upper())).substitute()
    values["agency_toml"] = f'[agency.{name}]\nkind = "{name}"\n\n[agency.{name}.endpoints.main]\n{endpoint}\n'
    values["route_toml"] = f'[[route]]\nprocedure = "{values["code"]}"\nagency = "{name}"\nendpoint = "main"\n'
    values["procedure_toml"] = f'[[procedure]]\ncode = "{values["code"]}"\n'
    templates = files("gateway.sdk.scaffold") / "templates"
    for part in ("common", protocol):
        _write(templates / part, folder, values)
    return Scaffold(
        name,
        protocol,
        folder,
        package,
        values["code"],
        values["agency_toml"],
        values["route_toml"],
        values["procedure_toml"],
    )


def _write(source: Traversable, dest: Path, values: dict[str, str]) -> None:
    for entry in source.iterdir():
        name = entry.name.replace("__pkg__", values["pkg"])
        if entry.is_dir():
            _write(entry, dest / name, values)
        elif name.endswith(".tmpl"):
            out = dest / name.removesuffix(".tmpl")
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                text = string.Template(entry.read_text(encoding="utf-8")).substitute(values)
            except (KeyError, ValueError) as exc:
                raise ScaffoldError(f"template {entry.name} is broken: {exc}") from exc
            out.write_text(text, encoding="utf-8")
