"""The conformance kit: what every agency plugin must honour, checked the same way for built-in and
third-party plugins.

In a plugin's own test suite (pytest with pytest-asyncio or pytest-aiohttp):

    import pytest
    from gateway.sdk.conformance import Check, checks

    @pytest.mark.parametrize("check", checks(kinds=["permits"]), ids=str)
    async def test_conformance(check: Check) -> None:
        await check.run()

Checks, per agency kind: the kind's declaration (name, protocol, settings model, simulator, look-ups);
every procedure it serves (form schema, the form field its jurisdiction comes from, its document rules);
every demo dossier and bundle it offers (valid against the contract, the procedure's form, the place it
lies, its required documents, and each document within its component's limits); and its simulator,
started as the demo starts it, answering the fault-injection controls of `gateway.sdk.simulation`
(`/health`, `/_sim/stats`, `/_sim/faults`: down and back up, invalid faults refused). How the
connector behaves against the simulator (idempotent submission, errors mapped, legal status moves,
polls and callbacks) is the behavioural kit, `gateway.sdk.behaviour`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from pydantic import BaseModel, ValidationError

from contracts import DossierSubmission
from contracts.bundle import BundleSubmission
from gateway.config.model import DocumentsSettings
from gateway.connector import AgencyKind, EndpointSettings
from gateway.documents.rules import limits_for
from gateway.intake import field_errors, requirement_errors
from gateway.plugin_manager import Registry, load_registry
from gateway.sdk.simulation import SimulatorOptions

KIND_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
PROTOCOLS = frozenset({"rest", "soap", "file"})
DEMO_SAMPLE = 12  # demo dossiers checked per kind


@dataclass(frozen=True)
class Check:
    kind: str
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


def checks(kinds: Iterable[str] | None = None, registry: Registry | None = None) -> list[Check]:
    """The checks for `kinds` (every registered kind when None), in a stable order."""
    reg = registry or load_registry()
    chosen = sorted(reg.agency_kinds) if kinds is None else list(kinds)
    unknown = [k for k in chosen if k not in reg.agency_kinds]
    if unknown:
        raise LookupError(f"no plugin registers the agency kinds {unknown}; registered: {sorted(reg.agency_kinds)}")
    out: list[Check] = []
    for name in chosen:
        kind = reg.agency_kinds[name]
        out += [
            Check(name, "declaration", _sync(functools.partial(check_declaration, kind))),
            Check(name, "procedures", _sync(functools.partial(check_procedures, reg, kind))),
            Check(name, "demo dossiers", _sync(functools.partial(check_demo_dossiers, reg, kind))),
            Check(name, "simulator and its fault controls", functools.partial(check_simulator, kind)),
        ]
    return out


def expect(condition: bool, message: str) -> None:
    """A failed check, with what the plugin author should fix (kept under python -O, unlike assert)."""
    if not condition:
        raise AssertionError(message)


def _sync(fn: Callable[[], None]) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        fn()

    return run


def check_declaration(kind: AgencyKind) -> None:
    expect(KIND_NAME.match(kind.name) is not None, f"kind name {kind.name!r} is not lower_snake_case (2-40 characters)")
    expect(bool(kind.title.strip()), f"{kind.name}: the kind has no title for operators")
    expect(kind.protocol in PROTOCOLS, f"{kind.name}: protocol {kind.protocol!r} is not one of {sorted(PROTOCOLS)}")
    expect(
        issubclass(kind.settings_model, EndpointSettings),
        f"{kind.name}: settings_model must subclass gateway.connector.EndpointSettings",
    )
    kind.settings_model.model_json_schema()  # operators' settings must be describable
    expect(callable(kind.connector), f"{kind.name}: connector must be a factory taking a ConnectorContext")
    expect(kind.simulator is not None, f"{kind.name}: ship a simulator of the agency (AgencyKind.simulator)")
    names = [spec.name for spec in kind.lookups]
    expect(len(names) == len(set(names)), f"{kind.name}: look-up names repeat: {names}")
    for spec in kind.lookups:
        expect(bool(spec.description.strip()), f"{kind.name}: look-up {spec.name!r} has no description")
        expect(issubclass(spec.input_model, BaseModel), f"{kind.name}: look-up {spec.name!r} input is not a model")
        spec.input_model.model_json_schema()


def check_procedures(registry: Registry, kind: AgencyKind) -> None:
    served = [p for p in registry.procedures.values() if p.agency_kind == kind.name]
    expect(bool(served), f"{kind.name}: no procedure names this kind as its agency_kind")
    for spec in served:
        schema = spec.form_schema()
        expect(schema.get("type") == "object", f"{kind.name}: procedure {spec.code} form schema is not an object")
        if spec.jurisdiction_field is not None:
            first = spec.jurisdiction_field.split(".")[0].removesuffix("[]")
            expect(
                first in schema.get("properties", {}),
                f"{kind.name}: procedure {spec.code} takes its jurisdiction from form field {first!r}, "
                "which its form does not have",
            )
        codes = [r.component_code for r in spec.documents]
        expect(len(codes) == len(set(codes)), f"{kind.name}: procedure {spec.code} lists a document twice: {codes}")


def check_demo_dossiers(registry: Registry, kind: AgencyKind) -> None:
    if kind.demo_dossiers is None:
        raise AssertionError(f"{kind.name}: offer demo_dossiers for the demo and the benchmark")
    samples = kind.demo_dossiers(7, DEMO_SAMPLE)
    expect(len(samples) == DEMO_SAMPLE, f"{kind.name}: demo_dossiers(seed, {DEMO_SAMPLE}) gave {len(samples)}")
    expect(samples == kind.demo_dossiers(7, DEMO_SAMPLE), f"{kind.name}: demo dossiers differ for the same seed")
    for i, raw in enumerate(samples):
        where = f"{kind.name}: demo dossier {i}"
        try:
            sub = DossierSubmission.model_validate(raw)
        except ValidationError as exc:
            raise AssertionError(f"{where} breaks the contract: {_errors(exc)}") from None
        spec = registry.procedures.get(sub.procedure_code)
        if spec is None:
            raise AssertionError(f"{where}: procedure {sub.procedure_code} is registered by no plugin")
        errors = requirement_errors(spec, sub)
        expect(
            not errors,
            f"{where} does not meet procedure {spec.code}: " + "; ".join(f"{e.path}: {e.message}" for e in errors),
        )
        for j, a in enumerate(sub.attachments):
            limits = limits_for(DocumentsSettings(), spec, a.component_code)
            problem = limits.type_problem(a.media_type or "") or limits.size_problem(a.size or 0)
            expect(problem is None, f"{where}: attachment {j} ({a.component_code}): {problem}")
    if kind.demo_bundles is not None:
        for i, raw in enumerate(kind.demo_bundles(7, 2)):
            try:
                BundleSubmission.model_validate(raw)  # its bundle is declared in conf/, checked there
            except ValidationError as exc:
                raise AssertionError(f"{kind.name}: demo bundle {i} breaks the contract: {_errors(exc)}") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{e.path}: {e.message}" for e in field_errors(exc))


async def check_simulator(kind: AgencyKind) -> None:
    if kind.simulator is None:
        raise AssertionError(f"{kind.name}: no simulator")
    server = TestServer(kind.simulator(SimulatorOptions(processing_delay=0.05)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:

            async def call(method: str, path: str, body: object = None) -> tuple[int, object]:
                async with http.request(method, str(server.make_url(path)), json=body) as resp:
                    return resp.status, await resp.json(content_type=None)

            where = f"{kind.name} simulator"
            status, _ = await call("GET", "/health")
            expect(status == 200, f"{where}: /health answers {status} when up")
            status, stats = await call("GET", "/_sim/stats")
            expect(status == 200 and isinstance(stats, dict), f"{where}: /_sim/stats is not a JSON object")
            status, _ = await call("POST", "/_sim/faults", {"down": True})
            expect(status == 200, f"{where}: cannot be taken down through /_sim/faults")
            status, _ = await call("GET", "/health")
            expect(status == 503, f"{where}: /health answers {status} while down")
            status, _ = await call("POST", "/_sim/faults", {"down": False})
            status, _ = await call("GET", "/health")
            expect(status == 200, f"{where}: /health answers {status} once back up")
            status, _ = await call("POST", "/_sim/faults", {"latency_ms": -1})
            expect(status == 422, f"{where}: an impossible fault is accepted ({status})")
            status, faults = await call("GET", "/_sim/faults")
            expect(isinstance(faults, dict) and faults.get("latency_ms") == 0, f"{where}: a refused fault stuck")
    finally:
        await server.close()


def main() -> int:  # pragma: no cover - a convenience for plugin authors: python -m gateway.sdk.conformance
    import asyncio

    failed = 0
    for check in checks():
        try:
            asyncio.run(check.run())
            print(f"ok    {check}")
        except AssertionError as exc:
            failed += 1
            print(f"FAIL  {check}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
