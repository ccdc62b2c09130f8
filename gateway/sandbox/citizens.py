"""The demo's citizen-facing part (docs/citizens.md): the public catalog and its guide pages, searched as an
applicant would; then a finished dossier's signed receipt and result, verified offline and by the keyless
GET /v1/verify, one changed byte refused, and the receipt's public status link showing no personal data."""

from __future__ import annotations

import hashlib
import re
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from gateway.signatures import Verifier
from gateway.store.seals import new_key

Check = tuple[str, bool]


def signing_key_env(workdir: Path) -> dict[str, str]:
    """A fresh signing key for this run, and the environment that points conf/demo at it (blocking)."""
    key = workdir / "signing-key.pem"
    key.write_bytes(new_key().pem())
    key.chmod(0o600)
    return {"LIENTHONG_SIGNING_KEY_FILE": str(key)}


async def _json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as r:
        if r.status != 200:
            raise RuntimeError(f"GET {url} {params}: {r.status} {await r.text()}")
        return await r.json()


async def guides(session: aiohttp.ClientSession, url: str) -> Check:
    """What an applicant finds without a key: the procedures with their guides, by agency and by keyword, and
    every procedure's printable page."""
    every = (await _json(session, f"{url}/v1/public/procedures"))["items"]
    with_guide = [p for p in every if p.get("guide")]
    found = {}
    for label, params in (
        ("agency=land", {"agency": "land"}),
        ("agency='cong an'", {"agency": "cong an"}),
        ("q='thường trú'", {"q": "thường trú"}),
        ("q='thuong tru'", {"q": "thuong tru"}),
    ):
        found[label] = [p["code"] for p in (await _json(session, f"{url}/v1/public/procedures", **params))["items"]]
    pages = 0
    for p in every:
        async with session.get(p["guide_url"]) as r:
            page = await r.text()
            pages += r.status == 200 and "<svg" in page and escape(p["name"]) in page
    one = every[0]["guide_url"] if every else f"{url}/guide/none"
    async with session.get(one) as r:
        etag = r.headers.get("ETag", "")
    async with session.get(one, headers={"If-None-Match": etag}) as r:
        cached = r.status == 304
    same = found["q='thường trú'"] == found["q='thuong tru'"] != []
    # A procedure without a guide (a plugin just added) still has its page, built from the catalog alone.
    ok = bool(with_guide) and pages == len(every) and same and cached
    print(
        f"  guides: {len(every)} procedures offered, {len(with_guide)} with a guide; {pages} printable pages with"
        " their QR code; search: " + "; ".join(f"{k}: {len(v)}" for k, v in found.items()) + f"; revalidated: {cached}"
    )
    return (
        f"guides: {len(with_guide)}/{len(every)} procedures with a guide, {pages} pages with a QR code, search with"
        f" and without diacritics alike ({len(found['q=' + repr('thuong tru')])} found), keyless and cacheable"
        + (" (ok)" if ok else " (FAILED)"),
        ok,
    )


def _flip(data: bytes) -> bytes:
    at = len(data) // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


async def _bytes(session: aiohttp.ClientSession, url: str, key: str) -> bytes | None:
    async with session.get(url, headers={"X-Api-Key": key}, allow_redirects=False) as r:
        return await r.read() if r.status == 200 else None


async def receipts(
    session: aiohttp.ClientSession, url: str, final: dict[str, dict[str, Any]], keys: dict[str, str]
) -> Check:
    """One finished dossier's receipt and result: signed, verified, tamper-evident; its status link public."""
    jwks = await _json(session, f"{url}/v1/verify/keys")
    verifier = Verifier.from_jwks(jwks)  # the public key; the checks below are local
    for d in final.values():
        if not d.get("results"):
            continue
        base, key = f"{url}/v1/dossiers/{d['id']}", keys[d["client_id"]]
        got = [
            await _bytes(session, f"{base}/{p}", key)
            for p in ("receipt", "receipt/signature", "results/0", "results/0/signature")
        ]
        if any(g is None for g in got):
            continue  # a result kept at the agency's URL: take another dossier
        receipt, receipt_sig, result, result_sig = (g or b"" for g in got)
        break
    else:
        return ("receipts: no finished dossier with a result to sign (FAILED)", False)
    pairs = ((receipt, receipt_sig.decode()), (result, result_sig.decode()))
    offline = [verifier.check(sig, document=doc) for doc, sig in pairs]
    # One changed byte, in the document or in its signature's signed metadata: each must be refused.
    tampered = [verifier.check(sig, document=_flip(doc)) for doc, sig in pairs]
    tampered += [verifier.check(_flip(sig.encode()).decode(), document=doc) for doc, sig in pairs]
    online = [
        await _json(session, f"{url}/v1/verify", signature=sig, sha256=hashlib.sha256(doc).hexdigest())
        for doc, sig in pairs
    ]
    data = orjson.loads(receipt)
    link = urlsplit(data["status_url"])
    async with session.get(f"{url}{link.path}?{link.query}") as r:
        status_page = await r.text() if r.status == 200 else ""
    shown = re.search(r'<strong id="status">([^<]*)</strong>', status_page)
    private = shown is not None and data["applicant"] not in status_page
    ok = all(v.valid for v in offline) and not any(v.valid for v in tampered) and all(o["valid"] for o in online)
    ok &= private
    print(
        f"  signed receipt of {d['code']} ({len(receipt)} bytes) and its result ({len(result)} bytes): verified offline"
        f" ({'ok' if all(v.valid for v in offline) else 'FAILED'}) and by GET /v1/verify"
        f" ({'ok' if all(o['valid'] for o in online) else 'FAILED'}); one changed byte refused"
        f" ({sum(not v.valid for v in tampered)}/{len(tampered)}: "
        + "; ".join(sorted({v.reason for v in tampered}))
        + ")"
    )
    print(
        f"  the receipt's QR link {link.path}: "
        + (f"status {shown[1]!r} only, no personal data" if private and shown else "FAILED")
    )
    return (
        f"receipts: {d['code']}'s receipt and result verified (key {offline[0].kid[:12]}...), refused after one"
        f" changed byte, status link without personal data" + (" (ok)" if ok else " (FAILED)"),
        ok,
    )
