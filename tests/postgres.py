"""The machine's PostgreSQL for tests: each test gets a database of its own, with a random name, dropped after."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql

SERVER = os.environ.get("LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{SERVER}/test", autocommit=True)


@contextlib.contextmanager
def database(prefix: str = "lienthong_test") -> Iterator[str]:
    """A new empty database's URL; dropped afterwards (connections still open to it are ended first)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{SERVER}/{name}"
    finally:
        with admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
