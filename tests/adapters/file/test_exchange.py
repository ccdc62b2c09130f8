"""FileExchange end to end on a local drop folder and a real SFTP server: send, poll, quarantine."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest
from lxml import etree

from adapters.file import (
    DuplicateAnswer,
    FileExchange,
    LocalFolderStore,
    OutboundFile,
    UnknownCorrelation,
    UnsafeName,
)
from adapters.file.model import sidecar_text
from adapters.file.sftp_server import SftpTestServer
from gateway.errors import AgencyUnavailable
from tests.adapters.file.conftest import Backend, sftp_store

XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Answer">
    <xs:complexType><xs:sequence>
      <xs:element name="CorrelationId" type="xs:string" minOccurs="0"/>
      <xs:element name="Status" type="xs:string"/>
      <xs:element name="Payload" type="xs:string" minOccurs="0"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>"""


def answer_xml(cid: str | None, status: str = "ACCEPTED", payload: str = "") -> bytes:
    cid_el = f"<CorrelationId>{cid}</CorrelationId>" if cid is not None else ""
    return f"<Answer>{cid_el}<Status>{status}</Status><Payload>{payload}</Payload></Answer>".encode()


def correlation_of(doc: etree._Element) -> str | None:
    return doc.findtext("CorrelationId")


class Recorder:
    """A handler honouring the contract: replay of the same answer is fine, a conflicting one is not."""

    def __init__(self, known: set[str] | None = None) -> None:
        self.known = known
        self.calls: list[tuple[str, str]] = []
        self.applied: dict[str, str | None] = {}

    async def __call__(self, cid: str, doc: etree._Element, name: str) -> None:
        self.calls.append((cid, name))
        if self.known is not None and cid not in self.known:
            raise UnknownCorrelation(f"never sent {cid}")
        status = doc.findtext("Status")
        if cid in self.applied:
            if self.applied[cid] == status:
                return
            raise DuplicateAnswer(f"{cid} already answered {self.applied[cid]}")
        self.applied[cid] = status


def make_exchange(backend: Backend, **kw: object) -> FileExchange:
    schema = etree.XMLSchema(etree.fromstring(XSD))
    return FileExchange(
        backend.store,
        agency="test-agency",
        correlation_of=correlation_of,
        schema=schema,
        **kw,  # type: ignore[arg-type]
    )


async def deliver(backend: Backend, name: str, data: bytes, *, sidecar: bytes | bool | None = True) -> None:
    """Drop an answer in the inbox the way a well-behaved agency does: sidecar first, data last."""
    if sidecar is True:
        sidecar = sidecar_text(name, hashlib.sha256(data).hexdigest())
    if isinstance(sidecar, bytes):
        await backend.plant("inbox", name + ".sha256", sidecar)
    await backend.plant("inbox", name, data)


async def test_send_writes_request_and_sidecar(backend: Backend) -> None:
    ex = make_exchange(backend, prefix="req")
    body = b"<Request><Id>HS-1</Id></Request>"
    sent = await ex.send(OutboundFile("HS-1", body))
    assert sent.name == "req-HS-1.xml" and sent.folder == "outbox" and sent.size == len(body)
    assert await backend.names("outbox") == {"req-HS-1.xml", "req-HS-1.xml.sha256"}
    assert await backend.content("outbox", "req-HS-1.xml") == body
    side = await backend.content("outbox", "req-HS-1.xml.sha256")
    assert side == f"{hashlib.sha256(body).hexdigest()}  req-HS-1.xml\n".encode()
    again = await ex.send(OutboundFile("HS-1", body, prefix="retry"))
    assert again.name == "retry-HS-1.xml"


@pytest.mark.parametrize("cid", ["../../etc/passwd", "a/b", "x\0y", "..", "a b", "ü"])
async def test_send_refuses_unsafe_correlation_ids(backend: Backend, cid: str) -> None:
    with pytest.raises(UnsafeName):
        await make_exchange(backend).send(OutboundFile(cid, b"<x/>"))
    assert await backend.names("outbox") == set()


