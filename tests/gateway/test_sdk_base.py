"""The base classes of gateway.sdk: a polled feed whose cursor moves only past what the store settled,
and callbacks read only once their signature holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from adapters.signing import HmacSigner, HmacVerifier
from contracts import DossierStatus
from gateway.errors import AgencyUnavailable, InvalidRequest, Unauthenticated
from gateway.sdk import (
    AgencyUpdate,
    CallbackConnector,
    CheckResult,
    ConnectorContext,
    Delivery,
    EndpointSettings,
    FeedPage,
    MemoryConnectorState,
    PollingConnector,
    PollOutcome,
    SubmitReceipt,
)

SECRET = "base-class-test-secret-0001"


def update(n: int) -> AgencyUpdate:
    return AgencyUpdate(event_id=f"e{n}", dossier_code=f"000.00.01.H26-251201-{n:04d}", status=DossierStatus.FINISHED)


class FlakyState(MemoryConnectorState):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def put(self, key: str, value: Any) -> None:
        if self.fail:
            raise OSError("store busy")
        await super().put(key, value)


class Feed(PollingConnector):
    """An agency's feed of 7 events, read 3 a page; `broken_at` makes a page fail."""

    cursor_key = "seq"
    initial_cursor = 0

    def __init__(self, ctx: ConnectorContext, events: int = 7) -> None:
        super().__init__(ctx)
        self.events = [update(n) for n in range(1, events + 1)]
        self.broken_at: int | None = None
        self.backwards = False
        self.reads: list[Any] = []

    async def fetch(self, cursor: Any) -> FeedPage:
        self.reads.append(cursor)
        if cursor == self.broken_at:
            raise AgencyUnavailable("feed down", agency="feed")
        if self.backwards:
            return FeedPage([], cursor - 1)
        page = self.events[cursor : cursor + 3]
        return FeedPage(page, cursor + len(page), more=cursor + len(page) < len(self.events))

    async def submit(self, dossier: Any, delivery: Delivery) -> SubmitReceipt:
        return SubmitReceipt()

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def context(http: aiohttp.ClientSession, state: MemoryConnectorState | None = None) -> ConnectorContext:
    settings = EndpointSettings(url="http://127.0.0.1:1")
    return ConnectorContext(
        "feed", "main", settings, http, "http://127.0.0.1:1/v1/callbacks/feed", state or MemoryConnectorState()
    )


async def test_the_cursor_moves_past_settled_pages_only_and_survives_a_restart(http: aiohttp.ClientSession) -> None:
    state = MemoryConnectorState()
    feed = Feed(context(http, state))
    await feed.start()
    got = await feed.poll()
    assert [u.event_id for u in got] == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
    # The store took the first page and part of the second: the cursor stops after the first.
    await feed.acknowledge(PollOutcome(frozenset({"e1", "e2", "e3", "e4"}), {"e5": "illegal-transition"}))
    assert feed.cursor == 3 and await state.get("seq") == 3
    restarted = Feed(context(http, state))
    await restarted.start()
    again = await restarted.poll()
    assert [u.event_id for u in again] == ["e4", "e5", "e6", "e7"]  # e6 never settled: its page comes back
    await restarted.acknowledge(PollOutcome(frozenset({"e4", "e6", "e7"}), {"e5": "illegal-transition"}))
    assert restarted.cursor == 7 and await state.get("seq") == 7
    assert await restarted.poll() == []


async def test_nothing_settled_moves_nothing(http: aiohttp.ClientSession) -> None:
    feed = Feed(context(http))
    await feed.start()
    first = await feed.poll()
    await feed.acknowledge(PollOutcome())
    assert feed.cursor == 0
    assert await feed.poll() == first


async def test_an_agency_error_ends_the_poll_with_what_was_read(http: aiohttp.ClientSession) -> None:
    feed = Feed(context(http))
    await feed.start()
    feed.broken_at = 3
    got = await feed.poll()
    assert [u.event_id for u in got] == ["e1", "e2", "e3"]
    await feed.acknowledge(PollOutcome(frozenset(u.event_id for u in got)))
    assert feed.cursor == 3


async def test_a_cursor_that_would_go_back_is_refused(http: aiohttp.ClientSession) -> None:
    feed = Feed(context(http))
    await feed.start()
    feed.cursor = 4
    feed.backwards = True
    assert await feed.poll() == []
    await feed.acknowledge(PollOutcome())
    assert feed.cursor == 4


async def test_a_cursor_the_store_could_not_write_stays_where_it_was(http: aiohttp.ClientSession) -> None:
    state = FlakyState()
    feed = Feed(context(http, state))
    await feed.start()
    got = await feed.poll()
    state.fail = True
    with pytest.raises(OSError):
        await feed.acknowledge(PollOutcome(frozenset(u.event_id for u in got)))
    assert feed.cursor == 0 and await state.get("seq") is None


class Calls(CallbackConnector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        self.verifier = HmacVerifier({"agency": SECRET})

    def updates_from_callback(self, data: Any) -> list[AgencyUpdate]:
        return [AgencyUpdate(event_id=data["id"], dossier_code=data["code"], status=DossierStatus(data["status"]))]

    async def submit(self, dossier: Any, delivery: Delivery) -> SubmitReceipt:
        return SubmitReceipt()

    async def check(self) -> CheckResult:
        return CheckResult(ok=True)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", **HmacSigner("agency", secret)("POST", "/v1/callbacks/feed", body)}


async def test_a_signed_callback_is_mapped(http: aiohttp.ClientSession) -> None:
    c = Calls(context(http))
    body = orjson.dumps({"id": "cb-1", "code": "000.00.01.H26-251201-0001", "status": 9})
    [got] = await c.handle_callback(body, signed(body))
    assert got.event_id == "cb-1" and got.status == DossierStatus.FINISHED


@pytest.mark.parametrize(
    ("body", "signed_body", "secret", "error", "message"),
    [
        (b'{"id": "cb-1"}', b'{"id": "cb-2"}', SECRET, Unauthenticated, "signature rejected"),
        (b'{"id": "cb-1"}', b'{"id": "cb-1"}', "another-secret-000000001", Unauthenticated, "signature"),
        (b'{"id": "cb-1"}', None, SECRET, Unauthenticated, "signature rejected"),
        (b"not json", b"not json", SECRET, InvalidRequest, "is not JSON"),
        (b'{"id": "cb-1"}', b'{"id": "cb-1"}', SECRET, InvalidRequest, "cannot be read: 'code'"),
        (
            b'{"id": "c", "code": "x", "status": 99}',
            b'{"id": "c", "code": "x", "status": 99}',
            SECRET,
            InvalidRequest,
            "99 is not a valid DossierStatus",
        ),
    ],
)
async def test_a_callback_that_is_not_genuine_or_not_readable_is_refused(
    http: aiohttp.ClientSession,
    body: bytes,
    signed_body: bytes | None,
    secret: str,
    error: type[Exception],
    message: str,
) -> None:
    c = Calls(context(http))
    # Signed now, not at collection: a signature carries its time and goes stale.
    headers = signed(signed_body, secret) if signed_body is not None else {"Content-Type": "application/json"}
    with pytest.raises(error, match=message):
        await c.handle_callback(body, headers)
