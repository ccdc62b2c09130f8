"""Rights per client, beyond its five scopes: which procedures, agencies and look-ups it may use.

A scope says what kind of call a client makes (submit, read, lookup, ...); its rights say on what. A
centre of one province may submit land dossiers for any province since July 2025, unless its operator
limits it to its own (`own_province_only`): then a jurisdiction-bound procedure is open to it only for
cases in its province. A missing right answers 403 problem+json naming it (`right`), and the refusal
is written to the audit log (the middleware does, for every `RightMissing`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import Forbidden


class Rights(BaseModel):
    """`[client.<id>.rights]`. A list left out allows everything of its kind; an empty list, nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    procedures: tuple[str, ...] | None = Field(
        None, description="procedure codes or patterns (1.004*, 2.00?123) the client may submit"
    )
    agencies: tuple[str, ...] | None = Field(None, description="agencies (as in agencies.toml) its dossiers may go to")
    lookups: tuple[str, ...] | None = Field(None, description="look-ups (by name) it may run")
    own_province_only: bool = Field(
        False, description="jurisdiction-bound procedures (land) only for cases in the client's own province"
    )


class RightMissing(Forbidden):
    slug, title = "missing-right", "This client has no right to this"

    def __init__(self, detail: str, *, right: str, action: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail, extra={"right": right, **(extra or {})})
        self.right = right
        self.action = action  # what was refused, for the audit record: "submit", "lookup"


def _allowed(patterns: tuple[str, ...] | None, value: str) -> bool:
    return patterns is None or any(fnmatchcase(value, p) for p in patterns)


def check_dossier(
    client_id: str,
    rights: Rights,
    province: str | None,
    *,
    procedure: str,
    agency: str | None,
    bound: bool,
    case_province: str,
) -> None:
    """May this client submit a dossier of `procedure` that goes to `agency`? `bound`: the procedure is
    handled by the office of the province the case belongs to (`case_province`). `agency` None: before
    routing, only what does not depend on it."""
    if not _allowed(rights.procedures, procedure):
        raise RightMissing(
            f"client {client_id!r} has no right to procedure {procedure}",
            right=f"procedure:{procedure}",
            action="submit",
        )
    if agency is not None and not _allowed(rights.agencies, agency):
        raise RightMissing(
            f"client {client_id!r} has no right to send dossiers to agency {agency!r}",
            right=f"agency:{agency}",
            action="submit",
        )
    if bound and rights.own_province_only and case_province != province:
        raise RightMissing(
            f"client {client_id!r} may submit procedure {procedure} only for cases in its province ({province}), "
            f"not in province {case_province}",
            right=f"jurisdiction:{case_province}",
            action="submit",
        )


def check_lookup(client_id: str, rights: Rights, *, name: str, agency: str) -> None:
    if not _allowed(rights.lookups, name):
        raise RightMissing(
            f"client {client_id!r} has no right to the look-up {name!r}", right=f"lookup:{name}", action="lookup"
        )
    if not _allowed(rights.agencies, agency):
        raise RightMissing(
            f"client {client_id!r} has no right to use agency {agency!r}", right=f"agency:{agency}", action="lookup"
        )
