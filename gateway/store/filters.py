"""Filters of the operators' searches over the outbox, turned into portable SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def like(text: str) -> str:
    """A LIKE pattern finding `text` anywhere (lower case), with its wildcards escaped (ESCAPE '\\')."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Each field given narrows the jobs: by id, dossier, agency, endpoint, state(s), text of the last
    error, and when they last changed (epoch seconds, [since, until))."""

    ids: tuple[int, ...] | None = None
    dossier_id: str | None = None
    agency: str | None = None
    endpoint: str | None = None
    states: tuple[str, ...] | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        sql, args = "1 = 1", list[Any]()
        if self.ids is not None:
            sql += f" AND id IN ({', '.join('?' * len(self.ids))})" if self.ids else " AND 1 = 0"
            args.extend(self.ids)
        for column, value in (("dossier_id", self.dossier_id), ("agency", self.agency), ("endpoint", self.endpoint)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if self.states is not None:
            sql += f" AND state IN ({', '.join('?' * len(self.states))})" if self.states else " AND 1 = 0"
            args.extend(self.states)
        if self.text:
            sql += " AND LOWER(COALESCE(last_error, '')) LIKE ? ESCAPE '\\'"
            args.append(like(self.text))
        if self.since is not None:
            sql += " AND updated_at >= ?"
            args.append(self.since)
        if self.until is not None:
            sql += " AND updated_at < ?"
            args.append(self.until)
        return sql, args
