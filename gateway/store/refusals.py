"""The national portal's refusals of dossiers' records, kept on the dossier for an operator to see.

The pusher records what the portal said when it refuses a record that names a dossier (and often a
field), and clears it once the portal takes a push holding that dossier again. Portable SQL: one
nullable JSON column of `dossiers`, set and cleared by code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from contracts.dossier import PortalRefusal


def record(conn: sqlite3.Connection, codes: Sequence[str], refusal: PortalRefusal) -> int:
    """Put the refusal on these dossiers (by code); returns how many the store holds."""
    if not codes:
        return 0
    marks = ", ".join("?" * len(codes))
    cur = conn.execute(
        f"UPDATE dossiers SET portal_refusal = ? WHERE code IN ({marks})",
        (refusal.model_dump_json(), *codes),
    )
    return cur.rowcount


def clear(conn: sqlite3.Connection, codes: Sequence[str]) -> int:
    """The portal took these dossiers: their refusals, if any, are over."""
    if not codes:
        return 0
    marks = ", ".join("?" * len(codes))
    cur = conn.execute(
        f"UPDATE dossiers SET portal_refusal = NULL WHERE portal_refusal IS NOT NULL AND code IN ({marks})",
        tuple(codes),
    )
    return cur.rowcount