async def test_poll_hands_valid_answers_over_and_moves_them(backend: Backend) -> None:
    ex, handler = make_exchange(backend), Recorder()
    await deliver(backend, "answer-HS-1.xml", answer_xml("HS-1"))
    await deliver(backend, "answer-HS-2.xml", answer_xml("HS-2", "REJECTED"))
    report = await ex.poll(handler)
    assert report.processed == ["answer-HS-1.xml", "answer-HS-2.xml"] and not report.quarantined
    assert handler.applied == {"HS-1": "ACCEPTED", "HS-2": "REJECTED"}
    assert await backend.names("inbox") == set()
    assert await backend.names("processed") == {
        "answer-HS-1.xml",
        "answer-HS-1.xml.sha256",
        "answer-HS-2.xml",
        "answer-HS-2.xml.sha256",
    }
    assert (await ex.poll(handler)).processed == []
    assert len(handler.calls) == 2


async def test_bad_files_are_quarantined_and_never_block_the_next(backend: Backend) -> None:
    ex, handler = make_exchange(backend, max_bytes=64 * 1024), Recorder(known={"HS-1", "HS-2", "HS-9"})
    good = answer_xml("HS-9")
    await deliver(backend, "a-malformed.xml", b"<Answer><Status>oops</Answer>")
    await deliver(backend, "b-doctype.xml", b'<!DOCTYPE a [<!ENTITY x "y">]><Answer><Status>&x;</Status></Answer>')
    await deliver(backend, "c-schema.xml", b"<Answer><Nope/></Answer>")
    await deliver(backend, "d-checksum.xml", good, sidecar=sidecar_text("d-checksum.xml", "0" * 64))
    await deliver(
        backend,
        "e-partial.xml",
        good[:20],
        sidecar=sidecar_text("e-partial.xml", hashlib.sha256(good).hexdigest()),
    )
    await deliver(backend, "f-unknown.xml", answer_xml("HS-404"))
    await deliver(backend, "g-nocid.xml", answer_xml(None))
    await deliver(backend, "h-big.xml", answer_xml("HS-1", payload="x" * 70_000))
    await deliver(backend, "i-sidecar-garbage.xml", answer_xml("HS-1"), sidecar=b"not a digest")
    await deliver(backend, "j-first.xml", answer_xml("HS-2", "ACCEPTED"))
    await deliver(backend, "k-conflicting.xml", answer_xml("HS-2", "REJECTED"))
    await deliver(backend, "z-good.xml", good)
    await deliver(backend, ".hidden.xml", good)
    await deliver(backend, "a b.xml", good)

    report = await ex.poll(handler)

    assert report.quarantined == {
        ".hidden.xml": "unsafe-name",
        "a b.xml": "unsafe-name",
        "a-malformed.xml": "malformed-xml",
        "b-doctype.xml": "unsafe-xml",
        "c-schema.xml": "schema-invalid",
        "d-checksum.xml": "checksum-mismatch",
        "e-partial.xml": "checksum-mismatch",
        "f-unknown.xml": "unknown-correlation",
        "g-nocid.xml": "no-correlation",
        "h-big.xml": "too-large",
        "i-sidecar-garbage.xml": "checksum-unreadable",
        "k-conflicting.xml": "duplicate",
    }
    assert report.processed == ["j-first.xml", "z-good.xml"]
    assert await backend.names("inbox") == set()
    quarantine = await backend.names("quarantine")
    for name, reason in report.quarantined.items():
        if name in (".hidden.xml", "a b.xml"):
            continue
        assert {name, name + ".sha256", name + ".reason.txt"} <= quarantine
        text = (await backend.content("quarantine", name + ".reason.txt")).decode()
        assert f"reason: {reason}\n" in text and "agency: test-agency" in text
    unsafe = sorted(n for n in quarantine if n.startswith("unsafe-") and n.endswith(".reason.txt"))
    assert len(unsafe) == 2
    texts = [(await backend.content("quarantine", n)).decode() for n in unsafe]
    assert any("'.hidden.xml'" in t for t in texts) and any("'a b.xml'" in t for t in texts)


