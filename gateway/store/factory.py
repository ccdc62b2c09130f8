"""Which store a configuration names: `[store] url` in gateway.toml, or LIENTHONG_STORE_URL over it.

`sqlite:///path` (or no url: `[store] path`) is the embedded SQLite file of one process;
`postgresql://user@host:port/db` a PostgreSQL database that several processes may share.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.store.seals import AuditKey
from gateway.store.sqlite import SqliteStore
from gateway.store.urls import is_postgres_url, redacted

ENV = "LIENTHONG_STORE_URL"
SQLITE = "sqlite:///"


def store_url(configured: str, path: Path) -> str:
    """The store to use: the environment's, else the configuration's url, else its SQLite path."""
    url = os.environ.get(ENV) or configured
    if not url:
        return SQLITE + str(path)
    if not (url.startswith(SQLITE) or is_postgres_url(url)):
        raise ValueError(f"a store url is sqlite:///path or postgresql://..., not {url!r}")
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of an sqlite:/// url (None for PostgreSQL)."""
    return Path(url.removeprefix(SQLITE)) if url.startswith(SQLITE) else None


def make_store(
    url: str,
    *,
    batch_max: int = 256,
    exclusive: bool = False,
    audit_key: AuditKey | None = None,
    group_commit_wait: float = 0.0,
    lookup_record_wait: float = 0.0,
) -> SqliteStore:
    """The store of a url, not yet open. `exclusive`: the serving process of an SQLite file locks it."""
    path = sqlite_path(url)
    if path is None:
        from gateway.store.postgres import PostgresStore  # psycopg: loaded only for a PostgreSQL store

        return PostgresStore(
            url,
            batch_max=batch_max,
            audit_key=audit_key,
            group_commit_wait=group_commit_wait,
            lookup_record_wait=lookup_record_wait,
        )
    return SqliteStore(
        path,
        batch_max=batch_max,
        exclusive=exclusive,
        audit_key=audit_key,
        group_commit_wait=group_commit_wait,
        lookup_record_wait=lookup_record_wait,
    )


__all__ = ["ENV", "make_store", "redacted", "sqlite_path", "store_url"]
