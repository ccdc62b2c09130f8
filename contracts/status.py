"""The dossier status model: the national portal's codes and the transitions allowed between them.

The current status is never stored on its own: it is what the append-only events say, replayed through
`apply`. Overdue is not a status; it is computed from the due date.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class DossierStatus(IntEnum):
    IN_TRANSFER = 0  # in inter-agency transfer (liên thông)
    REGISTERED_ONLINE = 1  # registered online, not yet received
    RECEIVED = 2
    REJECTED = 3  # rejected at intake
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    FINANCIAL_OBLIGATION = 6  # tax or fee to pay before processing goes on
    WITHDRAWN = 7  # withdrawn by the applicant
    STOPPED = 8  # processing stopped
    FINISHED = 9  # result ready at the desk
    RETURNED = 10  # result returned to the applicant

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").lower()

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


S = DossierStatus
TERMINAL = frozenset({S.REJECTED, S.WITHDRAWN, S.STOPPED, S.RETURNED})

TRANSITIONS: dict[DossierStatus, frozenset[DossierStatus]] = {
    S.REGISTERED_ONLINE: frozenset({S.RECEIVED, S.REJECTED, S.WITHDRAWN}),
    S.RECEIVED: frozenset({S.IN_TRANSFER, S.PROCESSING, S.REJECTED, S.WITHDRAWN, S.SUPPLEMENT_REQUESTED}),
    S.IN_TRANSFER: frozenset(
        {S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.FINANCIAL_OBLIGATION, S.FINISHED, S.STOPPED, S.REJECTED}
    ),
    S.PROCESSING: frozenset(
        {S.IN_TRANSFER, S.SUPPLEMENT_REQUESTED, S.FINANCIAL_OBLIGATION, S.FINISHED, S.STOPPED, S.WITHDRAWN}
    ),
    S.SUPPLEMENT_REQUESTED: frozenset({S.PROCESSING, S.IN_TRANSFER, S.REJECTED, S.STOPPED, S.WITHDRAWN}),
    S.FINANCIAL_OBLIGATION: frozenset({S.PROCESSING, S.IN_TRANSFER, S.FINISHED, S.STOPPED, S.WITHDRAWN}),
    S.FINISHED: frozenset({S.RETURNED}),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.STOPPED: frozenset(),
    S.RETURNED: frozenset(),
}
INITIAL = frozenset({S.REGISTERED_ONLINE, S.RECEIVED})


class IllegalTransitionError(ValueError):
    def __init__(self, current: DossierStatus | None, new: DossierStatus) -> None:
        self.current = current
        self.new = new
        if current is None:
            msg = f"a dossier starts as received (2) or registered online (1), not {new.value} ({new.label})"
        else:
            allowed = ", ".join(f"{s.value} ({s.label})" for s in sorted(TRANSITIONS[current])) or "nothing"
            msg = (
                f"a dossier in status {current.value} ({current.label}) cannot move to "
                f"{new.value} ({new.label}); allowed: {allowed}"
            )
        super().__init__(msg)


def can_move(current: DossierStatus | None, new: DossierStatus) -> bool:
    if current is None:
        return new in INITIAL
    return new in TRANSITIONS[current]


def apply(current: DossierStatus | None, new: DossierStatus) -> DossierStatus:
    """The status after `new`; raises IllegalTransitionError for a move the model does not allow."""
    if not can_move(current, new):
        raise IllegalTransitionError(current, new)
    return new


def derive(statuses: Iterable[DossierStatus | int]) -> DossierStatus:
    """Replay a dossier's event statuses from the first; the last legal state is the current one."""
    current: DossierStatus | None = None
    for s in statuses:
        current = apply(current, DossierStatus(s))
    if current is None:
        raise ValueError("a dossier has at least one event")
    return current
