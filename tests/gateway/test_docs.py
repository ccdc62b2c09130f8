"""The documentation is checked against the code: a short README, every command and every HTTP route
documented, and a plugin guide whose code imports only what the SDK offers."""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.cli import build_parser
from gateway.config import load_config
from tests.builtin import builtin_registry

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
CONF = Path(__file__).resolve().parent / "conf"
# What the plugin guide's code may import: the SDK, the standard library, pydantic, pytest (its test
# examples), and the example plugin's own package.
GUIDE_ALLOWED = ("gateway.sdk", "pydantic", "pytest", "permits")


def all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *DOCS])


def commands(parser: argparse.ArgumentParser, prefix: str = "lienthong") -> list[str]:
    """Every command line the CLI takes, down to its last sub-command."""
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += commands(sub, f"{prefix} {name}") or [f"{prefix} {name}"]
    return out


def routes() -> list[str]:
    """Every route of the gateway's app as `METHOD /path`."""
    registry = builtin_registry()
    app = create_app(load_config(CONF, registry), registry)
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method not in ("HEAD",) and path:
            found.add(f"{route.method} {path}")
    return sorted(found)


def test_the_readme_is_a_front_page() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < 8 * 1024, f"README.md is {size} bytes: move the reference to docs/"
    for page in DOCS:
        assert f"docs/{page.name}" in (ROOT / "README.md").read_text(), f"README does not link docs/{page.name}"


@pytest.mark.parametrize("command", commands(build_parser()))
def test_every_command_is_documented(command: str) -> None:
    assert command in all_docs(), f"`{command}` appears in neither README.md nor docs/"


@pytest.mark.parametrize("route", routes())
def test_every_route_is_documented(route: str) -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"`{route}`" in api, f"{route} is missing from docs/api.md (its list of every route)"


def guide_imports() -> list[tuple[int, str]]:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    found = []
    for n, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((n, node.module))
            elif isinstance(node, ast.Import):
                found += [(n, alias.name) for alias in node.names]
    return found


def test_the_plugin_guide_imports_only_the_sdk() -> None:
    imports = guide_imports()
    assert any(m == "gateway.sdk" for _, m in imports), "the guide's code shows no import of gateway.sdk"
    outside = [
        (n, m)
        for n, m in imports
        if m.split(".")[0] not in sys.stdlib_module_names
        and not any(m == a or m.startswith(a + ".") for a in GUIDE_ALLOWED)
    ]
    assert not outside, f"the guide's code blocks (by index) import from outside gateway.sdk: {outside}"


def test_everything_the_guide_imports_from_the_sdk_exists() -> None:
    import importlib

    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway.sdk"):
                module = importlib.import_module(node.module)
                missing = [a.name for a in node.names if not hasattr(module, a.name)]
                assert not missing, f"the guide imports {missing} from {node.module}, which has no such names"
