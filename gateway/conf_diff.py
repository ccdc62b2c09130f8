"""What a configuration change changes, item by item: routes, clients, issuers, procedures (as the
catalog offers them, the plugins' values with the operator's overrides), bundles, maintenance windows,
calendar days, agencies and gateway settings (these two need a restart). Secrets never appear: a key
hash, secret, password or token that changed is shown as `*** -> ***`.

`lienthong conf diff`, `POST /v1/admin/reload?dry_run=true` and every reload (its log line and its audit
record) use the same diff."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gateway.catalog import Catalog
from gateway.config import Config

SECRET_PARTS = ("secret", "password", "token", "sha256", "private", "passphrase", "api_key", "pseudonym_key")
MASK = "***"
RESTART = frozenset({"agency", "gateway"})  # sections a reload refuses: a restart applies them


@dataclass(frozen=True)
class Change:
    section: str  # route, client, issuer, procedure, bundle, window, day_off, working_day, agency, gateway
    name: str
    change: str  # added, removed, changed
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # path -> (before, after), changed only

    def line(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.change]
        text = f"{sign} {self.section} {self.name}"
        if self.fields:
            text += ": " + "; ".join(f"{k} {_show(b)} -> {_show(a)}" for k, (b, a) in self.fields.items())
        return text + (" (restart needed)" if self.section in RESTART else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "change": self.change,
            "fields": {k: {"before": b, "after": a} for k, (b, a) in self.fields.items()},
            "restart_needed": self.section in RESTART,
        }


def _show(value: Any) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) and value != MASK else str(value)


def _secret(path: str) -> bool:
    lower = path.lower()
    return any(part in lower for part in SECRET_PARTS)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    value = _plain(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        if all(not isinstance(i, dict | list | tuple | BaseModel) for i in items):
            return {prefix: [i if isinstance(i, str | int | float | bool) or i is None else str(i) for i in items]}
        out = {}
        for i, v in enumerate(items):
            out |= _flatten(v, f"{prefix}[{i}]")
        return out
    if value is None or isinstance(value, str | int | float | bool):
        return {prefix: value}
    return {prefix: str(value)}


def _compare(section: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(Change(section, name, "added"))
        elif name not in after:
            changes.append(Change(section, name, "removed"))
        else:
            old, new = _flatten(before[name]), _flatten(after[name])
            fields = {}
            for path in sorted(set(old) | set(new)):
                b, a = old.get(path), new.get(path)
                if b != a:
                    fields[path] = (MASK, MASK) if _secret(path) else (b, a)
            if fields:
                changes.append(Change(section, name, "changed", fields))
    return changes


def _route_name(route: Any) -> str:
    target = f"{route.agency}/{route.endpoint}" if route.endpoint else f"{route.agency} by province"
    return f"{route.procedure} -> {target}"


def _routes(config: Config) -> dict[str, Any]:
    """Routes by what they match and where they go; the position in the list decides between overlaps."""
    out: dict[str, Any] = {}
    for i, route in enumerate(config.routes, 1):
        out[_route_name(route)] = {"position": i, "by_province": route.by_province}
    return out


def _windows(config: Config) -> dict[str, Any]:
    return {
        f"{w.agency}{'/' + w.endpoint if w.endpoint else ''} {w.start}-{w.end}"
        + (f" {','.join(map(str, w.days))}" if w.days else ""): w
        for w in config.windows
    }


def config_diff(old: Config, new: Config, old_catalog: Catalog, new_catalog: Catalog) -> list[Change]:
    """Every difference, section by section (routes first: what an operator looks at first)."""
    return [
        *_compare("route", _routes(old), _routes(new)),
        *_compare("client", dict(old.clients), dict(new.clients)),
        *_compare("issuer", dict(old.issuers), dict(new.issuers)),
        *_compare("procedure", dict(old_catalog.procedures), dict(new_catalog.procedures)),
        *_compare(
            "bundle", {k: _plain(v) for k, v in old.bundles.items()}, {k: _plain(v) for k, v in new.bundles.items()}
        ),
        *_compare("window", _windows(old), _windows(new)),
        *_compare("day_off", _days(old.calendar.day_off), _days(new.calendar.day_off)),
        *_compare("working_day", _days(old.calendar.working_day), _days(new.calendar.working_day)),
        *_compare("agency", dict(old.agencies), dict(new.agencies)),
        *_compare("gateway", {"gateway.toml": old.gateway}, {"gateway.toml": new.gateway}),
    ]


def _days(days: Any) -> dict[str, Any]:
    return {d.date.isoformat(): d for d in days}
