"""Integrity fields a sender may put on an upload: `Repr-Digest` and `Content-Digest` (RFC 9530, Structured
Field dictionaries parsed by http-sf) and the older `Digest` (RFC 3230) still sent by many clients.

Algorithms the gateway does not compute are ignored, as RFC 9530 says; a field that cannot be read is an
error. The gateway stores documents as sent (no content coding), so the representation and the content
digests are the same bytes' digests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import http_sf

# RFC 9530's registry names -> hashlib names of the algorithms the document store checks.
SF_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512"}
FIELDS = ("Repr-Digest", "Content-Digest", "Digest")


class BadDigestField(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def expected_digests(headers: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """algorithm -> (hex digest, the field that gave it) from every digest field present; BadDigestField
    for one that is malformed or for two fields that disagree on the same algorithm."""
    out: dict[str, tuple[str, str]] = {}
    for field in FIELDS:
        raw = headers.get(field)
        if raw is None:
            continue
        found = _structured(field, raw) if field != "Digest" else _legacy(raw)
        for algorithm, digest in found.items():
            if out.setdefault(algorithm, (digest, field))[0] != digest:
                raise BadDigestField(field, f"its {algorithm} disagrees with another digest field")
    return out


def _structured(field: str, raw: str) -> dict[str, str]:
    try:
        parsed = http_sf.parse(raw.encode("ascii"), tltype="dictionary")
    except (http_sf.StructuredFieldError, UnicodeEncodeError) as exc:
        raise BadDigestField(field, f"not a structured field dictionary ({exc}); send sha-256=:<base64>:") from None
    assert isinstance(parsed, dict)
    out: dict[str, str] = {}
    for name, member in parsed.items():
        algorithm = SF_ALGORITHMS.get(name)
        if algorithm is None:
            continue
        value = member[0] if isinstance(member, tuple) else member
        if not isinstance(value, bytes):
            raise BadDigestField(field, f"{name} must be a byte sequence, :<base64>:")
        out[algorithm] = _hex(field, name, value)
    return out


def _legacy(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.split(","):
        name, sep, value = item.strip().partition("=")
        algorithm = SF_ALGORITHMS.get(name.strip().lower())
        if not sep:
            raise BadDigestField("Digest", f"{item.strip()!r} is not algorithm=<base64>")
        if algorithm is None:
            continue
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadDigestField("Digest", f"{name} is not base64") from None
        out[algorithm] = _hex("Digest", name, decoded)
    return out


def _hex(field: str, name: str, value: bytes) -> str:
    want = {"sha256": 32, "sha512": 64}[SF_ALGORITHMS[name.lower()]]
    if len(value) != want:
        raise BadDigestField(field, f"a {name} digest is {want} bytes, not {len(value)}")
    return value.hex()
