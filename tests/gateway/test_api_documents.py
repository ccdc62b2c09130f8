"""Documents through the HTTP API: uploads streamed in (digests checked, limits per component), named by a
dossier's attachments, delivered to the agency, downloaded back; every refusal a problem+json with a field
path, leaving nothing behind."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.samples import pdf_bytes, png_bytes
from gateway.api.keys import DOCUMENTS, LIVE, STORE
from gateway.documents.sweep import sweep_once
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status

Make = Callable[[int], dict[str, Any]]
LIMIT = 20_000  # TK01 of 1.004194 in this module's catalog: at most 20,000 bytes, PDF only
PDF = pdf_bytes("To khai thay doi thong tin cu tru (CT01)", ["Nguyen Van An"])
BIG = pdf_bytes("Giay to", ["scan"], scan=(200, 200), seed=1)  # larger than LIMIT, within the gateway's
assert len(PDF) < LIMIT < len(BIG) < 100_000


OVERRIDE = '\n[procedure.documents.TK01]\nmax_bytes = 20000\nmedia_types = ["application/pdf"]\n'


@pytest.fixture
def gateway_conf(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The core tests' folder, with the operator's limits over the police plugin's for TK01, the gateway's own
    limit lowered to 100,000 bytes, and inline documents above 4 KiB kept in the folder (parametrized
    indirectly: `[limits] uploads_in_progress`)."""
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    if (uploads := getattr(request, "param", None)) is not None:
        text = (copy / "gateway.toml").read_text(encoding="utf-8")
        text = text.replace("[limits]\n", f"[limits]\nuploads_in_progress = {uploads}\n", 1)
        (copy / "gateway.toml").write_text(text, encoding="utf-8")
    procedures = (
        '[[procedure]]\ncode = "1.004194"\nprocessing_days = 7\n'
        + OVERRIDE
        + '\n[[procedure]]\ncode = "1.004203"\n'
        + OVERRIDE
    )
    (copy / "procedures.toml").write_text(procedures, encoding="utf-8")
    with (copy / "gateway.toml").open("a", encoding="utf-8") as f:
        f.write("\n[documents]\nmax_bytes = 100000\ndatabase_max_bytes = 4096\n")
    return copy


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


