"""Clients and their credentials: API keys, client certificates, signed tokens.

Keys are random and long, so one SHA-256 suffices to store them safely; a client may have several, each
with its expiry, so a new key can be handed out before the old one stops working. A client certificate
(verified against the configured CAs during the TLS handshake) names a client by its fingerprint or
its subject, alone or together with a key or token; `require_certificate` makes it compulsory. A token
(`gateway.tokens`) names a client through a claim, for the issuers the client lists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.config.model import ClientConf, IssuerConf, Scope
from gateway.errors import Forbidden, Unauthenticated
from gateway.tls import PeerCertificate, parse_subject
from gateway.tokens import TokenRefused, VerifiedToken, scopes_of

API_KEY_HEADER = "X-Api-Key"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lt_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    conf: ClientConf
    via: str = "api-key"  # "api-key", "certificate", "token:<issuer>", alone or joined by "+"
    granted: frozenset[Scope] | None = None  # a token's scopes narrow the client's; None: the client's

    @property
    def scopes(self) -> frozenset[Scope]:
        return self.conf.scopes if self.granted is None else self.conf.scopes & self.granted

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            if scope in self.conf.scopes:
                raise Forbidden(f"client {self.client_id!r}: this token does not grant the {scope!r} scope")
            raise Forbidden(f"client {self.client_id!r} lacks the {scope!r} scope")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: at most one API key or token, and the connection's client certificate."""

    api_key: str | None = None
    token: VerifiedToken | None = None
    peer: PeerCertificate | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class _Key:
    client_id: str
    expires: datetime | None
    sha256: str


class Authenticator:
    """Built from one configuration and replaced whole on reload."""

    def __init__(self, clients: dict[str, ClientConf], issuers: dict[str, IssuerConf] | None = None) -> None:
        self.clients = clients
        self.issuers = issuers or {}
        self._keys: dict[str, _Key] = {}
        self._fingerprints: dict[str, str] = {}
        self._subjects: list[tuple[object, str]] = []
        self._token_subjects: dict[tuple[str, str], str] = {}
        for cid, c in clients.items():
            for k in c.key_hashes():
                self._keys[k.sha256] = _Key(cid, k.expires, k.sha256)
            if c.certificate is not None:
                for fp in c.certificate.sha256:
                    self._fingerprints[fp] = cid
                if c.certificate.subject is not None:
                    self._subjects.append((parse_subject(c.certificate.subject), cid))
            for issuer in c.token_issuers:
                self._token_subjects[(issuer, c.token_subject or cid)] = cid

    def _expected(self) -> str:
        ways = [f"your API key in the {API_KEY_HEADER} header"]
        if self.issuers:
            ways.append("a bearer token")
        if self._fingerprints or self._subjects:
            ways.append("a client certificate")
        return "send " + (", ".join(ways[:-1]) + " or " + ways[-1] if len(ways) > 1 else ways[0])

    def by_certificate(self, peer: PeerCertificate) -> str | None:
        cid = self._fingerprints.get(peer.sha256)
        if cid is None:
            cid = next((c for subject, c in self._subjects if subject == peer.subject), None)
        return cid

    def _by_key(self, key: str, at: datetime) -> str:
        digest = hash_key(key)
        found = self._keys.get(digest)
        # compare_digest keeps the final check constant-time even though the dict lookup is not
        if found is None or not hmac.compare_digest(found.sha256, digest):
            raise Unauthenticated("unknown API key")
        if found.expires is not None and at >= found.expires:
            raise Unauthenticated(f"this API key of client {found.client_id!r} expired at {found.expires.isoformat()}")
        return found.client_id

    def _by_token(self, token: VerifiedToken) -> str:
        issuer = self.issuers[token.issuer]
        subject = token.claims.get(issuer.client_claim)
        cid = self._token_subjects.get((token.issuer, str(subject)))
        if cid is None:
            raise TokenRefused(
                f"no client accepts tokens of issuer {token.issuer!r} for {issuer.client_claim} {subject!r}"
            )
        return cid

    def authenticate(self, creds: Credentials) -> Principal:
        if creds.api_key and creds.token:
            raise Unauthenticated(f"send either the {API_KEY_HEADER} header or a bearer token, not both")
        cert_client = self.by_certificate(creds.peer) if creds.peer is not None else None
        via: list[str] = []
        cid: str | None = None
        if creds.api_key:
            cid, via = self._by_key(creds.api_key, creds.at), ["api-key"]
        elif creds.token is not None:
            cid, via = self._by_token(creds.token), [f"token:{creds.token.issuer}"]
        if cid is not None and cert_client is not None and cert_client != cid:
            raise Unauthenticated(f"the credential names client {cid!r} but the certificate client {cert_client!r}")
        if cert_client is not None:
            cid = cert_client
            via.append("certificate")
        if cid is None:
            raise Unauthenticated(self._expected())
        conf = self.clients[cid]
        if conf.require_certificate and cert_client != cid:
            raise Unauthenticated(f"client {cid!r} must connect with its client certificate")
        granted = None
        if creds.token is not None:
            scopes = scopes_of(creds.token, self.issuers[creds.token.issuer])
            granted = None if scopes is None else frozenset(s for s in conf.scopes if s in scopes)
        return Principal(cid, conf, "+".join(via), granted)
