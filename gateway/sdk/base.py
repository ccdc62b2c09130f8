"""Base classes for the two common shapes of agency: one the gateway polls, one that calls back.

A connector may implement `poll`/`acknowledge` or `handle_callback` itself (the built-in tax and land
connectors do); these classes hold the parts every such connector gets wrong alike: a cursor that moves
before the store has the update, a callback read before its signature is checked.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from adapters.signing import HmacVerifier, SignatureError
from gateway.connector import AgencyUpdate, Connector, ConnectorContext, PollOutcome
from gateway.errors import AgencyError, InvalidRequest, MalformedAnswer, Unauthenticated

log = structlog.get_logger("lienthong.sdk")


# -- polled agencies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPage:
    """One page of an agency's feed of events, read from a cursor.

    `next_cursor`: where the page after this one starts (a JSON value: a sequence number, a timestamp,
    an opaque token); `more`: the agency has more right away.
    """

    updates: Sequence[AgencyUpdate]
    next_cursor: Any
    more: bool = False


class PollingConnector(Connector):
    """An agency that never calls back and keeps a feed of events: implement `fetch(cursor)`.

    The gateway keeps the cursor, in its store (`ctx.state`, key `cursor_key`): `poll` reads pages from
    it, and `acknowledge` moves it past a page only once the store has settled every update of that
    page, writing it before it moves. A page with an update the store did not take is read again on the
    next poll (the store drops the updates it already has, by event id): nothing is lost, nothing applied
    twice. An agency error during a poll is logged and ends that poll; what was read before it is returned.
    A subclass that overrides `start` calls `await super().start()`.
    """

    cursor_key = "cursor"
    initial_cursor: Any = None  # where a new gateway starts reading (None: the agency's beginning)
    max_pages = 10  # pages read in one poll; the rest waits for the next one

    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        self.cursor: Any = self.initial_cursor
        self._pages: list[FeedPage] = []

    async def start(self) -> None:
        stored = await self.ctx.state.get(self.cursor_key)
        if stored is not None:
            self.cursor = stored

    @abstractmethod
    async def fetch(self, cursor: Any) -> FeedPage:
        """The page of events after `cursor`, oldest first. Raise AgencyError subclasses when it fails."""

    def moves_forward(self, old: Any, new: Any) -> bool:
        """Whether the agency's `new` cursor may follow `old`: never backwards for numbers. Override for
        cursors with another order (a timestamp in text)."""
        if isinstance(old, int | float) and isinstance(new, int | float):
            return new >= old
        return new is not None

    async def poll(self) -> list[AgencyUpdate]:
        pages: list[FeedPage] = []
        cursor = self.cursor
        for _ in range(self.max_pages):
            try:
                page = await self.fetch(cursor)
            except AgencyError as exc:
                log.warning("poll_failed", agency=self.ctx.agency, error=f"{type(exc).__name__}: {exc}")
                break
            if not self.moves_forward(cursor, page.next_cursor):
                # Never trust an answer that would move the cursor back: read again next time.
                log.error(
                    "poll_cursor_refused",
                    agency=self.ctx.agency,
                    cursor=repr(cursor)[:60],
                    next_cursor=repr(page.next_cursor)[:60],
                )
                break
            pages.append(page)
            if not page.more or page.next_cursor == cursor:
                break
            cursor = page.next_cursor
        self._pages = pages
        return [update for page in pages for update in page.updates]

    async def acknowledge(self, outcome: PollOutcome) -> None:
        target = self.cursor
        for page in self._pages:
            if not all(outcome.settled(u.event_id) for u in page.updates):
                break  # this page is read again, and every later one
            target = page.next_cursor
        self._pages = []
        if target != self.cursor:
            await self.ctx.state.put(self.cursor_key, target)  # durable first: a failure leaves it unmoved
            self.cursor = target


# -- agencies that call back ---------------------------------------------------------------------------


class CallbackConnector(Connector):
    """An agency that posts its news to `POST /v1/callbacks/{agency}`, signed: implement
    `updates_from_callback(data)`, and set `self.verifier` (the agency's HMAC keys) in `__init__`.

    `handle_callback` checks the signature over the exact bytes first (401 otherwise), then reads the
    body as JSON (400 otherwise), then maps it; a body it cannot map is a 400 naming why. The gateway
    checks the caller's API key before, and stores the updates before it answers 200.
    """

    verifier: HmacVerifier

    @property
    def callback_path(self) -> str:
        """The path the agency signs: the gateway's callback route for this agency."""
        return f"/v1/callbacks/{self.ctx.agency}"

    def verify_callback(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            self.verifier.verify("POST", self.callback_path, headers, body)
        except SignatureError as exc:
            raise Unauthenticated(f"{self.ctx.agency} callback signature rejected: {exc}") from None

    @abstractmethod
    def updates_from_callback(self, data: Any) -> list[AgencyUpdate]:
        """The canonical updates a verified callback body (parsed JSON) carries. Raise ValueError,
        KeyError or MalformedAnswer for a body that does not say what it must."""

    async def handle_callback(self, body: bytes, headers: Mapping[str, str]) -> list[AgencyUpdate]:
        self.verify_callback(body, headers)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest(f"{self.ctx.agency} callback is not JSON") from None
        try:
            return self.updates_from_callback(data)
        except (ValueError, KeyError, TypeError, MalformedAnswer) as exc:
            reason = "; ".join(str(e["msg"]) for e in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
            raise InvalidRequest(f"{self.ctx.agency} callback cannot be read: {reason}") from None