async def upload(
    h: GatewayHarness, data: bytes, media_type: str = "application/pdf", who: str = "centre-hanoi", query: str = "",
    chunked: bool = False, **headers: str,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    body: Any = pieces() if chunked else data
    resp = await h.client.post(
        f"/v1/documents{query}", data=body, headers=h.headers(who, **{"Content-Type": media_type, **headers})
    )
    return resp.status, await resp.json(content_type=None)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def stored_files(h: GatewayHarness) -> list[str]:
    return await asyncio.to_thread(_files, h.app[DOCUMENTS].root)  # type: ignore[attr-defined]


def _count(db: str, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def rows(h: GatewayHarness, table: str) -> int:
    return await asyncio.to_thread(_count, h.app[STORE].path, table)  # type: ignore[attr-defined]


async def nothing_stored(h: GatewayHarness, files: list[str] | None = None) -> None:
    assert await stored_files(h) == (files or [])
    for table in ("uploads", "dossiers", "documents", "dossier_documents"):
        assert await rows(h, table) == 0, table


def with_upload(sub: dict[str, Any], upload_id: str, **declared: Any) -> dict[str, Any]:
    name = sub["attachments"][0]["name"]
    return {**sub, "attachments": [{"component_code": "TK01", "name": name, "upload_id": upload_id, **declared}]}


# -- uploads -------------------------------------------------------------------------------------------


async def test_an_upload_is_stored_named_by_a_dossier_delivered_and_downloaded(
    harness: GatewayHarness, submission: Make
) -> None:
    named = {"Repr-Digest": f"sha-256=:{digest(PDF)}:", "Content-Disposition": 'attachment; filename="ct01.pdf"'}
    status, up = await upload(harness, PDF, **named)
    assert status == 201, up
    assert (up["sha256"], up["size"], up["media_type"], up["name"]) == (
        hashlib.sha256(PDF).hexdigest(), len(PDF), "application/pdf", "ct01.pdf"
    )  # fmt: skip
    path = harness.app[DOCUMENTS].local_path(up["sha256"])
    assert path is not None
    assert stat.S_IMODE((await asyncio.to_thread(path.stat)).st_mode) == 0o600

    resp = await harness.client.post(
        "/v1/dossiers", json=with_upload(submission(0), up["id"]), headers=harness.headers()
    )
    assert resp.status == 202, await resp.text()
    did = (await resp.json())["id"]
    final = await wait_status(harness, did, 9)
    [att] = final["submission"]["attachments"]
    assert (att["upload_id"], att["sha256"], att["size"], att["media_type"]) == (
        up["id"], up["sha256"], len(PDF), "application/pdf"
    )  # fmt: skip
    assert att["content_base64"] is None  # a reference: the bytes are in the document store
    stats = await harness.sim_stats()
    assert stats["documents_ok"] == 1
    async with harness.client.session.get(str(harness.police.make_url("/_sim/documents"))) as r:
        received = await r.json()
    assert received[final["code"]] == [
        {"maThanhPhan": "TK01", "loaiTep": "application/pdf", "kichThuoc": len(PDF), "sha256": up["sha256"]}
    ]
    download = await harness.client.get(f"/v1/dossiers/{did}/attachments/0", headers=harness.headers())
    assert download.status == 200 and download.content_type == "application/pdf"
    assert await download.read() == PDF
    assert download.headers["Repr-Digest"] == f"sha-256=:{digest(PDF)}:"
    elsewhere = await harness.client.get(f"/v1/dossiers/{did}/attachments/0", headers=harness.headers("centre-hcm"))
    assert elsewhere.status == 404  # another centre, no applicant id: as if it did not exist
    missing = await harness.client.get(f"/v1/dossiers/{did}/attachments/3", headers=harness.headers())
    assert missing.status == 404


async def test_a_chunked_upload_with_a_legacy_digest(harness: GatewayHarness) -> None:
    status, up = await upload(harness, PDF, chunked=True, Digest=f"SHA-256={digest(PDF)}")
    assert status == 201, up
    assert up["size"] == len(PDF)


@pytest.mark.parametrize("gateway_conf", [2], indirect=True)
async def test_uploads_past_the_limit_wait_their_turn_unread(harness: GatewayHarness) -> None:
    """With `uploads_in_progress = 2`, four uploads that each send a first piece and then pause: two are
    being stored (a temporary file each), two wait unread; once the bodies come, all four are stored."""
    go = asyncio.Event()
    docs = [pdf_bytes(f"Giay to {i}", ["Nguyen Van An"]) for i in range(4)]

    async def send(data: bytes) -> tuple[int, dict[str, Any]]:
        async def pieces() -> AsyncIterator[bytes]:
            yield data[:1024]
            await go.wait()
            yield data[1024:]

        resp = await harness.client.post(
            "/v1/documents",
            data=pieces(),
            headers=harness.headers("centre-hanoi", **{"Content-Type": "application/pdf"}),
        )
        return resp.status, await resp.json(content_type=None)

    tmp = harness.app[DOCUMENTS].root / "tmp"  # type: ignore[attr-defined]

    async def in_progress() -> int:
        return len(await asyncio.to_thread(_files, tmp))

    sent = [asyncio.create_task(send(d)) for d in docs]
    async with asyncio.timeout(10):
        while await in_progress() < 2:  # noqa: ASYNC110 (files on disk: nothing to wait on)
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # time enough for a third to start, were it let in
    assert await in_progress() == 2
    go.set()
    answers = await asyncio.gather(*sent)
    assert [status for status, _ in answers] == [201] * 4, answers
    assert sorted(up["size"] for _, up in answers) == sorted(len(d) for d in docs)
    assert await in_progress() == 0


async def test_the_same_document_uploaded_twice_is_stored_once(harness: GatewayHarness) -> None:
    first, second = (await upload(harness, PDF))[1], (await upload(harness, PDF))[1]
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(await stored_files(harness)) == 1 and await rows(harness, "uploads") == 2


@pytest.mark.parametrize(
    ("data", "media_type", "headers", "query", "chunked", "status", "path", "code"),
    [
        (PDF, "application/pdf", {"Repr-Digest": f"sha-256=:{digest(b'other')}:"}, "", False, 422,
         "headers.Repr-Digest", "digest_mismatch"),
        (PDF, "application/pdf", {"Content-Digest": f"sha-512=:{digest(b'other', 'sha512')}:"}, "", True, 422,
         "headers.Content-Digest", "digest_mismatch"),
        (PDF, "application/pdf", {"Repr-Digest": "sha-256=not-a-byte-sequence"}, "", False, 400,
         "headers.Repr-Digest", "bad_digest"),
        (BIG, "application/pdf", {}, "?procedure=1.004194&component=TK01", False, 413, "headers.Content-Length",
         "too_large"),
        (BIG, "application/pdf", {}, "?procedure=1.004194&component=TK01", True, 413, "body", "too_large"),
        (BIG * 4, "application/pdf", {}, "", True, 413, "body", "too_large"),  # past the gateway's 100,000
        (PDF, "text/plain", {}, "", False, 415, "headers.Content-Type", "media_type_not_allowed"),
        (png_bytes(20, 20), "image/png", {}, "?procedure=1.004194&component=TK01", False, 415,
         "headers.Content-Type", "media_type_not_allowed"),
        (png_bytes(20, 20), "application/pdf", {}, "", True, 415, "body", "not_of_type"),
        (PDF, "application/pdf", {"Content-Encoding": "gzip"}, "", False, 415, "headers.Content-Encoding",
         "content_coding"),
        (PDF, "application/pdf", {}, "?procedure=9.999999", False, 422, "query.procedure", "unknown_procedure"),
    ],
    ids=["wrong-repr-digest", "wrong-content-digest", "unreadable-digest", "too-large-declared", "too-large-streamed",
         "past-the-gateway-limit", "type-not-accepted", "type-not-for-the-component", "not-what-it-says",
         "content-coding", "unknown-procedure"],
)  # fmt: skip
async def test_refused_uploads_leave_nothing(
    harness: GatewayHarness,
    data: bytes,
    media_type: str,
    headers: dict[str, str],
    query: str,
    chunked: bool,
    status: int,
    path: str,
    code: str,
) -> None:
    got, problem = await upload(harness, data, media_type, query=query, chunked=chunked, **headers)
    assert got == status, problem
    assert problem["status"] == status and problem["detail"]
    assert [(e["path"], e["code"]) for e in problem["errors"]] == [(path, code)], problem
    await nothing_stored(harness)


async def test_an_upload_without_a_content_type_is_refused(harness: GatewayHarness) -> None:
    resp = await harness.client.post("/v1/documents", data=PDF, headers=harness.headers())
    body = await assert_problem(resp, 415, "unsupported-media-type")
    assert body["errors"][0]["path"] == "headers.Content-Type"
    await nothing_stored(harness)


async def test_uploading_takes_the_submit_scope(harness: GatewayHarness) -> None:
    status, problem = await upload(harness, PDF, who="portal")
    assert status == 403, problem
    await nothing_stored(harness)


# -- dossiers naming documents --------------------------------------------------------------------------


async def test_a_dossier_may_name_only_its_centres_unexpired_uploads(harness: GatewayHarness, submission: Make) -> None:
    _, mine = await upload(harness, PDF)
    _, theirs = await upload(harness, PDF, who="centre-hcm")
    _, big = await upload(harness, BIG)  # within the gateway's limits, not TK01's
    before = await stored_files(harness)
    cases = [
        (with_upload(submission(0), theirs["id"]), "attachments.0.upload_id", "unknown_upload"),
        (with_upload(submission(0), "0" * 8 + "-0000-4000-8000-" + "0" * 12), "attachments.0.upload_id",
         "unknown_upload"),
        (with_upload(submission(0), mine["id"], sha256="0" * 64), "attachments.0.sha256", "upload_mismatch"),
        (with_upload(submission(0), mine["id"], media_type="image/png"), "attachments.0.media_type",
         "upload_mismatch"),
        (with_upload(submission(0), big["id"]), "attachments.0.size", "too_large"),
    ]  # fmt: skip
    for body, path, code in cases:
        resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
        problem = await assert_problem(resp, 422, "validation-failed")
        assert [(e["path"], e["code"]) for e in problem["errors"]] == [(path, code)], problem
    assert await stored_files(harness) == before and await rows(harness, "dossiers") == 0

    await harness.app[STORE].expire_uploads(time.time() + 25 * 3600)  # a day and more later
    resp = await harness.client.post(
        "/v1/dossiers", json=with_upload(submission(0), mine["id"]), headers=harness.headers()
    )
    problem = await assert_problem(resp, 422, "validation-failed")
    assert problem["errors"][0]["code"] == "unknown_upload" and "expired" in problem["errors"][0]["message"]


def inline(content: bytes, media_type: str = "application/pdf", **over: Any) -> dict[str, Any]:
    return {
        "component_code": "TK01",
        "name": "Tờ khai thay đổi thông tin cư trú (CT01)",
        "media_type": media_type,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_base64": base64.b64encode(content).decode(),
    } | over


@pytest.mark.parametrize(
    ("attachment", "path", "code"),
    [
        (inline(BIG), "attachments.0.size", "too_large"),
        (inline(png_bytes(20, 20), "image/png"), "attachments.0.media_type", "media_type_not_allowed"),
        (inline(png_bytes(20, 20)), "attachments.0.content_base64", "not_of_type"),
        (inline(PDF, url="https://files.example.vn/ct01.pdf", content_base64=None), "attachments.0.url",
         "host_not_allowed"),
    ],
    ids=["too-large", "type-not-for-the-component", "not-what-it-says", "url-host-not-allowed"],
)  # fmt: skip
async def test_refused_inline_documents_leave_nothing(
    harness: GatewayHarness, submission: Make, attachment: dict[str, Any], path: str, code: str
) -> None:
    body = {**submission(0), "attachments": [attachment]}
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    problem = await assert_problem(resp, 422, "validation-failed")
    assert [(e["path"], e["code"]) for e in problem["errors"]] == [(path, code)], problem
    await nothing_stored(harness)


async def test_small_inline_documents_are_kept_with_their_dossier_larger_ones_in_the_folder(
    harness: GatewayHarness, submission: Make
) -> None:
    body = submission(0)
    body["attachments"].append(inline(BIG, component_code="HD01", url="https://files.example.vn/hd01.pdf"))
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 202, await resp.text()
    big = hashlib.sha256(BIG).hexdigest()
    assert await stored_files(harness) == [f"{big[:2]}/{big[2:4]}/{big}"]  # the scan, above 4 KiB
    assert await rows(harness, "documents") == 1  # the declaration, in the dossier's transaction
    final = await wait_status(harness, (await resp.json())["id"], 9)
    assert (await harness.sim_stats())["documents_ok"] == 1
    declaration = base64.b64decode(submission(0)["attachments"][0]["content_base64"])
    for i, content in enumerate((declaration, BIG)):
        download = await harness.client.get(f"/v1/dossiers/{final['id']}/attachments/{i}", headers=harness.headers())
        assert await download.read() == content


async def test_a_delivery_takes_its_small_documents_from_its_claim_not_from_another_read(
    harness: GatewayHarness, submission: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = harness.app[STORE]
    reads: list[str] = []
    original = store.document_content

    async def counted(sha256: str) -> bytes | None:
        reads.append(sha256)
        return await original(sha256)

    monkeypatch.setattr(store, "document_content", counted)
    body = submission(0)
    body["attachments"].append(inline(BIG, component_code="HD01"))
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 202, await resp.text()
    await wait_status(harness, (await resp.json())["id"], 9)
    assert (await harness.sim_stats())["documents_ok"] == 1  # both arrived whole, as the agency checks them
    declaration = hashlib.sha256(base64.b64decode(body["attachments"][0]["content_base64"])).hexdigest()
    assert declaration not in reads  # kept in the database: it came with the claim
    assert set(reads) == {hashlib.sha256(BIG).hexdigest()}  # the scan in the folder: looked up, then read there


async def test_a_refused_dossier_takes_back_the_documents_it_stored(harness: GatewayHarness, submission: Make) -> None:
    body = submission(0)
    body["attachments"].append(inline(BIG, component_code="HD01"))
    key = harness.headers("centre-hcm", **{"Idempotency-Key": "k1"})
    assert (await harness.client.post("/v1/dossiers", json=body, headers=key)).status == 202
    files = await stored_files(harness)
    assert len(files) == 1
    other = {**submission(1), "attachments": [inline(PDF), inline(BIG + b"%", component_code="HD01")]}
    resp = await harness.client.post("/v1/dossiers", json=other, headers=key)
    await assert_problem(resp, 409, "idempotency-key-reused")
    assert await stored_files(harness) == files  # the second body's scan was stored, then taken back
    assert await rows(harness, "documents") == 1  # and its declaration never written


# -- the sweep ----------------------------------------------------------------------------------------------


async def test_the_sweep_forgets_expired_uploads_and_deletes_what_nobody_names(
    harness: GatewayHarness, submission: Make
) -> None:
    _, named = await upload(harness, PDF)
    _, forgotten = await upload(harness, BIG)
    resp = await harness.client.post(
        "/v1/dossiers", json=with_upload(submission(0), named["id"]), headers=harness.headers()
    )
    assert resp.status == 202
    docs = harness.app[DOCUMENTS]
    for sha in (named["sha256"], forgotten["sha256"]):  # both stored long ago
        await asyncio.to_thread(os.utime, docs.local_path(sha), (1_000_000, 1_000_000))
    settings = harness.app[LIVE].current.config.gateway.documents
    assert await sweep_once(harness.app[STORE], docs, settings, None) == 0  # both uploads still wait
    await harness.app[STORE].expire_uploads(time.time() + settings.upload_ttl + 1)
    assert await rows(harness, "uploads") == 0
    assert await sweep_once(harness.app[STORE], docs, settings, None) == 1
    assert await docs.exists(named["sha256"])  # its dossier names it
    assert not await docs.exists(forgotten["sha256"])


async def test_an_upload_named_with_control_characters_is_refused_before_it_is_read(harness: GatewayHarness) -> None:
    named = {"Content-Disposition": "attachment; filename*=UTF-8''to%20khai%01.pdf"}
    status, problem = await upload(harness, PDF, **named)
    assert status == 400 and problem["type"] == "urn:lienthong:problem:invalid-request", problem
    [error] = problem["errors"]
    assert (error["path"], error["code"]) == ("headers.Content-Disposition", "control_character")
    await nothing_stored(harness)
