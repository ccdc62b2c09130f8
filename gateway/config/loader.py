"""Reads a configuration folder: TOML files, ${ENV} interpolation, every error with its file and key."""

from __future__ import annotations

import os
import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from gateway.bundles import BundleSpec
from gateway.config.model import (
    AgenciesFile,
    BundlesFile,
    CalendarFile,
    ClientsFile,
    Config,
    GatewaySettings,
    GuidesFile,
    MaintenanceFile,
    ProceduresFile,
    RoutesFile,
)
from gateway.connector import EndpointSettings
from gateway.errors import ConfigError
from gateway.plugin_manager import Registry
from gateway.tls import OutboundTLS, ServerTLS, check_files, parse_subject
from gateway.tokens import key_set

FILES: dict[str, type[BaseModel]] = {
    "gateway.toml": GatewaySettings,
    "clients.toml": ClientsFile,
    "agencies.toml": AgenciesFile,
    "routes.toml": RoutesFile,
    "procedures.toml": ProceduresFile,
    "guides.toml": GuidesFile,
    "bundles.toml": BundlesFile,
    "calendar.toml": CalendarFile,
    "maintenance.toml": MaintenanceFile,  # a file of its own: windows change without a restart (live.py)
}
_ENV = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")
M = TypeVar("M", bound=BaseModel)
Problems = list[tuple[str, str, str]]
WALLET_AGENCY = "vneid"  # gateway/wallet.py's AGENCY: the outbox's jobs to the VNeID wallet


