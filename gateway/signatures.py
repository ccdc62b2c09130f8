"""Detached signatures of the documents the gateway hands out: intake receipts and agencies' results.

A signature is a compact JWS (EdDSA, Ed25519, RFC 8037) whose payload is the document's metadata with its
SHA-256; the document travels apart from it. Anyone holding the document, its signature and the gateway's
public key checks both offline: the JWS against the key named by its `kid` (the key's RFC 7638 thumbprint),
then the document's hash and size against the payload. PyJWT does the JWS; this module only says what is
signed and how a verdict is reached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.config.model import SigningSettings
from gateway.store.seals import private_key, public_key

TYPE = "lienthong-signature+jwt"
ALGORITHM = "EdDSA"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# A signature is a few hundred bytes; anything far larger is not one of ours (and is not parsed).
MAX_SIGNATURE = 8192


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the key's JWK: its `kid`, the same wherever it is computed."""
    members = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public(key))})
    return b64url(hashlib.sha256(members).digest())


def jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": thumbprint(key), "use": "sig"}


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    kid: str = ""


@dataclass(frozen=True)
class Verifier:
    """The public keys a signature may be checked against (the current one, and those before a rotation)."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def of(cls, *keys: Ed25519PublicKey) -> Verifier:
        return cls({thumbprint(k): k for k in keys})

    @classmethod
    def from_jwks(cls, jwks: dict[str, Any]) -> Verifier:
        """The keys of a JWKS such as GET /v1/verify/keys serves (its OKP Ed25519 keys)."""
        return cls.of(*(_okp(entry) for entry in jwks.get("keys", [])))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk(k) for k in self.keys.values()]}

    def check(self, signature: str, *, document: bytes | None = None, sha256: str | None = None) -> Verdict:
        """The signature's verdict, and against the document (or its SHA-256, hex) when given."""
        signature = signature.strip()
        if len(signature) > MAX_SIGNATURE:
            return Verdict(False, "not a signature: too long")
        try:
            header = jwt.get_unverified_header(signature)
        except jwt.PyJWTError:
            return Verdict(False, "not a compact JWS")
        kid = str(header.get("kid", ""))
        if header.get("alg") != ALGORITHM or header.get("typ") != TYPE:
            return Verdict(False, f"not a Lienthong signature (alg {header.get('alg')}, typ {header.get('typ')})")
        key = self.keys.get(kid)
        if key is None:
            return Verdict(False, f"signed with a key this verifier does not hold (kid {kid})")
        try:
            decoded = jwt.api_jws.decode_complete(signature, key, algorithms=[ALGORITHM])
            claims = orjson.loads(decoded["payload"])
        except jwt.InvalidSignatureError:
            return Verdict(False, "the signature does not verify: the signed metadata was altered", kid=kid)
        except (jwt.PyJWTError, orjson.JSONDecodeError):
            return Verdict(False, "not a well-formed signature", kid=kid)
        if not isinstance(claims, dict) or not SHA256_HEX.match(str(claims.get("sha256", ""))):
            return Verdict(False, "the signed metadata names no document hash", kid=kid)
        if document is not None:
            if hashlib.sha256(document).hexdigest() != claims["sha256"] or len(document) != claims.get("size"):
                return Verdict(False, "the document is not the one signed: its SHA-256 differs", claims, kid)
        elif sha256 is not None and not hmac.compare_digest(sha256.lower(), claims["sha256"]):
            return Verdict(False, "the document is not the one signed: its SHA-256 differs", claims, kid)
        return Verdict(True, "", claims, kid)


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey
    verifier: Verifier

    @property
    def kid(self) -> str:
        return thumbprint(self.key.public_key())

    def sign(self, document: bytes, metadata: dict[str, Any]) -> str:
        """A detached signature of `document`: a JWS over its SHA-256, size and `metadata` (deterministic:
        Ed25519 signs the same bytes the same way, so a document asked for twice has one signature)."""
        return self.sign_digest(hashlib.sha256(document).hexdigest(), len(document), metadata)

    def sign_digest(self, sha256: str, size: int, metadata: dict[str, Any]) -> str:
        """The same, for a document known by its SHA-256 and size (a result kept at the agency's URL)."""
        claims = {**metadata, "sha256": sha256, "size": size}
        payload = orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)
        return jwt.api_jws.encode(
            payload, self.key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": TYPE}, sort_headers=True
        )

    def status_token(self, dossier_code: str) -> str:
        """What a public status link carries besides the code, so that codes cannot be walked through: an
        HMAC of the code under a secret derived from the signing key (22 characters, 128 bits)."""
        secret = hashlib.sha256(b"lienthong-status-link\x00" + _raw_private(self.key)).digest()
        return b64url(hmac.new(secret, dossier_code.encode(), hashlib.sha256).digest()[:16])


def _okp(entry: dict[str, Any]) -> Ed25519PublicKey:
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        raise ValueError(f"not an Ed25519 key: {entry.get('kty')} {entry.get('crv')}")
    x = str(entry.get("x", ""))
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _in_conf(base: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else base / path


def _public_keys(texts: tuple[str, ...] | list[str], base: Path | None) -> list[Ed25519PublicKey]:
    """Public keys given as files (PEM, base64, or a JWKS) or inline base64 (blocking: reads files)."""
    out: list[Ed25519PublicKey] = []
    for text in texts:
        path = _in_conf(base, text) if base is not None else Path(text)
        data = path.read_bytes() if path.is_file() else text.encode()
        if data.lstrip().startswith(b"{"):
            out.extend(_okp(entry) for entry in orjson.loads(data).get("keys", []))
        else:
            out.append(public_key(data).public)
    return out


def load_signer(settings: SigningSettings, base: Path) -> Signer | None:
    """The configured signing key (blocking: reads files); None when none is configured."""
    if settings.key:
        key = private_key(settings.key.encode()).private
    elif settings.key_file:
        key = private_key(_in_conf(base, settings.key_file).read_bytes()).private
    else:
        return None
    earlier = _public_keys(settings.earlier_public_keys, base)
    return Signer(key, Verifier.of(key.public_key(), *earlier))


def load_verifier(settings: SigningSettings, base: Path, given: list[str] | None = None) -> Verifier | None:
    """The keys to verify with: `given` (files or base64), else the configured key and earlier ones."""
    if given:
        return Verifier.of(*_public_keys(given, None))
    signer = load_signer(settings, base)
    if signer is not None:
        return signer.verifier
    if settings.public_key_file:
        return Verifier.of(*_public_keys([settings.public_key_file, *settings.earlier_public_keys], base))
    return None
