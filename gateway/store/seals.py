"""The audit key (Ed25519) and the seal the gateway puts on each batch of audit records it writes.

A hash chain shows a record changed in place, but anyone with the database can append a record that
follows the last one, or rewrite a tail and recompute its hashes: the chain needs no secret. So the
writer signs, with the audit key, the last record of every batch it commits: "records `sealed_from` to
`seq`, ending with hash H, are mine". The seals tile the log: each batch's seal starts where the
previous one ended. A record nobody sealed (appended by someone else) leaves a gap, a rewritten record
breaks the hash its seal signed, and only the public key is needed to check either (`checkpoints.py`).
Cost: one Ed25519 signature per commit, not per record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SEAL_CONTEXT = b"lienthong audit seal v1\n"  # a seal's signature can never pass for a checkpoint's


def seal_message(sealed_from: int, seq: int, digest: str) -> bytes:
    return SEAL_CONTEXT + f"{sealed_from}\n{seq}\n{digest}".encode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    """The public key as one line of base64 (its 32 raw bytes), to paste into a verifier's configuration."""
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True)
class AuditVerifier:
    """The public half: all that `lienthong audit verify` needs. `earlier` holds the public keys of audit
    keys used before a rotation: seals and checkpoints they signed verify too."""

    public: Ed25519PublicKey
    earlier: tuple[Ed25519PublicKey, ...] = ()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(key_id(k) for k in (self.public, *self.earlier))

    def with_earlier(self, *others: AuditVerifier) -> AuditVerifier:
        return AuditVerifier(self.public, (*self.earlier, *(o.public for o in others)))

    def valid(self, signature: str, message: bytes) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        for key in (self.public, *self.earlier):
            try:
                key.verify(raw, message)
            except InvalidSignature:
                continue
            return True
        return False

    def seal_valid(self, signature: str, sealed_from: int, seq: int, digest: str) -> bool:
        return self.valid(signature, seal_message(sealed_from, seq, digest))


@dataclass(frozen=True)
class AuditKey:
    """The private half, held by the gateway (and by the operator's `audit acknowledge`)."""

    private: Ed25519PrivateKey

    @property
    def verifier(self) -> AuditVerifier:
        return AuditVerifier(self.private.public_key())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()

    def seal(self, sealed_from: int, seq: int, digest: str) -> str:
        return self.sign(seal_message(sealed_from, seq, digest))

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def private_key(data: bytes) -> AuditKey:
    """A PEM (PKCS#8) Ed25519 private key, or the base64 of its 32-byte seed; ValueError otherwise."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(text, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit key must be an Ed25519 key")
        return AuditKey(key)
    try:
        return AuditKey(Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True)))
    except (binascii.Error, ValueError):
        raise ValueError("not an Ed25519 private key (PEM, or base64 of its 32 bytes)") from None


def public_key(data: bytes) -> AuditVerifier:
    """A PEM Ed25519 public key, or the base64 of its 32 bytes; ValueError otherwise."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the audit public key must be an Ed25519 key")
        return AuditVerifier(key)
    try:
        return AuditVerifier(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
    except (binascii.Error, ValueError):
        raise ValueError("not an Ed25519 public key (PEM, or base64 of its 32 bytes)") from None


def new_key() -> AuditKey:
    return AuditKey(Ed25519PrivateKey.generate())
