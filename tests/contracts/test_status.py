"""contracts.status: portal status codes, the transitions between them, replay of events."""

from __future__ import annotations

import itertools

import pytest

from contracts.status import (
    INITIAL,
    RESUMABLE,
    TERMINAL,
    TRANSITIONS,
    DossierStatus,
    IllegalTransitionError,
    apply,
    can_move,
    derive,
)

S = DossierStatus

LEGAL = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
ILLEGAL = sorted((a, b) for a, b in itertools.product(S, S) if b not in TRANSITIONS[a])


def test_portal_codes() -> None:
    assert {s.name: s.value for s in S} == {
        "IN_TRANSFER": 0,
        "REGISTERED_ONLINE": 1,
        "RECEIVED": 2,
        "REJECTED": 3,
        "PROCESSING": 4,
        "SUPPLEMENT_REQUESTED": 5,
        "FINANCIAL_OBLIGATION": 6,
        "WITHDRAWN": 7,
        "STOPPED": 8,
        "FINISHED": 9,
        "RETURNED": 10,
    }


def test_labels() -> None:
    assert S.SUPPLEMENT_REQUESTED.label == "supplement requested"
    assert S.IN_TRANSFER.label == "in transfer"
    assert S.RETURNED.label == "returned"


def test_vietnamese_labels_for_the_portal() -> None:
    assert S.SUPPLEMENT_REQUESTED.label_vi == "Yêu cầu bổ sung hồ sơ"
    assert S.FINISHED.label_vi == "Đã xử lý xong"
    assert len({s.label_vi for s in S}) == len(S)


def test_a_transfer_may_be_withdrawn() -> None:
    """0 -> 7: the applicant withdraws while the dossier is between agencies, as from 2, 4, 5 and 6."""
    assert can_move(S.IN_TRANSFER, S.WITHDRAWN)
    assert all(can_move(s, S.WITHDRAWN) for s in (S.RECEIVED, S.PROCESSING, S.SUPPLEMENT_REQUESTED))
    assert derive([2, 0, 7]) is S.WITHDRAWN


def test_a_supplement_answer_goes_back_to_the_status_the_request_interrupted() -> None:
    assert {S.IN_TRANSFER, S.RECEIVED, S.PROCESSING} == RESUMABLE
    for before in RESUMABLE:
        assert can_move(S.SUPPLEMENT_REQUESTED, before, resumes=before)
        assert apply(S.SUPPLEMENT_REQUESTED, before, resumes=before) is before
    # 5 -> 2 only for a dossier that was received (2) when the request came
    assert not can_move(S.SUPPLEMENT_REQUESTED, S.RECEIVED)
    assert not can_move(S.SUPPLEMENT_REQUESTED, S.RECEIVED, resumes=S.PROCESSING)
    assert not can_move(S.SUPPLEMENT_REQUESTED, S.FINISHED, resumes=S.FINISHED)  # never a way around the machine
    assert can_move(S.SUPPLEMENT_REQUESTED, S.PROCESSING, resumes=S.RECEIVED)  # the agency may go straight on
    with pytest.raises(IllegalTransitionError) as exc:
        apply(S.SUPPLEMENT_REQUESTED, S.RECEIVED, resumes=S.PROCESSING)
    assert str(exc.value).endswith("allowed: 0 (in transfer), 3 (rejected), 4 (processing), 7 (withdrawn), 8 (stopped)")
    with pytest.raises(IllegalTransitionError) as exc:
        apply(S.SUPPLEMENT_REQUESTED, S.FINISHED, resumes=S.RECEIVED)
    assert "allowed: 0 (in transfer), 2 (received), 3 (rejected)" in str(exc.value)


@pytest.mark.parametrize(
    ("events", "current"),
    [
        ([2, 5, 2, 4, 9, 10], S.RETURNED),  # asked before the agency took it, answered, back to received
        ([2, 4, 5, 4, 5, 4, 9], S.FINISHED),  # two rounds while processing
        ([2, 0, 5, 0, 9], S.FINISHED),  # in transfer
        ([2, 5, 2, 5, 2, 0, 7], S.WITHDRAWN),
    ],
)
def test_derive_restores_after_a_supplement(events: list[int], current: DossierStatus) -> None:
    assert derive(events) is current


def test_derive_does_not_restore_what_the_request_did_not_interrupt() -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        derive([2, 4, 5, 2])
    assert (exc.value.current, exc.value.new) == (S.SUPPLEMENT_REQUESTED, S.RECEIVED)


