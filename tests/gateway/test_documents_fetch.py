"""Documents named by URL, fetched by the gateway from a real server on loopback that this module's
configuration explicitly allows: at intake (refusals are problem+json with a field path, nothing stored),
or before delivery (a document that cannot be had becomes a supplement request to the centre)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.samples import pdf_bytes, png_bytes
from gateway.api.keys import GATE
from gateway.config.model import FetchSettings
from gateway.documents import FilesystemDocumentStore
from gateway.documents.fetch import FetchFailed, UrlFetcher, Wanted
from gateway.sandbox.launcher import free_port
from tests.gateway.conftest import CONF, GatewayHarness
from tests.gateway.test_api_documents import nothing_stored, rows, stored_files
from tests.gateway.test_api_errors import assert_problem
from tests.gateway.test_smoke import wait_status

Make = Callable[[int], dict[str, Any]]
PDF = pdf_bytes("To khai thay doi thong tin cu tru (CT01)", ["Tran Thi Lan"])
SHA = hashlib.sha256(PDF).hexdigest()
OTHER = PDF[:-6] + b"%%EOX\n"  # as long, other bytes
assert len(OTHER) == len(PDF) and OTHER != PDF


class Files:
    """The centre's document server: what it serves, and how often it was asked."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.unavailable = 0  # answer 503 this many times first

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            self.hits[name] = self.hits.get(name, 0) + 1
            if name == "later.pdf" and self.unavailable > 0:
                self.unavailable -= 1
                return web.Response(status=503, text="busy")
            if name in ("ok.pdf", "later.pdf"):
                return web.Response(body=PDF, content_type="application/pdf")
            if name == "other.pdf":
                return web.Response(body=OTHER, content_type="application/pdf")
            if name == "longer.pdf":  # more bytes than declared, without saying so in advance
                response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
                await response.prepare(request)
                await response.write(PDF)
                await response.write(b"% and more\n" * 10)
                await response.write_eof()
                return response
            if name == "picture.pdf":
                return web.Response(body=png_bytes(8, 8), content_type="application/pdf")
            if name == "moved.pdf":
                raise web.HTTPFound("/files/ok.pdf")
            if name == "slow.pdf":
                await asyncio.sleep(5)
            raise web.HTTPNotFound()

        app = web.Application()
        app.router.add_get("/files/{name}", handle)
        return app


