"""Signed client tokens (JWT, RFC 7519): verified with PyJWT against keys of the configured issuers.

An issuer (`[issuer.<name>]` in clients.toml) publishes its public keys as a JWKS: a file in the
configuration folder, read with the rest of it, or a URL the gateway fetches with the app's session and
caches. An unknown key id makes the gateway fetch the set again (at most once per `jwks_min_interval`:
a flood of made-up key ids costs one fetch, not one each), and a set older than `jwks_refresh` is
fetched again on its next use; a failed fetch keeps the keys it had.

A token is accepted when its signature verifies with the issuer's key for its `kid` and an algorithm
the issuer is configured for (EdDSA, ES256, RS256: never `none` nor HMAC, whatever the header says),
its `iss` is the issuer's, its `aud` one of ours, `exp` has not passed and `nbf` has (with `leeway`
seconds of clock skew), and it does not live longer than `max_lifetime`. Which client it speaks for,
and with which scopes, `gateway.auth` decides from its claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import orjson
import structlog

from gateway.config.model import IssuerConf
from gateway.errors import Unauthenticated

log = structlog.get_logger("lienthong.tokens")
MAX_JWKS_BYTES = 1024 * 1024
BEARER = "bearer "


class TokenRefused(Unauthenticated):
    """401 with the reason, and RFC 6750's challenge."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {
            "WWW-Authenticate": f'Bearer realm="lienthong", error="invalid_token", error_description="{detail}"'
        }


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    issuer: str  # the issuer's name in clients.toml
    claims: Mapping[str, Any]


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if header and header[: len(BEARER)].lower() == BEARER:
        return header[len(BEARER) :].strip() or None
    return None


def key_set(data: Any, where: str) -> jwt.PyJWKSet:
    """A JWKS document as PyJWT reads it; ValueError naming `where` when it holds no usable key."""
    try:
        return jwt.PyJWKSet.from_dict(data)
    except (jwt.PyJWKSetError, jwt.PyJWKError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a JWKS with usable keys: {exc}") from None


@dataclass
class _Fetched:
    keys: jwt.PyJWKSet | None = None
    at: float = -1e18  # monotonic time of the last successful fetch
    tried: float = -1e18  # of the last attempt


class KeySets:
    """The issuers' keys: sets read from files (per configuration) and sets fetched from URLs (kept across
    reloads, by URL). One per app."""

    def __init__(self, http: aiohttp.ClientSession | None) -> None:
        self.http = http
        self._files: dict[int, tuple[Mapping[str, Any], dict[str, jwt.PyJWKSet]]] = {}
        self._urls: dict[str, _Fetched] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    def _file_set(self, name: str, jwks: Mapping[str, Any]) -> jwt.PyJWKSet:
        cached = self._files.get(id(jwks))
        if cached is None or cached[0] is not jwks:  # a reload brings a new mapping: parse it once
            cached = (jwks, {})
            self._files = {id(jwks): cached}
        sets = cached[1]
        if name not in sets:
            sets[name] = key_set(jwks[name], f"the JWKS of issuer {name!r}")
        return sets[name]

    async def key(self, name: str, issuer: IssuerConf, jwks: Mapping[str, Any], kid: str | None) -> jwt.PyJWK:
        if issuer.jwks_url is None:
            found = _pick(self._file_set(name, jwks), kid)
        else:
            found = await self._url_key(issuer, kid)
        if found is None:
            raise TokenRefused(
                f"issuer {name!r} has no key {kid!r}"
                if kid
                else f"issuer {name!r} has several keys: the token must name one (kid)"
            )
        return found

    async def _url_key(self, issuer: IssuerConf, kid: str | None) -> jwt.PyJWK | None:
        url = issuer.jwks_url
        assert url is not None
        state = self._urls.setdefault(url, _Fetched())
        now = time.monotonic()
        found = _pick(state.keys, kid) if state.keys is not None else None
        stale = now - state.at >= issuer.jwks_refresh
        if (found is None or stale) and now - state.tried >= issuer.jwks_min_interval:
            async with self._locks.setdefault(url, asyncio.Lock()):
                if state.tried < now:  # nobody fetched while this caller waited for the lock
                    await self.fetch(issuer)
            found = _pick(state.keys, kid) if state.keys is not None else None
        return found

    async def fetch(self, issuer: IssuerConf) -> None:
        """Fetch an issuer's JWKS now; on failure keep what was there (and say so in the log)."""
        url = issuer.jwks_url
        assert url is not None and self.http is not None
        state = self._urls.setdefault(url, _Fetched())
        state.tried = time.monotonic()
        started = time.perf_counter()
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5.0)) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                chunks: list[bytes] = []
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    chunks.append(chunk)
                    if sum(map(len, chunks)) > MAX_JWKS_BYTES:
                        raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
                body = b"".join(chunks)
            keys = key_set(orjson.loads(body), url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.warning("outbound", op="jwks.fetch", url=url, ms=ms, error=str(exc), kept=state.keys is not None)
            return
        self.fetches += 1
        state.keys, state.at = keys, time.monotonic()
        log.info(
            "outbound",
            op="jwks.fetch",
            url=url,
            keys=len(keys.keys),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


def _pick(keys: jwt.PyJWKSet | None, kid: str | None) -> jwt.PyJWK | None:
    if keys is None:
        return None
    if kid is None:
        return keys.keys[0] if len(keys.keys) == 1 else None
    return next((k for k in keys.keys if k.key_id == kid), None)


def _issuer_of(token: str, issuers: Mapping[str, IssuerConf]) -> tuple[str, IssuerConf, dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"the bearer token is not a JWT: {exc}") from None
    iss = unverified.get("iss")
    for name, conf in issuers.items():
        if conf.issuer == iss:
            return name, conf, header
    raise TokenRefused(f"the token's issuer {iss!r} is not trusted here")


async def verify(
    token: str, issuers: Mapping[str, IssuerConf], jwks: Mapping[str, Any], keys: KeySets
) -> VerifiedToken:
    """Check a bearer token; TokenRefused (401) saying why when it does not pass."""
    name, issuer, header = _issuer_of(token, issuers)
    alg = header.get("alg")
    if alg not in issuer.algorithms:
        raise TokenRefused(
            f"algorithm {alg!r} is not accepted for issuer {name!r} (accepted: {', '.join(issuer.algorithms)})"
        )
    kid = header.get("kid")
    key = await keys.key(name, issuer, jwks, kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=list(issuer.audience),
            issuer=issuer.issuer,
            leeway=issuer.leeway,
            options={"require": ["exp", "iss", "aud", issuer.client_claim]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRefused("the token is not valid yet (nbf)") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused(
            f"the token is not meant for this gateway (aud must be one of {', '.join(issuer.audience)})"
        ) from None
    except jwt.InvalidSignatureError:
        raise TokenRefused(f"the token's signature does not verify with issuer {name!r}'s key") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused(f"the token has no {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"the token is refused: {exc}") from None
    iat = claims.get("iat")
    life = claims["exp"] - (iat if isinstance(iat, int | float) else time.time())
    if life > issuer.max_lifetime + issuer.leeway:
        raise TokenRefused(f"the token lives {life:.0f} s; issuer {name!r} tokens may live {issuer.max_lifetime:.0f} s")
    return VerifiedToken(name, claims)


def scopes_of(token: VerifiedToken, issuer: IssuerConf) -> frozenset[str] | None:
    """The scopes a token carries (None: the issuer's tokens carry none, the client's own apply)."""
    if not issuer.scope_claim:
        return None
    raw = token.claims.get(issuer.scope_claim, "")
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()