def interpolate(value: Any, missing: list[tuple[str, str]], key: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in strings, so secrets and ports come from the environment;
    with VAR unset and VAR_FILE set, the content of that file (its last line break dropped).

    `missing` collects (key, variable) for variables that are unset and have no default.
    """
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            got = os.environ.get(m.group(1))
            if got is not None:
                return got
            file = os.environ.get(m.group(1) + "_FILE")
            if file:  # a secret mounted as a file (Docker and Kubernetes secrets, systemd credentials)
                try:
                    return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
                except (OSError, UnicodeDecodeError) as exc:
                    missing.append((key, f"{m.group(1)}_FILE ({file}: {exc.__class__.__name__})"))
                    return ""
            if m.group(2) is not None:
                return m.group(2)
            missing.append((key, m.group(1)))
            return ""

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, missing, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, missing, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(model: type[M], data: Any, file: str, problems: Problems, prefix: tuple[int | str, ...] = ()) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append((file, _key(prefix + tuple(err["loc"])), err["msg"].removeprefix("Value error, ")))
        return None


def _read(path: Path, problems: Problems) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        problems.append((path.name, "", f"not valid TOML: {exc}"))
        return {}
    missing: list[tuple[str, str]] = []
    data: dict[str, Any] = interpolate(raw, missing)
    for key, var in sorted(set(missing)):
        what = f"cannot read {var}" if "_FILE (" in var else f"environment variable {var} is not set and has no default"
        problems.append((path.name, key, what))
    return data


def load_config(conf_dir: Path | str, registry: Registry) -> Config:
    """Load and cross-check a folder; raise ConfigError listing every problem found, not just the first."""
    base = Path(conf_dir)
    problems: Problems = []
    if not base.is_dir():
        raise ConfigError([(str(base), "", "configuration folder not found")])
    parsed: dict[str, Any] = {}
    for name, model in FILES.items():
        parsed[name] = _validate(model, _read(base / name, problems), name, problems)
    if problems:
        raise ConfigError(problems)
    gateway: GatewaySettings = parsed["gateway.toml"]
    clients: ClientsFile = parsed["clients.toml"]
    agencies: AgenciesFile = parsed["agencies.toml"]
    routes: RoutesFile = parsed["routes.toml"]
    procedures: ProceduresFile = parsed["procedures.toml"]
    bundles_file: BundlesFile = parsed["bundles.toml"]
    maintenance: MaintenanceFile = parsed["maintenance.toml"]

    endpoint_settings: dict[tuple[str, str], EndpointSettings] = {}
    for a_name, agency in agencies.agency.items():
        if a_name == WALLET_AGENCY:  # the outbox's jobs to the VNeID wallet go by this name (gateway/wallet.py)
            problems.append(("agencies.toml", f"agency.{a_name}", f"{a_name!r} is reserved for the VNeID wallet"))
        kind = registry.agency_kinds.get(agency.kind)
        if kind is None:
            known = ", ".join(sorted(registry.agency_kinds)) or "none"
            problems.append(
                ("agencies.toml", f"agency.{a_name}.kind", f"unknown agency kind {agency.kind!r} (known: {known})")
            )
            continue
        for e_name, raw in agency.endpoints.items():
            loc = ("agency", a_name, "endpoints", e_name)
            settings = _validate(kind.settings_model, raw, "agencies.toml", problems, loc)
            if settings is not None:
                endpoint_settings[(a_name, e_name)] = settings

    for c_name, client in clients.client.items():
        if client.agency is not None and client.agency not in agencies.agency:
            problems.append(("clients.toml", f"client.{c_name}.agency", f"no agency named {client.agency!r}"))
    problems.extend(_credential_problems(clients))
    problems.extend(_rights_problems(clients, agencies, registry))
    jwks = _read_jwks(base, clients, problems)
    problems.extend(_tls_problems(base, gateway, endpoint_settings))
    problems.extend(_signing_problems(base, gateway))

    for i, route in enumerate(routes.route):
        agency_conf = agencies.agency.get(route.agency)
        if agency_conf is None:
            problems.append(("routes.toml", f"route[{i}].agency", f"no agency named {route.agency!r}"))
            continue
        targets = [route.endpoint] if route.endpoint else list((route.by_province or {}).values())
        for t in targets:
            if t not in agency_conf.endpoints:
                problems.append(("routes.toml", f"route[{i}]", f"agency {route.agency!r} has no endpoint {t!r}"))

    seen: set[str] = set()
    for i, proc in enumerate(procedures.procedure):
        if proc.code in seen:
            problems.append(("procedures.toml", f"procedure[{i}].code", f"{proc.code} is listed twice"))
        seen.add(proc.code)
        if proc.code not in registry.procedures:
            problems.append(("procedures.toml", f"procedure[{i}].code", f"no plugin serves procedure {proc.code}"))

    guides: GuidesFile = parsed["guides.toml"]
    for code in guides.guide:
        if code not in registry.procedures:
            problems.append(("guides.toml", f"guide.{code}", f"no plugin serves procedure {code}"))

    offered = {p.code for p in procedures.procedure if p.enabled}
    bundles: dict[str, BundleSpec] = dict(registry.bundles)
    for b_id, body in bundles_file.bundle.items():
        spec = _validate(BundleSpec, {"id": b_id, **body}, "bundles.toml", problems, ("bundle", b_id))
        if spec is not None:
            bundles[b_id] = spec
    for b_id, spec in bundles.items():
        for i, step in enumerate(spec.step):
            if step.procedure not in offered:
                problems.append(
                    (
                        "bundles.toml",
                        f"bundle.{b_id}.step[{i}].procedure",
                        f"procedure {step.procedure} is not offered in procedures.toml",
                    )
                )

    calendar: CalendarFile = parsed["calendar.toml"]
    listed: dict[Any, str] = {}
    for list_name, days in (("day_off", calendar.day_off), ("working_day", calendar.working_day)):
        for i, day in enumerate(days):
            key = f"{list_name}[{i}].date"
            if day.date in listed:
                problems.append(
                    ("calendar.toml", key, f"{day.date.isoformat()} is already listed as {listed[day.date]}")
                )
            listed.setdefault(day.date, key)
    for i, window in enumerate(maintenance.window):
        agency_conf = agencies.agency.get(window.agency)
        if agency_conf is None:
            problems.append(("maintenance.toml", f"window[{i}].agency", f"no agency named {window.agency!r}"))
        elif window.endpoint is not None and window.endpoint not in agency_conf.endpoints:
            problems.append(
                (
                    "maintenance.toml",
                    f"window[{i}].endpoint",
                    f"agency {window.agency!r} has no endpoint {window.endpoint!r}",
                )
            )

    if problems:
        raise ConfigError(problems)
    return Config(
        base_dir=base,
        gateway=gateway,
        clients=clients.client,
        issuers=clients.issuer,
        jwks=jwks,
        agencies=agencies.agency,
        routes=routes.route,
        procedures=procedures.procedure,
        guides=dict(guides.guide),
        bundles=bundles,
        endpoint_settings=endpoint_settings,
        calendar=calendar,
        windows=maintenance.window,
    )


def _credential_problems(clients: ClientsFile) -> Problems:
    """A key, certificate or token subject must name one client: otherwise who calls would be a guess."""
    problems: Problems = []
    owners: dict[tuple[str, str], str] = {}

    def claim(kind: str, value: str, c_name: str, key: str) -> None:
        other = owners.setdefault((kind, value), c_name)
        if other != c_name:
            problems.append(("clients.toml", f"client.{c_name}.{key}", f"the same {kind} as client {other!r}"))

    for c_name, client in clients.client.items():
        for k in client.key_hashes():
            claim("API key", k.sha256, c_name, "api_keys")
        if client.certificate is not None:
            for fp in client.certificate.sha256:
                claim("certificate fingerprint", fp, c_name, "certificate.sha256")
            if client.certificate.subject is not None:
                subject = parse_subject(client.certificate.subject).rfc4514_string()
                claim("certificate subject", subject, c_name, "certificate.subject")
        for i, issuer in enumerate(client.token_issuers):
            if issuer not in clients.issuer:
                problems.append(("clients.toml", f"client.{c_name}.token_issuers[{i}]", f"no issuer named {issuer!r}"))
            claim(f"token subject of issuer {issuer!r}", client.token_subject or c_name, c_name, "token_subject")
    return problems


def _rights_problems(clients: ClientsFile, agencies: AgenciesFile, registry: Registry) -> Problems:
    problems: Problems = []
    lookups = {
        spec.name
        for agency in agencies.agency.values()
        if agency.kind in registry.agency_kinds
        for spec in registry.agency_kinds[agency.kind].lookups
    }
    for c_name, client in clients.client.items():
        rights = client.rights
        for i, name in enumerate(rights.agencies or ()):
            if name not in agencies.agency:
                problems.append(("clients.toml", f"client.{c_name}.rights.agencies[{i}]", f"no agency named {name!r}"))
        for i, pattern in enumerate(rights.lookups or ()):
            if not any(fnmatchcase(n, pattern) for n in lookups):
                problems.append(
                    (
                        "clients.toml",
                        f"client.{c_name}.rights.lookups[{i}]",
                        f"no configured agency answers {pattern!r}",
                    )
                )
    return problems


def _read_jwks(base: Path, clients: ClientsFile, problems: Problems) -> dict[str, Any]:
    """Each file issuer's JWKS, read and checked now: a bad key file is a configuration error."""
    out: dict[str, Any] = {}
    for name, issuer in clients.issuer.items():
        if issuer.jwks_file is None:
            continue
        path = Path(issuer.jwks_file)
        path = path if path.is_absolute() else base / path
        key = f"issuer.{name}.jwks_file"
        try:
            data = orjson.loads(path.read_bytes())
            key_set(data, str(path))
        except OSError as exc:
            problems.append(("clients.toml", key, f"cannot read {path}: {exc.strerror}"))
        except (orjson.JSONDecodeError, ValueError) as exc:
            problems.append(("clients.toml", key, str(exc)))
        else:
            out[name] = data
    return out


def _signing_problems(base: Path, gateway: GatewaySettings) -> Problems:
    """A signing key that cannot be read is found now, not at the first receipt."""
    from gateway.signatures import load_verifier  # here: gateway.signatures imports gateway.config

    try:
        load_verifier(gateway.signing, base)
    except OSError as exc:
        return [("gateway.toml", "signing", f"cannot read the signing key: {exc.strerror}: {exc.filename}")]
    except ValueError as exc:
        return [("gateway.toml", "signing", str(exc))]
    return []


def _tls_problems(base: Path, gateway: GatewaySettings, endpoints: dict[tuple[str, str], EndpointSettings]) -> Problems:
    """Certificates and keys that cannot be loaded, found now rather than at the first connection."""
    found: list[tuple[str, str, OutboundTLS | ServerTLS]] = []
    if gateway.server.tls is not None:
        found.append(("gateway.toml", "server.tls", gateway.server.tls))
    if gateway.portal.tls is not None:
        found.append(("gateway.toml", "portal.tls", gateway.portal.tls))
    for (a_name, e_name), settings in endpoints.items():
        if settings.tls is not None:
            found.append(("agencies.toml", f"agency.{a_name}.endpoints.{e_name}.tls", settings.tls))
    problems: Problems = []
    for file, key, tls in found:
        error = check_files(tls, base)
        if error is not None:
            problems.append((file, key, error))
    return problems