@pytest.fixture
async def files(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[tuple[Files, TestServer]]:
    f = Files()
    yield f, await aiohttp_server(f.app(), host="127.0.0.1")


@pytest.fixture
def fetch_when() -> str:
    return "intake"


@pytest.fixture
def gateway_conf(tmp_path: Path, fetch_when: str) -> Path:
    """The core tests' folder, allowing documents from 127.0.0.1 (a loopback address: allowed by name)."""
    copy = tmp_path / "conf"
    shutil.copytree(CONF, copy)
    with (copy / "gateway.toml").open("a", encoding="utf-8") as f:
        f.write(
            f'\n[documents.fetch]\nwhen = "{fetch_when}"\nallowed_hosts = ["127.0.0.1"]\n'
            'allowed_networks = ["127.0.0.0/8"]\ntimeout = 2.0\n'
        )
    return copy


def by_url(sub: dict[str, Any], url: str, content: bytes = PDF, **over: Any) -> dict[str, Any]:
    a = {
        "component_code": "TK01",
        "name": sub["attachments"][0]["name"],
        "media_type": "application/pdf",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "url": url,
    } | over
    return {**sub, "attachments": [a]}


# -- at intake -------------------------------------------------------------------------------------------


async def test_a_url_document_is_fetched_stored_and_delivered(
    harness: GatewayHarness, submission: Make, files: tuple[Files, TestServer]
) -> None:
    f, server = files
    url = str(server.make_url("/files/ok.pdf"))
    resp = await harness.client.post("/v1/dossiers", json=by_url(submission(0), url), headers=harness.headers())
    assert resp.status == 202, await resp.text()
    assert f.hits == {"ok.pdf": 1}
    assert await stored_files(harness) == [f"{SHA[:2]}/{SHA[2:4]}/{SHA}"]
    final = await wait_status(harness, (await resp.json())["id"], 9)
    assert final["submission"]["attachments"][0]["url"] == url
    assert (await harness.sim_stats())["documents_ok"] == 1


@pytest.mark.parametrize(
    ("path", "over", "code"),
    [
        ("/files/other.pdf", {}, "digest_mismatch"),
        ("/files/longer.pdf", {}, "size_mismatch"),
        ("/files/ok.pdf", {"size": len(PDF) + 5}, "size_mismatch"),
        ("/files/picture.pdf", {"size": len(png_bytes(8, 8)), "sha256": hashlib.sha256(png_bytes(8, 8)).hexdigest()},
         "not_of_type"),
        ("/files/missing.pdf", {}, "http_status"),
        ("/files/moved.pdf", {}, "http_status"),  # redirects are not followed
        ("/files/slow.pdf", {}, "unreachable"),  # past the 2 s allowed
    ],
    ids=["other-content", "longer-than-declared", "shorter-than-declared", "not-a-pdf", "404", "redirect", "too-slow"],
)  # fmt: skip
async def test_a_url_that_does_not_give_the_declared_document_is_refused(
    harness: GatewayHarness,
    submission: Make,
    files: tuple[Files, TestServer],
    path: str,
    over: dict[str, Any],
    code: str,
) -> None:
    _, server = files
    body = by_url(submission(0), str(server.make_url(path)), **over)
    problem = await assert_problem(
        await harness.client.post("/v1/dossiers", json=body, headers=harness.headers()), 422, "validation-failed"
    )
    assert [(e["path"], e["code"]) for e in problem["errors"]] == [("attachments.0.url", code)], problem
    await nothing_stored(harness)


async def test_an_unreachable_url_is_refused(harness: GatewayHarness, submission: Make) -> None:
    body = by_url(submission(0), f"http://127.0.0.1:{free_port()}/files/ok.pdf")  # nobody listens there
    problem = await assert_problem(
        await harness.client.post("/v1/dossiers", json=body, headers=harness.headers()), 422, "validation-failed"
    )
    [error] = problem["errors"]
    assert (error["path"], error["code"]) == ("attachments.0.url", "unreachable")
    assert "cannot fetch from 127.0.0.1" in error["message"]
    await nothing_stored(harness)


async def test_a_url_to_a_host_not_allowed_is_refused_without_a_request(
    harness: GatewayHarness, submission: Make, files: tuple[Files, TestServer]
) -> None:
    f, server = files
    body = by_url(submission(0), str(server.make_url("/files/ok.pdf")).replace("127.0.0.1", "localhost"))
    problem = await assert_problem(
        await harness.client.post("/v1/dossiers", json=body, headers=harness.headers()), 422, "validation-failed"
    )
    assert [(e["path"], e["code"]) for e in problem["errors"]] == [("attachments.0.url", "host_not_allowed")]
    assert f.hits == {}
    await nothing_stored(harness)


# -- the fetcher on its own: addresses -----------------------------------------------------------------


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[FilesystemDocumentStore]:
    store = FilesystemDocumentStore(tmp_path / "documents")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def fetch(docs: FilesystemDocumentStore, url: str, **settings: Any) -> None:
    async with aiohttp.ClientSession() as session:
        fetcher = UrlFetcher(session, FetchSettings(timeout=2.0, **settings), docs)
        await fetcher.fetch(Wanted(url, SHA, len(PDF), "application/pdf", 1_000_000))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", {}),  # loopback, and no network allowed
        ("127.0.0.1", {"allowed_networks": ["10.0.0.0/8"]}),  # another network allowed, not this one
        ("localhost", {}),  # a name resolving to loopback
    ],
)
async def test_internal_addresses_are_refused_unless_allowed(
    docs: FilesystemDocumentStore, files: tuple[Files, TestServer], host: str, allowed: dict[str, Any]
) -> None:
    f, server = files
    url = str(server.make_url("/files/ok.pdf")).replace("127.0.0.1", host)
    with pytest.raises(FetchFailed) as exc:
        await fetch(docs, url, allowed_hosts=[host], **allowed)
    assert (exc.value.code, exc.value.permanent) == ("address_not_allowed", True)
    assert f.hits == {}  # refused before any connection
    await fetch(
        docs, str(server.make_url("/files/ok.pdf")), allowed_hosts=["127.0.0.1"], allowed_networks=["127.0.0.1/32"]
    )
    assert await docs.read(SHA) == PDF


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("http://files.example.vn/ok.pdf", ["*.example.com"]),
        ("http://example.vn.evil.test/ok.pdf", ["example.vn"]),
        ("http://169.254.169.254/latest/meta-data/", ["*.example.vn"]),  # the cloud metadata address
        ("ftp://127.0.0.1/ok.pdf", ["127.0.0.1"]),
    ],
)
async def test_only_listed_hosts_are_fetched_from(docs: FilesystemDocumentStore, url: str, hosts: list[str]) -> None:
    with pytest.raises(FetchFailed) as exc:
        await fetch(docs, url, allowed_hosts=hosts)
    assert exc.value.code in ("host_not_allowed", "invalid_url") and exc.value.permanent


