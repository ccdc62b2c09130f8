"""Many rows in one statement (multi-row `VALUES`): the writer thread gives the GIL up at every statement
step, so the rows of a batch go together, in chunks that stay under the engines' limits on parameters
(SQLite 32,766, PostgreSQL 65,535)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

ROWS_PER_STATEMENT = 500  # at 13 parameters a row (the widest table written this way), 6,500 a statement


def chunks(rows: Sequence[T], n: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), n):
        yield rows[i : i + n]
