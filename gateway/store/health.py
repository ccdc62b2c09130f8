"""Storage faults seen by a store: one log line when an episode starts, one when it ends, none per request.

A store reports the outcome of each commit (`failed` with the error, `committed`); requests meanwhile are
answered 503 with Retry-After (StorageUnavailable) by whoever called the store. An episode ends at the
first commit that succeeds once `settle` seconds (10) have passed since the last failure: a full disk takes
some small writes (the write-ahead log reuses its space) while refusing others, and that is one episode,
not a line per commit.

Also the SQL of the readiness probe: one row rewritten through the same writer as every other write.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("lienthong.store")

PROBE_BYTES = 16 * 1024  # about a submission's worth: a disk that cannot take this cannot take dossiers


class Episodes:
    """Thread-safe: commits are reported by the writer thread, reads by reader threads."""

    def __init__(self, settle: float = 10.0, clock: Callable[[], float] = time.monotonic, logger: Any = None) -> None:
        self.settle = settle
        self.clock = clock
        self.log = logger if logger is not None else log
        self.failures = 0  # failed operations in the current episode
        self.episodes = 0
        self._since: float | None = None  # start of the current episode, None while healthy
        self._last_failure = 0.0
        self._lock = threading.Lock()

    @property
    def faulty(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = self.clock()
            self._last_failure = now
            self.failures += 1
            if self._since is not None:
                return
            self._since = now
            self.episodes += 1
        code = getattr(exc, "sqlite_errorname", None)
        self.log.error("storage_fault", error=f"{type(exc).__name__}: {exc}", code=code, episode=self.episodes)

    def committed(self) -> None:
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            now = self.clock()
            if self._since is None or now - self._last_failure < self.settle:
                return
            lasted, failures = now - self._since, self.failures
            self._since, self.failures = None, 0
        self.log.warning(
            "storage_recovered", seconds=round(lasted, 1), failed_operations=failures, episode=self.episodes
        )


def probe(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO store_probe (id, at, payload) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET at = excluded.at, payload = excluded.payload",
        (time.time(), "x" * PROBE_BYTES),
    )