async def test_a_name_already_processed_is_a_duplicate_without_calling_the_handler(backend: Backend) -> None:
    ex, handler = make_exchange(backend), Recorder()
    await deliver(backend, "answer-HS-1.xml", answer_xml("HS-1"))
    await ex.poll(handler)
    await deliver(backend, "answer-HS-1.xml", answer_xml("HS-1"))
    report = await ex.poll(handler)
    assert report.quarantined == {"answer-HS-1.xml": "duplicate"}
    assert len(handler.calls) == 1
    assert "answer-HS-1.xml.reason.txt" in await backend.names("quarantine")
    # the quarantine name is taken: a second duplicate gets a fresh, still safe name
    await deliver(backend, "answer-HS-1.xml", answer_xml("HS-1"))
    assert (await ex.poll(handler)).quarantined == {"answer-HS-1.xml": "duplicate"}
    assert len([n for n in await backend.names("quarantine") if n.endswith(".reason.txt")]) == 2


async def test_missing_sidecar_waits_then_quarantines(backend: Backend) -> None:
    ex, handler = make_exchange(backend, checksum_grace_polls=2), Recorder()
    data = answer_xml("HS-1")
    await deliver(backend, "late.xml", data, sidecar=None)
    await deliver(backend, "never.xml", data, sidecar=None)
    assert (await ex.poll(handler)).waiting == ["late.xml", "never.xml"]
    await backend.plant("inbox", "late.xml.sha256", sidecar_text("late.xml", hashlib.sha256(data).hexdigest()))
    second = await ex.poll(handler)
    assert second.processed == ["late.xml"] and second.waiting == ["never.xml"]
    third = await ex.poll(handler)
    assert third.quarantined == {"never.xml": "checksum-missing"}


async def test_checksum_can_be_optional(backend: Backend) -> None:
    ex, handler = make_exchange(backend, require_checksum=False), Recorder()
    await deliver(backend, "plain.xml", answer_xml("HS-1"), sidecar=None)
    await deliver(backend, "bad.xml", answer_xml("HS-2"), sidecar=sidecar_text("bad.xml", "1" * 64))
    report = await ex.poll(handler)
    assert report.processed == ["plain.xml"] and report.quarantined == {"bad.xml": "checksum-mismatch"}


async def test_temp_files_and_foreign_names_are_left_alone(backend: Backend) -> None:
    ex, handler = make_exchange(backend), Recorder()
    await backend.plant("inbox", ".answer-HS-1.xml.tmp-0123456789abcdef", b"<Answer><Sta")
    await backend.plant("inbox", "upload.xml.filepart", b"<Answer")
    await backend.plant("inbox", "orphan.xml.sha256", b"0" * 64)
    report = await ex.poll(handler)
    assert report.ignored == ["upload.xml.filepart"]
    assert not report.processed and not report.quarantined and not handler.calls
    assert len(await backend.names("inbox")) == 3


async def test_handler_failure_leaves_the_file_for_the_next_poll(backend: Backend) -> None:
    ex, recorder = make_exchange(backend), Recorder()
    down = True

    async def flaky(cid: str, doc: etree._Element, name: str) -> None:
        if down and cid == "HS-1":
            raise ConnectionError("database down")
        await recorder(cid, doc, name)

    await deliver(backend, "a.xml", answer_xml("HS-1"))
    await deliver(backend, "b.xml", answer_xml("HS-2"))
    first = await ex.poll(flaky)
    assert first.failed == ["a.xml"] and first.processed == ["b.xml"] and not first.quarantined
    down = False
    assert (await ex.poll(flaky)).processed == ["a.xml"]


async def test_crash_after_handler_redelivers_and_handler_deduplicates(backend: Backend) -> None:
    ex, handler = make_exchange(backend), Recorder()
    await deliver(backend, "answer-HS-1.xml", answer_xml("HS-1"))
    real_move = backend.store.move

    async def crash(*args: object, **kw: object) -> str:
        raise RuntimeError("process killed")

    backend.store.move = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await ex.poll(handler)
    backend.store.move = real_move  # type: ignore[method-assign]
    report = await ex.poll(handler)
    assert report.processed == ["answer-HS-1.xml"]
    assert handler.calls == [("HS-1", "answer-HS-1.xml"), ("HS-1", "answer-HS-1.xml")]
    assert handler.applied == {"HS-1": "ACCEPTED"}