def test_the_allowed_address_check() -> None:
    from ipaddress import ip_address

    fetcher = UrlFetcher(None, FetchSettings(allowed_networks=["192.168.10.0/24"]), None)  # type: ignore[arg-type]
    refused = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
               "fc00::1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1", "100.64.0.1"]  # fmt: skip
    assert [a for a in refused if fetcher.address_allowed(ip_address(a))] == []
    assert fetcher.address_allowed(ip_address("192.168.10.20"))  # the operator's own network
    assert fetcher.address_allowed(ip_address("203.113.131.1"))
    assert fetcher.host_allowed("a.b.example.vn") is False
    wildcard = UrlFetcher(None, FetchSettings(allowed_hosts=["*.dichvucong.gov.vn"]), None)  # type: ignore[arg-type]
    assert wildcard.host_allowed("tailieu.dichvucong.gov.vn") and wildcard.host_allowed("TAILIEU.dichvucong.gov.vn.")
    assert not wildcard.host_allowed("dichvucong.gov.vn.evil.vn") and not wildcard.host_allowed("xdichvucong.gov.vn")


# -- before delivery -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fetch_when", ["delivery"])
async def test_fetched_before_delivery_a_passing_failure_is_retried(
    harness: GatewayHarness, submission: Make, files: tuple[Files, TestServer]
) -> None:
    f, server = files
    f.unavailable = 1
    body = by_url(submission(0), str(server.make_url("/files/later.pdf")))
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 202  # accepted before anything is fetched
    final = await wait_status(harness, (await resp.json())["id"], 9)
    assert f.hits == {"later.pdf": 2} and final["delivery"]["attempts"] == 2
    assert (await harness.sim_stats())["documents_ok"] == 1


# A breaker that opens at the first transient failure, and a retry budget shorter than the first backoff.
@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_BREAKER_FAILURES": "1", "LIENTHONG_GIVE_UP_AFTER": "0.01"}])
@pytest.mark.parametrize("fetch_when", ["delivery"])
async def test_fetched_before_delivery_a_failure_that_lasts_past_the_budget_asks_the_centre(
    harness: GatewayHarness, submission: Make, files: tuple[Files, TestServer]
) -> None:
    f, server = files
    f.unavailable = 1000  # the centre's server stays busy
    body = by_url(submission(0), str(server.make_url("/files/later.pdf")))
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    asked = await wait_status(harness, (await resp.json())["id"], 5)
    assert f.hits == {"later.pdf": 2}  # tried again once, then the budget was spent
    assert asked["delivery"]["state"] == "waiting" and "503" in asked["delivery"]["last_error"]
    [request] = asked["supplements"]
    assert request["requested_by"] == "gateway" and request["items"][0].startswith("TK01 (")
    # The centre's server failed, not the agency: its breaker never opened, and the next dossier goes at once.
    breaker = harness.app[GATE].breakers.get("police", "national")
    assert (breaker.state, breaker.openings, breaker.failures) == ("closed", 0, 0)
    other = await harness.client.post("/v1/dossiers", json=submission(1), headers=harness.headers())
    final = await wait_status(harness, (await other.json())["id"], 9)
    assert final["delivery"]["attempts"] == 1
    assert (await harness.sim_stats())["documents_ok"] == 1


@pytest.mark.parametrize("fetch_when", ["delivery"])
async def test_fetched_before_delivery_a_wrong_document_becomes_a_supplement_request(
    harness: GatewayHarness, submission: Make, files: tuple[Files, TestServer]
) -> None:
    _, server = files
    sub = submission(0)
    declared = sub["attachments"][0]
    body = by_url(sub, str(server.make_url("/files/other.pdf")), content=PDF)
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 202
    did = (await resp.json())["id"]
    asked = await wait_status(harness, did, 5)
    assert asked["delivery"]["state"] == "waiting" and "sha256" in asked["delivery"]["last_error"]
    [request] = asked["supplements"]
    assert request["requested_by"] == "gateway" and request["items"][0].startswith("TK01 (")
    assert (await harness.sim_stats()).get("requests", 0) == 0  # the agency has not seen it

    answer = {"note": "Tờ khai nộp trực tiếp", "attachments": [declared]}
    resp = await harness.client.post(f"/v1/dossiers/{did}/supplements", json=answer, headers=harness.headers())
    assert resp.status == 202, await resp.text()
    final = await wait_status(harness, did, 9)
    events = await (await harness.client.get(f"/v1/dossiers/{did}/events", headers=harness.headers())).json()
    assert [e["status"] for e in events["events"]] == [2, 5, 0, 4, 9]
    [att] = final["submission"]["attachments"]
    assert (att["sha256"], att["url"]) == (declared["sha256"], None)  # the document the centre brought
    assert (await harness.sim_stats())["documents_ok"] == 1
    assert await rows(harness, "dossier_documents") == 1
