"""HMAC request signing: what is signed, and every way a verifier refuses a request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from types import SimpleNamespace

import pytest

from adapters import signing
from adapters.signing import HmacSigner, HmacVerifier, SignatureError, collect_nonces, hand_over_nonce, string_to_sign

SECRET = "a-shared-secret-of-some-length"
BODY = b'{"maHoSo": "000.00.01.H26-261120-0001"}'


def verifier(**kw: int) -> HmacVerifier:
    return HmacVerifier({"gw": SECRET}, **kw)


def test_string_to_sign() -> None:
    assert string_to_sign("post", "/a/b?x=1", "1700000000", "n1", "d" * 64) == (
        b"POST\n/a/b?x=1\n1700000000\nn1\n" + b"d" * 64
    )


def test_signature_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: 1_700_000_000.7))
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    digest = hashlib.sha256(BODY).hexdigest()
    nonce = headers["X-Lt-Nonce"]
    assert len(nonce) == 24 and int(nonce, 16) >= 0
    expected = hmac.new(SECRET.encode(), f"POST\n/api\n1700000000\n{nonce}\n{digest}".encode(), hashlib.sha256)
    assert headers == {
        "X-Lt-Key-Id": "gw",
        "X-Lt-Timestamp": "1700000000",
        "X-Lt-Nonce": nonce,
        "X-Lt-Content-SHA256": digest,
        "X-Lt-Signature": expected.hexdigest(),
    }


def test_round_trip_and_fresh_nonces() -> None:
    sign = HmacSigner("gw", SECRET)
    v = verifier()
    first, second = sign("POST", "/api", BODY), sign("POST", "/api", BODY)
    assert first["X-Lt-Nonce"] != second["X-Lt-Nonce"]
    assert v.verify("POST", "/api", first, BODY) == "gw"
    assert v.verify("post", "/api", second, BODY) == "gw"  # the method is compared upper-case


def test_empty_body() -> None:
    headers = HmacSigner("gw", SECRET)("GET", "/health", b"")
    assert verifier().verify("GET", "/health", headers, b"") == "gw"


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "/api", BODY + b" ", "body does not match its digest"),
        ("POST", "/other", BODY, "bad signature"),
        ("PUT", "/api", BODY, "bad signature"),
    ],
)
def test_any_change_breaks_the_signature(method: str, path: str, body: bytes, reason: str) -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    with pytest.raises(SignatureError, match=reason):
        verifier().verify(method, path, headers, body)


def test_digest_header_replaced_with_the_tampered_bodys() -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    tampered = BODY.replace(b"0001", b"0002")
    headers["X-Lt-Content-SHA256"] = hashlib.sha256(tampered).hexdigest()
    with pytest.raises(SignatureError, match="bad signature"):
        verifier().verify("POST", "/api", headers, tampered)


def test_wrong_secret_and_unknown_key() -> None:
    with pytest.raises(SignatureError, match="bad signature"):
        verifier().verify("POST", "/api", HmacSigner("gw", "another-secret")("POST", "/api", BODY), BODY)
    with pytest.raises(SignatureError, match="unknown key id"):
        verifier().verify("POST", "/api", HmacSigner("other", SECRET)("POST", "/api", BODY), BODY)


@pytest.mark.parametrize(
    "header", ["X-Lt-Key-Id", "X-Lt-Timestamp", "X-Lt-Nonce", "X-Lt-Content-SHA256", "X-Lt-Signature"]
)
def test_missing_header(header: str) -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    del headers[header]
    with pytest.raises(SignatureError, match=f"missing signature header {header}"):
        verifier().verify("POST", "/api", headers, BODY)


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp(monkeypatch: pytest.MonkeyPatch, skew: int) -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    now = int(headers["X-Lt-Timestamp"])
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: now - skew))
    with pytest.raises(SignatureError, match="outside the allowed clock skew"):
        verifier().verify("POST", "/api", headers, BODY)
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: now - skew + (1 if skew > 0 else -1)))
    assert verifier().verify("POST", "/api", headers, BODY) == "gw"


def test_timestamp_must_be_digits() -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    headers["X-Lt-Timestamp"] = "-" + headers["X-Lt-Timestamp"]
    with pytest.raises(SignatureError, match="timestamp missing or outside"):
        verifier().verify("POST", "/api", headers, BODY)


def test_replayed_nonce() -> None:
    v = verifier()
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    v.verify("POST", "/api", headers, BODY)
    with pytest.raises(SignatureError, match="nonce already used"):
        v.verify("POST", "/api", headers, BODY)


def test_a_refused_request_does_not_burn_its_nonce() -> None:
    v = verifier()
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    with pytest.raises(SignatureError):
        v.verify("POST", "/api", headers, BODY + b"x")
    assert v.verify("POST", "/api", headers, BODY) == "gw"


def test_nonce_memory_is_bounded() -> None:
    v = verifier(nonce_memory=2)
    sign = HmacSigner("gw", SECRET)
    first = sign("POST", "/api", BODY)
    v.verify("POST", "/api", first, BODY)
    for _ in range(2):
        v.verify("POST", "/api", sign("POST", "/api", BODY), BODY)
    # The oldest nonce was forgotten; within the clock skew it could be replayed once more.
    assert v.verify("POST", "/api", first, BODY) == "gw"
    assert len(v._nonces) == 2


def test_within_a_collection_the_nonce_is_handed_over_not_remembered() -> None:
    # The gateway records it with the callback's effects: if those fail, the same request may come again.
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    v = verifier()
    for _ in range(2):
        with collect_nonces() as nonces:
            assert v.verify("POST", "/api", headers, BODY) == "gw"
        assert nonces == [f"gw:{headers['X-Lt-Nonce']}"]
    assert hand_over_nonce("outside") is False


def test_a_bad_signature_hands_nothing_over() -> None:
    headers = HmacSigner("gw", "another-secret-of-16-chars")("POST", "/api", BODY)
    with collect_nonces() as nonces, pytest.raises(SignatureError):
        verifier().verify("POST", "/api", headers, BODY)
    assert nonces == []


async def test_a_collection_reaches_work_the_callback_hands_to_a_thread() -> None:
    headers = HmacSigner("gw", SECRET)("POST", "/api", BODY)
    v = verifier()
    with collect_nonces() as nonces:
        await asyncio.to_thread(v.verify, "POST", "/api", headers, BODY)
    assert len(nonces) == 1