async def test_hostile_listing_is_refused_untouched(tmp_path: Path) -> None:
    """Only a hostile SFTP server lists names like these; they are never read, moved or quarantined."""
    hostile = ["../etc/passwd.xml", "a/b.xml", "a\0b.xml", "..\\win.xml"]

    class HostileStore(LocalFolderStore):
        async def list(self, folder: str) -> list[str]:
            return sorted([*await super().list(folder), *hostile])

    root = tmp_path / "drop"
    backend = Backend("local", HostileStore(root), root)
    ex, handler = make_exchange(backend), Recorder()
    await deliver(backend, "ok.xml", answer_xml("HS-1"))
    report = await ex.poll(handler)
    assert sorted(report.refused) == sorted(hostile)
    assert report.processed == ["ok.xml"] and not report.quarantined
    assert await backend.names("quarantine") == set()


async def test_sftp_drop_during_poll_is_retryable_and_recovers(
    sftp_server: tuple[SftpTestServer, int, Path],
) -> None:
    server, port, root = sftp_server
    backend = Backend("sftp", sftp_store(server, port), root)
    ex, recorder = make_exchange(backend), Recorder()
    dropped = False

    async def handler(cid: str, doc: etree._Element, name: str) -> None:
        nonlocal dropped
        await recorder(cid, doc, name)
        if not dropped:
            dropped = True
            server.drop_connections()  # the link dies after the answer was applied, before the move
            await asyncio.sleep(0.05)

    try:
        await deliver(backend, "a.xml", answer_xml("HS-1"))
        await deliver(backend, "b.xml", answer_xml("HS-2"))
        with pytest.raises(AgencyUnavailable):
            await ex.poll(handler)
        report = await ex.poll(handler)
        assert report.processed == ["a.xml", "b.xml"] and not report.quarantined
        assert recorder.applied == {"HS-1": "ACCEPTED", "HS-2": "ACCEPTED"}
        assert (await ex.check()).ok
    finally:
        await ex.aclose()


async def test_poller_and_agency_writer_run_concurrently(backend: Backend) -> None:
    """The agency writes large answers while we poll in a loop: each is handled once, none quarantined."""
    ours, handler = make_exchange(backend), Recorder()
    agency = FileExchange(backend.store, agency="agency-side", correlation_of=correlation_of, outbox="inbox")
    cids = [f"HS-{i}" for i in range(12)]
    done = asyncio.Event()

    async def agency_writes() -> None:
        for i, cid in enumerate(cids):
            await agency.send(OutboundFile(cid, answer_xml(cid, payload="p" * (300_000 + i * 997)), prefix="answer"))
        done.set()

    async def poller() -> None:
        while True:
            finished = done.is_set()
            report = await ours.poll(handler)
            assert not report.quarantined and not report.failed, report
            if finished:
                return

    await asyncio.gather(agency_writes(), poller())
    assert sorted(handler.applied) == sorted(cids)
    assert len(handler.calls) == len(cids)
    assert await backend.names("inbox") == set()


async def test_describe_and_check(backend: Backend) -> None:
    ex = make_exchange(backend)
    info = ex.describe()
    assert info["kind"] == "file" and info["store"]["kind"] == backend.kind and info["schema"] is True
    assert "s3cret" not in repr(info)
    assert (await ex.check()).ok


async def test_send_maps_a_vanished_outbox_to_unavailable(backend: Backend) -> None:
    ex = make_exchange(backend)
    await ex.send(OutboundFile("HS-1", b"<x/>"))
    await asyncio.to_thread(shutil.rmtree, backend.root / "outbox")
    with pytest.raises(AgencyUnavailable):
        await ex.send(OutboundFile("HS-2", b"<x/>"))
    await ex.send(OutboundFile("HS-2", b"<x/>"))  # the outbox is made again on the next call
    assert await backend.names("outbox") == {"request-HS-2.xml", "request-HS-2.xml.sha256"}
