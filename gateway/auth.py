"""Clients and API keys. Keys are random and long, so one SHA-256 suffices to store them safely."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gateway.config.model import ClientConf, Scope
from gateway.errors import Forbidden, Unauthenticated

API_KEY_HEADER = "X-Api-Key"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lt_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    conf: ClientConf

    def require(self, scope: Scope) -> None:
        if scope not in self.conf.scopes:
            raise Forbidden(f"client {self.client_id!r} lacks the {scope!r} scope")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.conf.scopes


class Authenticator:
    def __init__(self, clients: dict[str, ClientConf]) -> None:
        self._by_hash = {c.api_key_sha256: Principal(cid, c) for cid, c in clients.items()}

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Unauthenticated(f"send your API key in the {API_KEY_HEADER} header")
        digest = hash_key(header)
        principal = self._by_hash.get(digest)
        # compare_digest keeps the final check constant-time even though the dict lookup is not
        if principal is None or not hmac.compare_digest(principal.conf.api_key_sha256, digest):
            raise Unauthenticated("unknown API key")
        return principal
