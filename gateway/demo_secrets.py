"""The repository's demo secrets are public: `lienthong serve` refuses a configuration that uses any of
them (an API key of DEMO_KEYS, an agency secret, password or key of conf/demo) unless started with
`--demo-secrets`, which `lienthong demo` and the test stacks pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.auth import hash_key
from gateway.config.loader import _read

# Every secret conf/demo falls back to when its environment variable is unset, and the demo's keys.
DEMO_SECRET_VALUES = frozenset(
    {
        "demo-police-shared-secret-2025",
        "demo-justice-shared-secret-2025",
        "demo-bhxh-client-secret-2025",
        "demo-land-sftp-password-2025",
        "demo-audit-pseudonym-key-2025",
        "demo-portal-push-key-2025",
    }
)


def demo_key_hashes() -> frozenset[str]:
    from gateway.sandbox.demo import DEMO_KEYS

    return frozenset(hash_key(k) for k in DEMO_KEYS.values())


def _walk(value: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{key}[{i}]")


def demo_secrets_in(conf_dir: Path) -> list[str]:
    """`file: key` of each demo secret the folder's files use once the environment is read. Blocking."""
    hashes = demo_key_hashes()
    found: list[str] = []
    for path in sorted(conf_dir.glob("*.toml")):
        data = _read(path, [])
        for key, value in _walk(data, ""):
            if value in DEMO_SECRET_VALUES or value in hashes:
                found.append(f"{path.name}: {key}")
    return found
