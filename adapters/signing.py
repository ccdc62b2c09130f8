"""Request signing in the style of Singapore's APEX gateway (L1): HMAC-SHA256 over the request.

The signed string is `METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256(BODY)`; the verifier rejects a stale
timestamp or a nonce it has already seen, so a captured request cannot be replayed.

Where the nonce is remembered depends on the caller. Inside `collect_nonces()` (the gateway opens one
around each agency callback), `verify` only hands the nonce over: the gateway records it in the same
store transaction that applies the callback, so a callback whose apply failed can be sent again, and a
replay is refused across restarts. Elsewhere (a simulator checking the gateway's requests), the verifier
remembers recent nonces in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

H_KEY_ID = "X-Lt-Key-Id"
H_TIMESTAMP = "X-Lt-Timestamp"
H_NONCE = "X-Lt-Nonce"
H_BODY_SHA256 = "X-Lt-Content-SHA256"
H_SIGNATURE = "X-Lt-Signature"


class SignatureError(ValueError):
    pass


_collected: ContextVar[list[str] | None] = ContextVar("lienthong_collected_nonces", default=None)


@contextmanager
def collect_nonces() -> Iterator[list[str]]:
    """Within the block (in this task), verified requests' nonces ("<key id>:<nonce>") are appended to the
    list it yields instead of being remembered by their verifier: the caller records them durably, with
    the request's effects, and refuses one recorded before."""
    nonces: list[str] = []
    token = _collected.set(nonces)
    try:
        yield nonces
    finally:
        _collected.reset(token)


def hand_over_nonce(nonce: str) -> bool:
    """For a plugin with a signing scheme of its own: give its request's unique value to the gateway to
    record with the callback's effects. False outside `collect_nonces()` (the caller must remember it)."""
    nonces = _collected.get()
    if nonces is None:
        return False
    nonces.append(nonce)
    return True


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body_sha256: str) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, body_sha256)).encode()


class HmacSigner:
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self._secret = secret.encode()

    def __call__(self, method: str, path: str, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        nonce = secrets.token_hex(12)
        digest = hashlib.sha256(body).hexdigest()
        sig = hmac.digest(self._secret, string_to_sign(method, path, ts, nonce, digest), "sha256").hex()
        return {H_KEY_ID: self.key_id, H_TIMESTAMP: ts, H_NONCE: nonce, H_BODY_SHA256: digest, H_SIGNATURE: sig}


class HmacVerifier:
    """Checks signatures for a set of keys; refuses replays (see the module's docstring for where the
    nonces are remembered)."""

    def __init__(self, keys: Mapping[str, str], *, max_skew: int = 300, nonce_memory: int = 100_000) -> None:
        self._keys = {k: v.encode() for k, v in keys.items()}
        self.max_skew = max_skew
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._nonce_memory = nonce_memory

    def verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> str:
        """Return the key id that signed the request; raise SignatureError otherwise."""
        try:
            key_id, ts, nonce = headers[H_KEY_ID], headers[H_TIMESTAMP], headers[H_NONCE]
            digest, sig = headers[H_BODY_SHA256], headers[H_SIGNATURE]
        except KeyError as exc:
            raise SignatureError(f"missing signature header {exc.args[0]}") from None
        secret = self._keys.get(key_id)
        if secret is None:
            raise SignatureError("unknown key id")
        if not ts.isdigit() or abs(time.time() - int(ts)) > self.max_skew:
            raise SignatureError("timestamp missing or outside the allowed clock skew")
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), digest):
            raise SignatureError("body does not match its digest")
        expected = hmac.new(secret, string_to_sign(method, path, ts, nonce, digest), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise SignatureError("bad signature")
        if hand_over_nonce(f"{key_id}:{nonce}"):
            return key_id
        if nonce in self._nonces:
            raise SignatureError("nonce already used")
        self._nonces[nonce] = None
        if len(self._nonces) > self._nonce_memory:
            self._nonces.popitem(last=False)
        return key_id
