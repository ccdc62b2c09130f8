"""The dossier status model: the national portal's codes and the transitions allowed between them.

The current status is never stored on its own: it is what the append-only events say, replayed through
`apply`. Overdue is not a status; it is computed from the due date (and the portal counts a dossier asked
for a supplement more than once as late).

A supplement request (5) interrupts the dossier; once answered, the dossier goes back to the status it
was in when the request came (`resumes`): received (2), in transfer (0) or processing (4).
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
    def label_vi(self) -> str:
        """The status in the words of the national portal's users (progress records, NoiDungXuLy)."""
        return _LABELS_VI[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


S = DossierStatus
_LABELS_VI = {
    S.IN_TRANSFER: "Đang chuyển liên thông",
    S.REGISTERED_ONLINE: "Đăng ký trực tuyến",
    S.RECEIVED: "Đã tiếp nhận hồ sơ",
    S.REJECTED: "Từ chối tiếp nhận hồ sơ",
    S.PROCESSING: "Đang xử lý",
    S.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    S.FINANCIAL_OBLIGATION: "Yêu cầu thực hiện nghĩa vụ tài chính",
    S.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    S.STOPPED: "Dừng xử lý",
    S.FINISHED: "Đã xử lý xong",
    S.RETURNED: "Đã trả kết quả",
}
TERMINAL = frozenset({S.REJECTED, S.WITHDRAWN, S.STOPPED, S.RETURNED})

TRANSITIONS: dict[DossierStatus, frozenset[DossierStatus]] = {
    S.REGISTERED_ONLINE: frozenset({S.RECEIVED, S.REJECTED, S.WITHDRAWN}),
    S.RECEIVED: frozenset({S.IN_TRANSFER, S.PROCESSING, S.REJECTED, S.WITHDRAWN, S.SUPPLEMENT_REQUESTED}),
    S.IN_TRANSFER: frozenset(
        {S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.FINANCIAL_OBLIGATION, S.FINISHED, S.STOPPED, S.REJECTED, S.WITHDRAWN}
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
# The statuses a supplement request can interrupt, and so the ones its answer may restore.
RESUMABLE = frozenset(s for s, targets in TRANSITIONS.items() if S.SUPPLEMENT_REQUESTED in targets)


class IllegalTransitionError(ValueError):
    def __init__(
        self, current: DossierStatus | None, new: DossierStatus, *, resumes: DossierStatus | None = None
    ) -> None:
        self.current = current
        self.new = new
        if current is None:
            msg = f"a dossier starts as received (2) or registered online (1), not {new.value} ({new.label})"
        else:
            targets = set(TRANSITIONS[current])
            if current == S.SUPPLEMENT_REQUESTED and resumes in RESUMABLE:
                targets.add(resumes)
            allowed = ", ".join(f"{s.value} ({s.label})" for s in sorted(targets)) or "nothing"
            msg = (
                f"a dossier in status {current.value} ({current.label}) cannot move to "
                f"{new.value} ({new.label}); allowed: {allowed}"
            )
        super().__init__(msg)


def can_move(current: DossierStatus | None, new: DossierStatus, *, resumes: DossierStatus | None = None) -> bool:
    """Whether `new` may follow `current`. `resumes`, for a dossier waiting on a supplement (5), is the
    status it was in when the request came: the answer may take it back there (5 -> 2 after 2 -> 5)."""
    if current is None:
        return new in INITIAL
    if current == S.SUPPLEMENT_REQUESTED and new == resumes and resumes in RESUMABLE:
        return True
    return new in TRANSITIONS[current]


def apply(current: DossierStatus | None, new: DossierStatus, *, resumes: DossierStatus | None = None) -> DossierStatus:
    """The status after `new`; raises IllegalTransitionError for a move the model does not allow."""
    if not can_move(current, new, resumes=resumes):
        raise IllegalTransitionError(current, new, resumes=resumes)
    return new


def derive(statuses: Iterable[DossierStatus | int]) -> DossierStatus:
    """Replay a dossier's event statuses from the first; the last legal state is the current one."""
    current: DossierStatus | None = None
    resumes: DossierStatus | None = None  # the status a supplement request interrupted
    for s in statuses:
        new = apply(current, DossierStatus(s), resumes=resumes)
        if new == S.SUPPLEMENT_REQUESTED:
            resumes = current
        current = new
    if current is None:
        raise ValueError("a dossier has at least one event")
    return current
