"""The PostgreSQL dialect of the store's SQL: the modules beside this one are written once, for SQLite's
syntax within the GUIDE's rules, and a PostgreSQL connection (`PgConnection`) translates each statement
the first time it sees it: `?` placeholders, JSON arrays taken apart by `json_each`, the DDL of the one
migration list (types, identity columns, triggers). Rows answer by index and by column name, as
sqlite3.Row does, so the code that reads them does not know which database it reads.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # psycopg is loaded with the first PostgreSQL connection: an SQLite gateway never pays for it
    import psycopg

# Every write transaction takes this transaction-level advisory lock first (BEGIN IMMEDIATE in SQLite
# takes the database's write lock): the processes on one database write one transaction at a time, so
# dossier codes, the audit chain's head and the order of status events stay as one writer makes them.
WRITE_LOCK = 0x4C54_0001

_INSERT_MANY = re.compile(
    r"^INSERT INTO (\w+) \(([^)]*)\) SELECT json_extract\(value, '\$\[0\]'\).*? FROM json_each\(\?\) WHERE true(.*)$",
    re.DOTALL,
)


_IN_JSON = re.compile(r"\b(NOT )?IN \(SELECT value FROM json_each\(\?\)\)")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    objects_of: tuple[str, ...] | None = None  # the one parameter, JSON arrays to become objects of these columns
    arrays: tuple[int, ...] = ()  # parameters holding a JSON array to pass as an array (typed by its values)


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> Statement:
    """A statement of the store modules in PostgreSQL's syntax (cached: the modules' SQL is a few hundred
    strings)."""
    many = _INSERT_MANY.match(sql.strip())
    if many is not None:
        # Rows passed as one JSON array of arrays: PostgreSQL types each value by its column
        # (json_populate_recordset of the table's row type).
        table, columns, rest = many.group(1), many.group(2), many.group(3)
        names = tuple(c.strip() for c in columns.split(","))
        rows = f"json_populate_recordset(NULL::{table}, ?::json)"
        text = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {rows}{rest}"
        return Statement(_placeholders(text), names)
    # `x IN (SELECT value FROM json_each(?))`: `x = ANY(?)` with the array, its type that of the values.
    arrays, out, last = [], [], 0
    for m in _IN_JSON.finditer(sql):
        arrays.append(_count_marks(sql[: m.start()]))
        out += [sql[last : m.start()], "<> ALL(?)" if m.group(1) else "= ANY(?)"]
        last = m.end()
    sql = "".join([*out, sql[last:]]).replace("json_each(?)", "json_array_elements_text(?::json)")
    sql = _scalar_min_max(sql)
    return Statement(_placeholders(sql), arrays=tuple(arrays))


def _scalar_min_max(sql: str) -> str:
    """SQLite's MIN(a, b) and MAX(a, b) of several values are PostgreSQL's LEAST and GREATEST."""
    for m in reversed(list(re.finditer(r"\b(MIN|MAX)\(", sql))):
        depth, comma = 0, False
        for ch in sql[m.end() - 1 :]:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            comma = comma or (ch == "," and depth == 1)
            if depth == 0:
                break
        if comma:
            sql = sql[: m.start()] + ("LEAST(" if m.group(1) == "MIN" else "GREATEST(") + sql[m.end() :]
    return sql


def _count_marks(sql: str) -> int:
    quoted, n = False, 0
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        elif ch == "?" and not quoted:
            n += 1
    return n


def _placeholders(sql: str) -> str:
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def objects(columns: tuple[str, ...], param: Any) -> str:
    arrays = orjson.loads(param)
    return orjson.dumps([dict(zip(columns, row, strict=True)) for row in arrays]).decode()


class Row:
    """A result row by position and by column name, like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=False))!r})"


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    index = {c.name: i for i, c in enumerate(description)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class _Pipelined:
    """A cursor of a pipelined statement. Its rows are fetched when asked for (psycopg waits for them);
    its row count is known only once its answer came, so reading it syncs the pipeline first."""

    __slots__ = ("_cur", "_pipeline")

    def __init__(self, cur: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cur = cur
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    def fetchmany(self, size: int = 0) -> list[Any]:
        return self._cur.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class PgConnection:
    """A psycopg connection (autocommit: transactions are the caller's BEGIN/COMMIT, as with the SQLite
    connection in isolation_level=None) that speaks to the store modules as a sqlite3.Connection does."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        conn.row_factory = _row_factory
        self._pipeline: psycopg.Pipeline | None = None

    @contextlib.contextmanager
    def pipelined(self) -> Iterator[None]:
        """Statements sent without waiting for their answers, until one is read (a row, a row count) or
        the block ends (psycopg's pipeline mode): a writer batch then waits for the server about once per
        read instead of once per statement. An error surfaces at the next read or at the end of the
        block, not at its own statement: only for work that is rolled back whole on any error."""
        with self.raw.pipeline() as pipeline:
            self._pipeline = pipeline
            try:
                yield
            finally:
                self._pipeline = None

    @classmethod
    def connect(cls, url: str) -> PgConnection:
        import psycopg

        return cls(psycopg.connect(url, autocommit=True, **KEEPALIVES))

    @property
    def in_transaction(self) -> bool:
        # A connection the server dropped is in no transaction to roll back: the next BEGIN opens another.
        from psycopg.pq import TransactionStatus

        return not self.broken and self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.raw.closed or self.raw.broken

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if sql == "BEGIN IMMEDIATE":
            cur = self.raw.execute("BEGIN")
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            return cur
        statement = translate(sql)
        if params is None and "%s" not in statement.sql:
            return self._answer(self.raw.execute(statement.sql.replace("%%", "%")))
        args = list(params or ())
        if statement.objects_of is not None:
            args[0] = objects(statement.objects_of, args[0])
        for i in statement.arrays:
            args[i] = orjson.loads(args[i])
        return self._answer(self.raw.execute(statement.sql, args))

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> Any:
        cur = self.raw.cursor()
        cur.executemany(translate(sql).sql, [list(p) for p in seq])
        return self._answer(cur)

    def _answer(self, cur: psycopg.Cursor[Any]) -> Any:
        return cur if self._pipeline is None else _Pipelined(cur, self._pipeline)

    def close(self) -> None:
        self.raw.close()


# A peer that vanishes (a machine gone, a cable pulled) is noticed within a minute: the advisory locks
# of the roles it held are released by the server then, and another process takes them over.
# A server that does not answer at all is given up on after 10 s (an error, not a hang at start-up).
KEEPALIVES: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def is_postgres(conn: Any) -> bool:
    return isinstance(conn, PgConnection)


# -- DDL ---------------------------------------------------------------------------------------------

_TRIGGER = re.compile(
    r"CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE|INSERT) ON (\w+)\s*(?:WHEN (.*?))?\s*"
    r"BEGIN\s*SELECT RAISE\(ABORT, '([^']*)'\);\s*END;",
    re.DOTALL,
)


def _trigger(m: re.Match[str]) -> str:
    name, event, table, when, message = m.groups()
    condition = re.sub(r"\bIS NOT (?!NULL\b)", "IS DISTINCT FROM ", when) if when else "true"
    result = "OLD" if event == "DELETE" else "NEW"
    return (
        f"CREATE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
        f"IF {condition} THEN RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation'; "
        f"END IF; RETURN {result}; END $fn$;\n"
        f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}_fn();"
    )


def ddl(script: str) -> str:
    """A migration of the one list (SQLite's DDL within the GUIDE's rules) in PostgreSQL's."""
    parts = []
    last = 0
    for m in _TRIGGER.finditer(script):
        parts.append(_types(script[last : m.start()]))
        parts.append(_trigger(m))
        last = m.end()
    parts.append(_types(script[last:]))
    return "".join(parts)


def _types(sql: str) -> str:
    sql = sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return re.sub(r"\bBLOB\b", "BYTEA", sql)


# What PostgreSQL keeps beside a migration of the list, by its number (none yet): DDL of its own that the
# translation cannot give, never a change of what the list says.
EXTRAS: dict[int, str] = {}


def skip_locked(conn: Any) -> str:
    """Rows another transaction is claiming are passed over, not waited for (PostgreSQL; SQLite's one
    writer never meets them)."""
    return " FOR UPDATE SKIP LOCKED" if is_postgres(conn) else ""
