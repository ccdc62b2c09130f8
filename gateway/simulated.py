"""How a kind's simulator runs beside a gateway, and how an endpoint is pointed at it.

The demo, the benchmark, the behavioural conformance kit and the pytest plugin all start a kind's
simulator and then need endpoint settings that reach it. Only the plugin knows both sides (its settings
model and its simulator), so it says how, in `AgencyKind.binding`; most plugins need none, since the
default binding sets `url` (and `secret` when the settings have one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.connector import AgencyKind


@dataclass(frozen=True)
class RunningSimulator:
    """A kind's simulator, started for one agency."""

    agency: str
    url: str  # its HTTP address: the agency's API for HTTP protocols, and always its /_sim/ controls
    secret: str  # what it shares with the gateway: a signing key, a client secret, a password
    settings: Mapping[str, Any] = field(default_factory=dict)  # what it was started with (SimulatorOptions.settings)


def _no_settings(workdir: Path) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class SimulatorBinding:
    """How to run a kind's simulator beside a gateway, and point an endpoint at it.

    `settings(workdir)`: the simulator's own settings for such a run (a folder it may use is given).
    `endpoint(simulator, endpoint_name, configured)`: the endpoint's settings (a dict for the kind's
    settings model) that reach the simulator; `configured` is what the operator's configuration has for
    that endpoint (empty outside a configuration), to keep what the simulator does not decide.
    """

    settings: Callable[[Path], dict[str, Any]] = _no_settings
    endpoint: Callable[[RunningSimulator, str, Mapping[str, Any]], dict[str, Any]] | None = None


def simulator_settings(kind: AgencyKind, workdir: Path) -> dict[str, Any]:
    return kind.binding.settings(workdir) if kind.binding is not None else {}


def bind_endpoint(
    kind: AgencyKind, sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Endpoint settings for `kind` that reach `sim`: the plugin's binding, or the default one."""
    configured = dict(configured or {})
    if kind.binding is not None and kind.binding.endpoint is not None:
        return kind.binding.endpoint(sim, endpoint, configured)
    bound = {**configured, "url": sim.url}
    if "secret" in kind.settings_model.model_fields:
        bound["secret"] = sim.secret
    return bound
