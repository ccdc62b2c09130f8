"""The simulators of a configuration's agencies, and a copy of the configuration pointed at them.

`lienthong demo --conf DIR` and the benchmark run every agency of DIR/agencies.toml against its kind's
simulator, whatever plugin provides it: one simulator per agency, on a free loopback port, with a secret
and a callback key made for the run. The configuration is copied into the run's folder with each
endpoint bound to its simulator (the plugin's `AgencyKind.binding`) and a callback client per agency
added to clients.toml; everything else is kept as written, `${VAR}` included.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from gateway.auth import hash_key
from gateway.config import load_config
from gateway.config.model import Config
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from gateway.sandbox.launcher import SimSpec
from gateway.simulated import RunningSimulator, bind_endpoint, simulator_settings


@dataclass(frozen=True)
class Sandbox:
    """A configuration copied and bound to simulators, ready for a launcher Stack."""

    conf: Path  # the copy the gateway runs on
    config: Config  # the original, as loaded
    sims: list[SimSpec]  # one per agency, in the configuration's order

    def sim(self, agency: str) -> SimSpec:
        return next(s for s in self.sims if s.agency == agency)


def callback_client(agency: str) -> str:
    return f"sandbox-{agency}-callbacks"


def sandbox(conf: Path, workdir: Path, registry: Registry) -> Sandbox:
    """Plan a simulator for every agency of `conf` and write the bound copy to `workdir/conf`.
    Blocking (files, the configuration): call it off the event loop."""
    config = load_config(conf, registry)
    sims: list[SimSpec] = []
    agencies: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    for name, agency in config.agencies.items():
        kind = registry.agency_kinds[agency.kind]
        if kind.simulator is None:
            raise ConfigError([("agencies.toml", f"agency.{name}.kind", f"kind {kind.name!r} ships no simulator")])
        folder = workdir / f"{name}-simulator"
        folder.mkdir(parents=True, exist_ok=True)
        spec = SimSpec(
            kind=kind.name,
            agency=name,
            secret=f"sandbox-{secrets.token_urlsafe(18)}",
            callback_key=f"sandbox-{secrets.token_urlsafe(18)}",
            settings=simulator_settings(kind, folder),
        )
        running = RunningSimulator(name, spec.url, spec.secret, spec.settings)
        endpoints = {e: _toml(bind_endpoint(kind, running, e, raw)) for e, raw in agency.endpoints.items()}
        # Every setting of the agency as written (retry budget, replay on recovery ...), its endpoints bound.
        agencies[name] = _toml(agency.model_dump(mode="json", exclude={"endpoints"}))
        agencies[name]["endpoints"] = endpoints
        clients[callback_client(name)] = {
            "name": f"{agency.title or name}: callbacks from its simulator",
            "kind": "agency",
            "agency": name,
            "scopes": ["callback"],
            "api_key_sha256": hash_key(spec.callback_key),
        }
        sims.append(spec)
    copy = workdir / "conf"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(conf, copy)
    header = "# Written by the sandbox: every endpoint bound to its agency's simulator.\n"
    (copy / "agencies.toml").write_text(header + tomli_w.dumps({"agency": agencies}), encoding="utf-8")
    written = (copy / "clients.toml").read_text(encoding="utf-8") if (copy / "clients.toml").exists() else ""
    taken = set(config.clients) & set(clients)
    if taken:
        raise ConfigError([("clients.toml", f"client.{c}", "this name is the sandbox's own") for c in sorted(taken)])
    (copy / "clients.toml").write_text(
        written + "\n# Added by the sandbox: each agency simulator's callbacks.\n" + tomli_w.dumps({"client": clients}),
        encoding="utf-8",
    )
    return Sandbox(copy, config, sims)


def _toml(settings: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: a setting left None is left out (its default applies)."""
    return {k: v for k, v in settings.items() if v is not None}
