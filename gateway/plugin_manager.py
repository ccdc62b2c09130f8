"""Builds the plugin manager and the registry of what plugins provide. Never at import time."""

from __future__ import annotations

import difflib
import inspect
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from contracts import ProcedureSpec
from gateway import hooks
from gateway.bundles import BundleSpec
from gateway.connector import AgencyKind, LookupSpec
from gateway.errors import PluginError


@dataclass
class Registry:
    """What the loaded plugins provide, indexed by name."""

    agency_kinds: dict[str, AgencyKind] = field(default_factory=dict)
    procedures: dict[str, ProcedureSpec] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)  # plugin name -> module
    bundles: dict[str, BundleSpec] = field(default_factory=dict)

    def lookup(self, kind: str, name: str) -> LookupSpec | None:
        for spec in self.agency_kinds[kind].lookups:
            if spec.name == name:
                return spec
        return None


class UnmarkedHookWarning(UserWarning):
    """A plugin defines a `register_*` function without `@hookimpl`: pluggy would silently ignore it."""


def load_entry_point_plugins(pm: pluggy.PluginManager, only: Collection[str] | None = None) -> None:
    """Built-in and third-party plugins both arrive through the `lienthong.plugins` entry points;
    `only` limits them to those names (the gateway's own tests load the built-in ones alone)."""
    for ep in sorted(entry_points(group=hooks.ENTRY_POINT_GROUP), key=lambda e: e.name):
        if pm.has_plugin(ep.name) or (only is not None and ep.name not in only):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(ep.name, f"cannot be imported from {ep.value}: {exc}") from exc
        register(pm, plugin, ep.name)


def register(pm: pluggy.PluginManager, plugin: ModuleType | object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(name, str(exc)) from exc
    _warn_unmarked(pm, plugin, name)


def hook_names() -> list[str]:
    return sorted(n for n, v in vars(hooks).items() if callable(v) and hasattr(v, f"{hooks.PROJECT}_spec"))


def _warn_unmarked(pm: pluggy.PluginManager, plugin: ModuleType | object, name: str) -> None:
    """pluggy takes only functions marked `@hookimpl`; a `register_*` one left unmarked would do nothing."""
    for attr in dir(plugin):
        if not attr.startswith("register_"):
            continue
        value = getattr(plugin, attr, None)
        if not (inspect.isfunction(value) or inspect.ismethod(value)):
            continue
        if pm.parse_hookimpl_opts(plugin, attr) is None:
            warnings.warn(
                f"plugin {name!r}: {attr}() is not marked @hookimpl, so the gateway never calls it "
                "(from gateway.sdk import hookimpl)",
                UnmarkedHookWarning,
                stacklevel=2,
            )


def _unknown_hook(exc: pluggy.PluginValidationError) -> str:
    """pluggy's message, with the nearest hook's name when the unknown one looks misspelt."""
    message = str(exc)
    found = re.search(r"unknown hook '([^']+)'", message)
    if found:
        near = difflib.get_close_matches(found.group(1), hook_names(), n=1, cutoff=0.6)
        message += f"; did you mean {near[0]!r}?" if near else f"; the hooks are {', '.join(hook_names())}"
    return message


def build_plugin_manager(
    extra: dict[str, ModuleType | object] | None = None, only: Collection[str] | None = None
) -> pluggy.PluginManager:
    """The plugin manager with every installed plugin (or those named in `only`) and the `extra` ones."""
    pm = pluggy.PluginManager(hooks.PROJECT)
    pm.add_hookspecs(hooks)
    load_entry_point_plugins(pm, only)
    for name, plugin in (extra or {}).items():
        register(pm, plugin, name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin_name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(plugin_name, f"implements an unknown hook: {_unknown_hook(exc)}") from exc
    return pm


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call the register_* hooks, checking names are unique and naming the plugin at fault."""
    reg = Registry(plugins={pm.get_name(p) or "?": getattr(p, "__name__", repr(p)) for p in pm.get_plugins()})
    for impl in pm.hook.register_agency_kinds.get_hookimpls():
        for kind in _call(impl):
            if not isinstance(kind, AgencyKind):
                raise PluginError(impl.plugin_name, f"register_agency_kinds returned {type(kind).__name__}")
            if kind.name in reg.agency_kinds:
                raise PluginError(impl.plugin_name, f"agency kind {kind.name!r} is already registered")
            reg.agency_kinds[kind.name] = kind
    for impl in pm.hook.register_procedures.get_hookimpls():
        for proc in _call(impl):
            if not isinstance(proc, ProcedureSpec):
                raise PluginError(impl.plugin_name, f"register_procedures returned {type(proc).__name__}")
            if proc.code in reg.procedures:
                raise PluginError(impl.plugin_name, f"procedure {proc.code} is already registered")
            if proc.agency_kind not in reg.agency_kinds:
                raise PluginError(impl.plugin_name, f"procedure {proc.code} names unknown kind {proc.agency_kind!r}")
            reg.procedures[proc.code] = proc
    for impl in pm.hook.register_bundles.get_hookimpls():
        for bundle in _call(impl):
            if not isinstance(bundle, BundleSpec):
                raise PluginError(impl.plugin_name, f"register_bundles returned {type(bundle).__name__}")
            reg.bundles[bundle.id] = bundle
    return reg


def _call(impl: pluggy.HookImpl) -> list[object]:
    try:
        result = impl.function()
    except Exception as exc:
        raise PluginError(impl.plugin_name, f"{impl.function.__name__} failed: {exc}") from exc
    if not isinstance(result, list):
        raise PluginError(impl.plugin_name, f"{impl.function.__name__} must return a list")
    return result


def load_registry(extra: dict[str, ModuleType | object] | None = None, only: Collection[str] | None = None) -> Registry:
    return collect(build_plugin_manager(extra, only))