def test_every_status_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(("current", "new"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_legal_transition(current: DossierStatus, new: DossierStatus) -> None:
    assert can_move(current, new)
    assert apply(current, new) is new


@pytest.mark.parametrize(("current", "new"), ILLEGAL, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL])
def test_illegal_transition_names_both_statuses(current: DossierStatus, new: DossierStatus) -> None:
    assert not can_move(current, new)
    with pytest.raises(IllegalTransitionError) as exc:
        apply(current, new)
    assert exc.value.current is current
    assert exc.value.new is new
    assert str(exc.value).startswith(
        f"a dossier in status {current.value} ({current.label}) cannot move to {new.value} ({new.label}); "
    )


@pytest.mark.parametrize(
    ("current", "new", "message"),
    [
        (
            S.RETURNED,
            S.PROCESSING,
            "a dossier in status 10 (returned) cannot move to 4 (processing); allowed: nothing",
        ),
        (
            S.FINISHED,
            S.PROCESSING,
            "a dossier in status 9 (finished) cannot move to 4 (processing); allowed: 10 (returned)",
        ),
        (
            S.REGISTERED_ONLINE,
            S.PROCESSING,
            "a dossier in status 1 (registered online) cannot move to 4 (processing); "
            "allowed: 2 (received), 3 (rejected), 7 (withdrawn)",
        ),
        (
            S.PROCESSING,
            S.REJECTED,
            "a dossier in status 4 (processing) cannot move to 3 (rejected); allowed: 0 (in transfer), "
            "5 (supplement requested), 6 (financial obligation), 7 (withdrawn), 8 (stopped), 9 (finished)",
        ),
        (
            S.WITHDRAWN,
            S.RECEIVED,
            "a dossier in status 7 (withdrawn) cannot move to 2 (received); allowed: nothing",
        ),
    ],
)
def test_illegal_transition_message(current: DossierStatus, new: DossierStatus, message: str) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        apply(current, new)
    assert str(exc.value) == message


def test_illegal_transition_is_a_value_error() -> None:
    assert issubclass(IllegalTransitionError, ValueError)


@pytest.mark.parametrize("new", sorted(INITIAL))
def test_initial_status(new: DossierStatus) -> None:
    assert can_move(None, new)
    assert apply(None, new) is new


@pytest.mark.parametrize("new", sorted(set(S) - INITIAL))
def test_a_dossier_cannot_start_elsewhere(new: DossierStatus) -> None:
    assert not can_move(None, new)
    with pytest.raises(IllegalTransitionError) as exc:
        apply(None, new)
    assert exc.value.current is None
    assert str(exc.value) == (
        f"a dossier starts as received (2) or registered online (1), not {new.value} ({new.label})"
    )


def test_terminal_states() -> None:
    assert {S.REJECTED, S.WITHDRAWN, S.STOPPED, S.RETURNED} == TERMINAL
    for s in S:
        assert s.terminal is (s in TERMINAL)
        # terminal exactly when nothing may follow
        assert s.terminal is (not TRANSITIONS[s])
    assert not S.FINISHED.terminal


def _reachable(start: frozenset[DossierStatus]) -> set[DossierStatus]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_status_is_reachable_from_the_start() -> None:
    assert _reachable(INITIAL) == set(S)


@pytest.mark.parametrize("status", sorted(set(S) - TERMINAL))
def test_every_open_status_can_still_end(status: DossierStatus) -> None:
    assert _reachable(frozenset({status})) & TERMINAL


@pytest.mark.parametrize(
    ("events", "current"),
    [
        ([2], S.RECEIVED),
        ([1], S.REGISTERED_ONLINE),
        ([2, 4, 9, 10], S.RETURNED),
        ([1, 2, 0, 4, 5, 4, 6, 4, 9], S.FINISHED),
        ([2, 0, 6, 0, 9, 10], S.RETURNED),  # land transfer: tax notice, then back to the land office
        ([1, 3], S.REJECTED),
        ([2, 5, 3], S.REJECTED),  # supplement not given in time
        ([2, 4, 7], S.WITHDRAWN),
        ([S.RECEIVED, S.PROCESSING, 8], S.STOPPED),  # enums and ints mixed
    ],
)
def test_derive(events: list[int], current: DossierStatus) -> None:
    assert derive(events) is current
    assert derive(iter(events)) is current


def test_derive_rejects_an_empty_history() -> None:
    with pytest.raises(ValueError) as exc:
        derive([])
    assert str(exc.value) == "a dossier has at least one event"


@pytest.mark.parametrize(
    ("events", "current", "new"),
    [
        ([2, 4, 2], S.PROCESSING, S.RECEIVED),
        ([2, 4, 9, 10, 4], S.RETURNED, S.PROCESSING),
        ([1, 4], S.REGISTERED_ONLINE, S.PROCESSING),
        ([2, 4, 9, 9], S.FINISHED, S.FINISHED),  # a repeated status is not a move
    ],
)
def test_derive_stops_at_an_illegal_event(events: list[int], current: DossierStatus, new: DossierStatus) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        derive(events)
    assert (exc.value.current, exc.value.new) == (current, new)


def test_derive_rejects_a_history_that_does_not_start_at_intake() -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        derive([4, 9])
    assert exc.value.current is None
    assert "not 4 (processing)" in str(exc.value)


def test_derive_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match=r"^11 is not a valid DossierStatus$"):
        derive([2, 11])
