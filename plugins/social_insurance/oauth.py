"""OAuth2 client credentials (RFC 6749 §4.4): one cached token per connector, refreshed before it expires.

The token is renewed once its remaining life drops below min(margin, ratio x lifetime): a one-hour token
30 s early, a two-second test token 0.2 s early. One refresh at a time: callers waiting on the lock find
the token the first one fetched.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

from gateway.sdk import AgencyRejected, MalformedAnswer, RestRequest, RestResponse, TransientAgencyError, Transport


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: float  # on the connector's monotonic clock
    refresh_at: float


def basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: both are form-encoded before they are joined and base64-encoded.
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class ClientCredentials:
    def __init__(
        self,
        transport: Transport[RestRequest, RestResponse],
        path: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        margin: float = 30.0,
        ratio: float = 0.1,
        default_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.path = path
        self.scope = scope
        self.margin = margin
        self.ratio = ratio
        self.default_ttl = default_ttl
        self.clock = clock
        self._authorization = basic_auth(client_id, client_secret)
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self.fetched = 0

    async def token(self) -> Token:
        token = self._token
        if token is not None and self.clock() < token.refresh_at:
            return token
        async with self._lock:
            token = self._token  # another caller may have refreshed it while this one waited
            if token is not None and self.clock() < token.refresh_at:
                return token
            try:
                self._token = fresh = await self._fetch()
            except TransientAgencyError:
                if token is not None and self.clock() < token.expires_at:
                    return token  # the token endpoint hiccups, but the old token still works: use it
                raise
            return fresh

    def invalidate(self, token: Token) -> None:
        """Forget a token the agency refused; a newer one another caller fetched meanwhile stays."""
        if self._token is token:
            self._token = None

    async def _fetch(self) -> Token:
        form = {"grant_type": "client_credentials"} | ({"scope": self.scope} if self.scope else {})
        started = self.clock()  # the lifetime counts from the request: the answer may be slow
        headers = {"Authorization": self._authorization, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            resp = await self.transport.send(
                RestRequest("POST", self.path, body=urlencode(form).encode(), headers=headers)
            )
        except AgencyRejected as exc:
            agency = self.transport.agency
            raise AgencyRejected(
                f"{agency}: the token endpoint refused the client credentials: {exc.message}",
                agency=agency,
                status=exc.status,
            ) from exc
        value, ttl = self._read(resp.json())
        self.fetched += 1
        early = min(self.margin, self.ratio * ttl)
        return Token(value=value, expires_at=started + ttl, refresh_at=started + ttl - early)

    def _read(self, body: object) -> tuple[str, float]:
        agency = self.transport.agency
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise MalformedAnswer(f"{agency}: token answer has no access_token", agency=agency)
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise MalformedAnswer(f"{agency}: token type {body['token_type']!r} is not Bearer", agency=agency)
        expires_in = body.get("expires_in", self.default_ttl)
        try:
            ttl = float(expires_in)
        except (TypeError, ValueError):
            raise MalformedAnswer(f"{agency}: expires_in {expires_in!r} is not a number", agency=agency) from None
        if not math.isfinite(ttl) or ttl < 0:
            raise MalformedAnswer(f"{agency}: expires_in {expires_in!r} is not a lifetime", agency=agency)
        return body["access_token"], ttl
