import time
import uuid

from gateway import ids


def test_an_id_is_a_version_7_uuid_carrying_the_time_it_was_made():
    before = time.time_ns() // 1_000_000
    made = ids.new_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    assert uuid.UUID(str(made)) == made  # it survives the text form the store keeps


def test_ids_sort_in_the_order_they_were_made_and_never_repeat():
    made = [ids.new_id() for _ in range(20_000)]  # many in one millisecond
    assert sorted(made) == made
    assert sorted(str(m) for m in made) == [str(m) for m in made]  # the stored text sorts the same
    assert len(set(made)) == len(made)


def test_ids_keep_their_order_when_the_clock_goes_back(monkeypatch):
    first = ids.new_id()
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_000_000_000)  # 1970
    second = ids.new_id()
    assert second > first
    assert second.version == 7


def test_the_random_part_differs_between_ids():
    tails = {ids.new_id().int & ((1 << 62) - 1) for _ in range(1_000)}
    assert len(tails) == 1_000
