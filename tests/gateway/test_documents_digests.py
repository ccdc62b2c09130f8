"""Integrity fields on uploads: RFC 9530 Repr-Digest and Content-Digest, and RFC 3230 Digest."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.documents.digests import BadDigestField, expected_digests

BODY = b"%PDF-1.7\n% a declaration\n"
SHA256 = hashlib.sha256(BODY)
SHA512 = hashlib.sha512(BODY)


def b64(h: object) -> str:
    return base64.b64encode(h.digest()).decode()  # type: ignore[attr-defined]


def test_repr_digest_with_two_algorithms_and_one_unknown() -> None:
    field = f"sha-256=:{b64(SHA256)}:, sha-512=:{b64(SHA512)}:, md5=:AAAA:"
    assert expected_digests({"Repr-Digest": field}) == {
        "sha256": (SHA256.hexdigest(), "Repr-Digest"),
        "sha512": (SHA512.hexdigest(), "Repr-Digest"),
    }


def test_content_digest_and_legacy_digest() -> None:
    assert expected_digests({"Content-Digest": f"sha-256=:{b64(SHA256)}:"}) == {
        "sha256": (SHA256.hexdigest(), "Content-Digest")
    }
    assert expected_digests({"Digest": f"SHA-256={b64(SHA256)},MD5=xyz"}) == {"sha256": (SHA256.hexdigest(), "Digest")}


def test_no_field_no_expectation() -> None:
    assert expected_digests({}) == {}


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Repr-Digest": f"sha-256={b64(SHA256)}"}, "Repr-Digest"),  # a token, not a byte sequence
        ({"Repr-Digest": "sha-256=:not base64!:"}, "Repr-Digest"),
        ({"Repr-Digest": "sha-256=:AAAA:"}, "Repr-Digest"),  # 3 bytes, not 32
        ({"Content-Digest": "sha-256"}, "Content-Digest"),  # a boolean
        ({"Digest": "sha-256"}, "Digest"),
        ({"Digest": "SHA-256=%%%"}, "Digest"),
        (
            {
                "Repr-Digest": f"sha-256=:{b64(SHA256)}:",
                "Digest": f"SHA-256={b64(hashlib.sha256(b'other'))}",
            },
            "Digest",
        ),
    ],
)
def test_unreadable_or_disagreeing_fields(headers: dict[str, str], field: str) -> None:
    with pytest.raises(BadDigestField) as exc:
        expected_digests(headers)
    assert exc.value.field == field
