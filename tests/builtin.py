"""The gateway's own tests load the plugins that ship with it, and only those: a third-party plugin
installed beside it (a scaffolded one, say) must not change what these tests see."""

from __future__ import annotations

from types import ModuleType

from gateway.plugin_manager import Registry, load_registry

BUILTIN_PLUGINS = ("justice", "land", "police", "social_insurance", "tax")


def builtin_registry(extra: dict[str, ModuleType | object] | None = None) -> Registry:
    return load_registry(extra, only=BUILTIN_PLUGINS)
