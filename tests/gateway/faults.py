"""Storage faults injected below the store: the SQLite connection's commits fail as on a full disk.

Every connection the store opens is wrapped; while a rule is armed, a COMMIT of a transaction that ran a
statement the rule names is turned into what SQLite does when the disk is full: the transaction is rolled
back and the commit raises SQLITE_FULL (a genuine sqlite3.OperationalError, made by SQLite itself on a
database that may not grow). Nothing of the failed transaction is kept; the connection goes on serving.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.store import sqlite as sqlite_store

_real_connect = sqlite_store._connect


def disk_full_error() -> sqlite3.OperationalError:
    """SQLITE_FULL as SQLite raises it: from a database that may not grow beyond its one page."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA max_page_count = 1")
        conn.execute("CREATE TABLE t (x)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite took a table into a database of one page")


@dataclass
class Rule:
    matches: Callable[[list[str]], bool]
    times: int | None  # None: until cleared


class StoreFaults:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.failed_commits = 0
        self._lock = threading.Lock()

    def connect(self, path: str) -> Any:
        return FaultyConnection(_real_connect(path), self)

    def disk_full(self) -> None:
        """Every commit fails until `clear()`."""
        self._arm(Rule(lambda _: True, None))

    def fail_commits(self, *fragments: str, times: int = 1) -> None:
        """The next `times` commits of transactions that ran a statement containing one of `fragments` fail."""
        self._arm(Rule(lambda statements: any(f in s for s in statements for f in fragments), times))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _arm(self, rule: Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def should_fail(self, statements: list[str]) -> bool:
        with self._lock:
            for rule in self.rules:
                if rule.matches(statements):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self.rules.remove(rule)
                    self.failed_commits += 1
                    return True
        return False


class FaultyConnection:
    """A sqlite3.Connection whose COMMIT may fail as on a full disk; everything else passes through."""

    def __init__(self, conn: sqlite3.Connection, faults: StoreFaults) -> None:
        self._conn = conn
        self._faults = faults
        self._statements: list[str] = []

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            self._statements = []
        elif head.startswith("COMMIT") and self._faults.should_fail(self._statements):
            self._conn.execute("ROLLBACK")  # what SQLite does when a commit cannot be written
            raise disk_full_error()
        else:
            self._statements.append(sql)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def store_faults(monkeypatch: pytest.MonkeyPatch) -> StoreFaults:
    """Arm faults on every SqliteStore opened from now on in this test."""
    faults = StoreFaults()
    monkeypatch.setattr(sqlite_store, "_connect", faults.connect)
    return faults
