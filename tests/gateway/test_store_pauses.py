"""Operators' pauses in the store: durable across a reopening, one per agency and endpoint, each audited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.store import SqliteStore
from gateway.store.base import AuditEntry, Pause


def entry(action: str, **detail: str) -> AuditEntry:
    return AuditEntry("operator", action, "allowed", "admin", detail=detail)


async def test_a_pause_is_kept_audited_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    await store.open()
    try:
        until = time.time() + 3600
        await store.pause(Pause("police", None, until, "nâng cấp", "operator", time.time()), entry("pause"))
        await store.pause(Pause("land", "hanoi", until, "di dời", "operator", time.time()), entry("pause"))
        await store.pause(Pause("police", None, until + 60, "kéo dài", "operator", time.time()), entry("pause"))
    finally:
        await store.close()
    store = SqliteStore(path)  # as after a restart
    await store.open()
    try:
        pauses = await store.pauses()
        assert [(p.agency, p.endpoint, p.until, p.reason) for p in pauses] == [
            ("land", "hanoi", until, "di dời"),
            ("police", None, until + 60, "kéo dài"),  # the second pause of police replaced the first
        ]
        assert [r.action for r in await store.audit_log()] == ["pause"] * 3
        assert (await store.verify_audit()).ok
    finally:
        await store.close()


async def test_resume_ends_an_agency_or_one_endpoint(store: SqliteStore) -> None:
    until = time.time() + 3600
    for endpoint in (None, "hanoi", "hcm"):
        await store.pause(Pause("land", endpoint, until, "bảo trì", "operator", time.time()), entry("pause"))
    ended = await store.resume("land", "hanoi", entry("resume", agency="land", endpoint="hanoi"))
    assert [(p.agency, p.endpoint) for p in ended] == [("land", "hanoi")]
    assert sorted(str(p.endpoint) for p in await store.pauses()) == ["None", "hcm"]
    assert len(await store.resume("land", None, entry("resume", agency="land"))) == 2
    assert await store.pauses() == []
    assert await store.resume("land", None, entry("resume", agency="land")) == []  # nothing to end: still audited
    records = await store.audit_log()
    assert [(r.action, r.detail.get("resumed")) for r in records[3:]] == [("resume", 1), ("resume", 2), ("resume", 0)]


async def test_a_pause_that_has_ended_holds_nothing(store: SqliteStore) -> None:
    await store.pause(Pause("tax", None, time.time() - 1, "đã qua", "operator", time.time() - 60), entry("pause"))
    assert await store.pauses() == []


async def test_a_bad_audit_entry_writes_no_pause(store: SqliteStore) -> None:
    bad = AuditEntry("operator", "pause", "maybe", "admin")
    with pytest.raises(ValueError, match="allowed"):
        await store.pause(Pause("tax", None, time.time() + 60, "x", "operator", time.time()), bad)
    assert await store.pauses() == []
