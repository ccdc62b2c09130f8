"""Signed receipts and results: detached JWS from the configured Ed25519 key, checked offline by `lienthong
verify` and online by the keyless GET /v1/verify; one changed byte is refused; the receipt's status link
shows the status and nothing about the applicant."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import Dossier
from contracts.base import TRUSTED
from gateway.cli import main
from gateway.receipts import receipt_data
from gateway.signatures import thumbprint
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status

SEED = bytes(range(32))  # a fixed test key: its signatures are deterministic, as Ed25519's are
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


@pytest.fixture
def gateway_env() -> dict[str, str]:
    return {"LIENTHONG_SIGNING_KEY": base64.b64encode(SEED).decode()}


async def finished(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    assert resp.status == 202
    assert resp.headers["Link"].endswith('/receipt>; rel="receipt"')
    body = await wait_status(harness, (await resp.json())["id"], 9)
    assert body["status"] == 9
    return body


async def get_bytes(harness: GatewayHarness, path: str, **headers: str) -> bytes:
    resp = await harness.client.get(path, headers=harness.headers(**headers))
    assert resp.status == 200, (path, await resp.text())
    return await resp.read()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def verify_cli(*args: str) -> int:
    return main(["verify", *args])


async def test_receipt_and_result_verify_offline_and_one_changed_byte_is_refused(
    harness: GatewayHarness,
    submission: Callable[[int], dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    d = await finished(harness, submission)
    base = f"/v1/dossiers/{d['id']}"
    files = {
        "receipt.json": await get_bytes(harness, f"{base}/receipt"),
        "receipt.jws": await get_bytes(harness, f"{base}/receipt/signature"),
        "result.pdf": await get_bytes(harness, f"{base}/results/0"),
        "result.jws": await get_bytes(harness, f"{base}/results/0/signature"),
    }
    download = await harness.client.get(f"{base}/results/0", headers=harness.headers())
    assert download.headers["Link"] == f'</v1/dossiers/{d["id"]}/results/0/signature>; rel="signature"'
    # Asked again, the same bytes and the same signatures.
    assert await get_bytes(harness, f"{base}/receipt") == files["receipt.json"]
    assert await get_bytes(harness, f"{base}/receipt/signature") == files["receipt.jws"]
    assert await get_bytes(harness, f"{base}/results/0/signature") == files["result.jws"]
    for name, data in files.items():
        await asyncio.to_thread((tmp_path / name).write_bytes, data)
    pub = tmp_path / "signing.pub"
    await asyncio.to_thread(pub.write_bytes, PUBLIC)
    key = ["--public-key", str(pub)]

    for doc, sig in (("receipt.json", "receipt.jws"), ("result.pdf", "result.jws")):
        assert await asyncio.to_thread(verify_cli, str(tmp_path / doc), str(tmp_path / sig), *key) == 0
        out = capsys.readouterr().out
        assert f"valid: {tmp_path / doc} is the {doc.split('.')[0]} of dossier {d['code']}" in out
        # The configuration's own key verifies too (the key from the environment the harness set).
        assert await asyncio.to_thread(verify_cli, str(tmp_path / doc), str(tmp_path / sig), "--conf", str(CONF)) == 0
        capsys.readouterr()
        data = files[doc]
        for at in (0, len(data) // 2, len(data) - 1):  # one byte changed anywhere: refused
            await asyncio.to_thread((tmp_path / f"bad-{doc}").write_bytes, flip(data, at))
            assert await asyncio.to_thread(verify_cli, str(tmp_path / f"bad-{doc}"), str(tmp_path / sig), *key) == 1
            assert "INVALID" in capsys.readouterr().out
        signature = files[sig]
        for at in (10, len(signature) // 2, len(signature) - 3):  # header, signed metadata, signature
            await asyncio.to_thread((tmp_path / f"bad-{sig}").write_bytes, flip(signature, at))
            assert await asyncio.to_thread(verify_cli, str(tmp_path / doc), str(tmp_path / f"bad-{sig}"), *key) == 1
            assert "INVALID" in capsys.readouterr().out
    # Another key refuses them all.
    other = tmp_path / "other.pub"
    other_key = Ed25519PrivateKey.generate().public_key()
    raw = other_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    await asyncio.to_thread(other.write_bytes, base64.b64encode(raw))
    rc = await asyncio.to_thread(
        verify_cli, str(tmp_path / "receipt.json"), str(tmp_path / "receipt.jws"), "--public-key", str(other)
    )
    assert rc == 1 and "does not hold" in capsys.readouterr().out


async def test_receipt_says_what_was_received_and_when_it_is_due(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    import orjson

    d = await finished(harness, submission)
    receipt = orjson.loads(await get_bytes(harness, f"/v1/dossiers/{d['id']}/receipt"))
    assert receipt["type"] == "lienthong.receipt/v1" and receipt["dossier_code"] == d["code"]
    assert receipt["due_at"] == d["due_at"] and receipt["applicant"] == submission(0)["applicant"]["full_name"]
    assert [x["component_code"] for x in receipt["documents"]] == ["TK01"]
    assert len(receipt["documents"][0]["sha256"]) == 64
    assert receipt["status_url"].startswith(f"http://127.0.0.1:{harness.client.port}/status/{d['code']}?k=")
    page = (await get_bytes(harness, f"/v1/dossiers/{d['id']}/receipt/page")).decode()
    assert "Giấy tiếp nhận hồ sơ và hẹn trả kết quả".upper() in page.upper() and d["code"] in page
    assert "<svg" in page and "receipt-sha256" in page
    # A supplement moves the dossier's due date later; its receipt keeps the date promised at intake.
    full = await (await harness.client.get(f"/v1/dossiers/{d['id']}", headers=harness.headers())).json()
    asked = {
        "requested_by": "police",
        "items": ["HD01"],
        "requested_at": full["received_at"],
        "due_at": "2027-01-05T10:00:00Z",
        "dossier_due_before": full["due_at"],
        "dossier_due_after": "2027-01-20T10:00:00Z",
    }
    changed = full | {"due_at": "2027-01-20T10:00:00Z", "supplements": [asked]}
    later = Dossier.model_validate(changed, context={TRUSTED: True})  # as the store reads it back
    assert receipt_data(later, "https://x/status")["due_at"] == d["due_at"]
    # Another centre without the applicant's id sees no receipt: the same 404 as no dossier.
    other = await harness.client.get(f"/v1/dossiers/{d['id']}/receipt", headers=harness.headers("centre-hcm"))
    await assert_problem(other, 404, "not-found")


async def test_verify_online_needs_no_key(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    d = await finished(harness, submission)
    receipt = await get_bytes(harness, f"/v1/dossiers/{d['id']}/receipt")
    jws = (await get_bytes(harness, f"/v1/dossiers/{d['id']}/receipt/signature")).decode()
    digest = hashlib.sha256(receipt).hexdigest()
    ok = await (await harness.client.get("/v1/verify", params={"signature": jws, "sha256": digest})).json()
    assert ok["valid"] is True and ok["document_checked"] is True and ok["kid"] == thumbprint(KEY.public_key())
    assert ok["signed"]["dossier"] == d["code"] and ok["signed"]["typ"] == "receipt"
    assert "Võ" not in str(ok) and submission(0)["applicant"]["personal_id"] not in str(ok)  # nothing personal
    wrong = hashlib.sha256(flip(receipt, 5)).hexdigest()
    bad = await (await harness.client.get("/v1/verify", params={"signature": jws, "sha256": wrong})).json()
    assert bad["valid"] is False and "SHA-256 differs" in bad["reason"]
    forged = jws[:-4] + ("AAAA" if not jws.endswith("AAAA") else "BBBB")
    bad = await (await harness.client.get("/v1/verify", params={"signature": forged})).json()
    assert bad["valid"] is False
    problem = await assert_problem(
        await harness.client.get("/v1/verify", params={"sha256": "xyz"}), 400, "invalid-request"
    )
    assert {e["path"] for e in problem["errors"]} == {"query.signature", "query.sha256"}
    keys = await (await harness.client.get("/v1/verify/keys")).json()
    assert [k["kid"] for k in keys["keys"]] == [thumbprint(KEY.public_key())]


async def test_status_link_shows_the_status_only(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    import orjson

    d = await finished(harness, submission)
    receipt = orjson.loads(await get_bytes(harness, f"/v1/dossiers/{d['id']}/receipt"))
    link = urlsplit(receipt["status_url"])
    resp = await harness.client.get(f"{link.path}?{link.query}")  # no key
    assert resp.status == 200 and resp.headers["Referrer-Policy"] == "no-referrer"
    page = await resp.text()
    assert d["code"] in page and '<strong id="status">Đã xử lý xong</strong>' in page
    applicant = submission(0)["applicant"]
    for personal in (applicant["full_name"], applicant["personal_id"], applicant["phone"], applicant["date_of_birth"]):
        assert personal not in page
    # A guessed or altered link opens nothing, and the attempt is in the audit log.
    for query in ("", "?k=AAAAAAAAAAAAAAAAAAAAAA", f"?{link.query}x"):
        await assert_problem(await harness.client.get(f"{link.path}{query}"), 404, "not-found")
    audit = await (
        await harness.client.get("/v1/admin/audit", params={"client": "public"}, headers=harness.headers("operator"))
    ).json()
    outcomes = [(r["action"], r["outcome"], r["basis"]) for r in audit["items"]]
    assert outcomes == [("status", "allowed", "status-link")] + [("status", "denied", "wrong-link")] * 3


@pytest.mark.parametrize("gateway_env", [{}])
async def test_without_a_key_nothing_is_signed(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did = (await resp.json())["id"]
    for path in (f"/v1/dossiers/{did}/receipt", f"/v1/dossiers/{did}/receipt/signature"):
        problem = await assert_problem(await harness.client.get(path, headers=harness.headers()), 404, "not-found")
        assert "[signing]" in problem["detail"]
    await assert_problem(await harness.client.get("/v1/verify", params={"signature": "a.b.c"}), 404, "not-found")
