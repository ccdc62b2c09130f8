"""LandConnector on a local drop folder and on a real SFTP server: requests out, answers in, quarantine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from lxml import etree

from adapters.file import LocalFolderStore
from adapters.file.sftp_server import start_sftp_server
from adapters.xml import load_schema, validate
from contracts import DossierStatus
from gateway.connector import Delivery, PollOutcome
from gateway.errors import AgencyRejected, AgencyUnavailable
from plugins.land.connector import REQUEST_XSD, LandConnector
from plugins.land.settings import LandSettings
from tests.plugins.land.conftest import PASSWORD, USER, OfficeFolder
from tests.plugins.land.support import (
    CORRELATION,
    DID,
    answer,
    dossier,
    first_certificate,
    obligation,
    poll_applied,
    sha,
    transfer,
)

KEY = Delivery(f"{DID}:submit", 1)
REQUEST = f"request-{CORRELATION}.xml"


async def test_submit_writes_a_schema_valid_request_with_its_sidecar(
    office: OfficeFolder, connector: LandConnector
) -> None:
    receipt = await connector.submit(dossier(first_certificate()), KEY)
    assert receipt.agency_ref is None and receipt.updates == []  # the office's number comes with its answer
    assert await office.names("outbox") == {REQUEST, REQUEST + ".sha256"}
    body = await office.read("outbox", REQUEST)
    assert (await office.read("outbox", REQUEST + ".sha256")).decode() == f"{sha(body)}  {REQUEST}\n"
    validate(etree.fromstring(body), load_schema(REQUEST_XSD))


async def test_a_retried_submit_rewrites_the_same_file(office: OfficeFolder, connector: LandConnector) -> None:
    d = dossier(first_certificate())
    await connector.submit(d, KEY)
    first = await office.read("outbox", REQUEST)
    await connector.submit(d, Delivery(KEY.idempotency_key, 2))
    assert await office.names("outbox") == {REQUEST, REQUEST + ".sha256"}
    assert await office.read("outbox", REQUEST) == first
    await connector.submit(d, Delivery(f"{DID}:supplement-1", 1))
    assert f"request-{DID}.supplement-1.xml" in await office.names("outbox")


async def test_an_unmappable_dossier_is_rejected_and_nothing_is_written(
    office: OfficeFolder, connector: LandConnector
) -> None:
    with pytest.raises(AgencyRejected, match="tax_receipts"):
        await connector.submit(dossier(transfer("registration")), KEY)
    assert await office.names("outbox") == set()


async def test_answers_are_handed_over_once_and_leave_the_inbox_on_the_next_poll(
    office: OfficeFolder, connector: LandConnector
) -> None:
    await office.plant("inbox", "answer-a-01.xml", answer("DA_TIEP_NHAN", event="E-01"))
    await office.plant("inbox", "answer-a-02.xml", answer("HOAN_THANH", event="E-02", certificate=True))
    first = await poll_applied(connector)
    assert [(u.event_id, u.status) for u in first] == [("E-01", DossierStatus.PROCESSING), ("E-02", 9)]
    assert first[1].results[0].component_code == "GCN"
    # not yet applied as far as the connector knows: still in the inbox
    assert {"answer-a-01.xml", "answer-a-02.xml"} <= await office.names("inbox")
    assert await poll_applied(connector) == []
    assert await office.names("inbox") == set()
    assert {"answer-a-01.xml", "answer-a-02.xml"} <= await office.names("processed")
    assert await poll_applied(connector) == []


async def test_a_restart_before_the_second_poll_hands_the_same_answer_again(
    office: OfficeFolder, connector: LandConnector, make_connector: Callable[[LandSettings], LandConnector]
) -> None:
    await office.plant("inbox", "answer-a-01.xml", answer(event="E-01"))
    assert [u.event_id for u in await connector.poll()] == ["E-01"]  # then the process dies: no acknowledgement
    restarted = make_connector(office.settings)  # a new process: memory lost, the file is still there
    await restarted.start()
    try:
        assert [u.event_id for u in await poll_applied(restarted)] == ["E-01"]  # the store drops it by event id
        assert await poll_applied(restarted) == []
    finally:
        await restarted.aclose()
    assert "answer-a-01.xml" in await office.names("processed")


async def test_an_answer_the_store_did_not_take_stays_and_comes_back(
    office: OfficeFolder, connector: LandConnector
) -> None:
    await office.plant("inbox", "answer-a-01.xml", answer("DA_TIEP_NHAN", event="E-01"))
    await office.plant("inbox", "answer-a-02.xml", answer("HOAN_THANH", event="E-02", certificate=True))
    assert [u.event_id for u in await connector.poll()] == ["E-01", "E-02"]
    await connector.acknowledge(PollOutcome(frozenset({"E-01"})))  # the store failed on E-02 (database busy)
    assert [u.event_id for u in await connector.poll()] == ["E-02"]  # handed over again, not lost
    assert await office.names("inbox") >= {"answer-a-02.xml"}
    assert "answer-a-01.xml" in await office.names("processed")
    await connector.acknowledge(PollOutcome(frozenset({"E-02"})))
    assert await connector.poll() == []
    assert {"answer-a-01.xml", "answer-a-02.xml"} <= await office.names("processed")


async def test_an_earlier_answer_still_pending_after_the_final_one_is_not_a_duplicate(
    office: OfficeFolder, connector: LandConnector
) -> None:
    await office.plant("inbox", "answer-a-02.xml", answer("YEU_CAU_NVTC", event="E-02", obligation=obligation()))
    await office.plant("inbox", "answer-a-03.xml", answer("HOAN_THANH", event="E-03", certificate=True))
    assert [u.event_id for u in await connector.poll()] == ["E-02", "E-03"]
    await connector.acknowledge(PollOutcome())  # the store failed on E-02; E-03 waited behind it
    assert [u.event_id for u in await connector.poll()] == ["E-02", "E-03"]  # both again, in order
    assert connector.last_report.quarantined == {}
    await connector.acknowledge(PollOutcome(frozenset({"E-02", "E-03"})))
    assert await connector.poll() == []
    assert {"answer-a-02.xml", "answer-a-03.xml"} <= await office.names("processed")


async def test_an_answer_the_gateway_refuses_for_good_is_quarantined_with_the_reason(
    office: OfficeFolder, connector: LandConnector
) -> None:
    await office.plant("inbox", "answer-a-01.xml", answer("DA_TIEP_NHAN", event="E-01"))
    await office.plant("inbox", "answer-b-01.xml", answer("HOAN_THANH", event="E-07", certificate=True))
    assert len(await connector.poll()) == 2
    await connector.acknowledge(PollOutcome(refused={"E-01": "unknown-dossier", "E-07": "illegal-transition"}))
    assert await connector.poll() == []
    assert connector.last_report.quarantined == {
        "answer-a-01.xml": "unknown-correlation",
        "answer-b-01.xml": "illegal-transition",
    }
    assert b"no dossier" in await office.read("quarantine", "answer-a-01.xml.reason.txt")
    assert await office.names("inbox") == set()


async def test_a_copy_of_an_answer_under_another_name_is_not_handed_twice(
    office: OfficeFolder, connector: LandConnector
) -> None:
    await office.plant("inbox", "answer-a-01.xml", answer(event="E-01"))
    await office.plant("inbox", "answer-a-01-r1.xml", answer(event="E-01"))
    assert [u.event_id for u in await poll_applied(connector)] == ["E-01"]
    await office.plant("inbox", "answer-a-01-r2.xml", answer(event="E-01"))
    assert await poll_applied(connector) == []
    assert await office.names("inbox") == set()
    assert {"answer-a-01.xml", "answer-a-01-r1.xml", "answer-a-01-r2.xml"} <= await office.names("processed")


async def test_bad_answers_are_quarantined_with_their_reason(office: OfficeFolder, connector: LandConnector) -> None:
    good = answer("HOAN_THANH", event="E-09", certificate=True)
    await office.plant("inbox", "answer-a-09.xml", good)
    await poll_applied(connector)
    await poll_applied(connector)  # processed
    await office.plant("inbox", "answer-a-09.xml", good)  # the same name again
    await office.plant("inbox", "b-malformed.xml", b"<PhanHoiXml><MaYeuCau>")
    await office.plant("inbox", "c-schema.xml", b'<PhanHoiXml PhienBan="1.0"><MaYeuCau>x</MaYeuCau></PhanHoiXml>')
    await office.plant("inbox", "d-unknown.xml", answer(correlation="HS-2026-0001", event="E-10"))
    await office.plant("inbox", "e-conflict.xml", answer("TU_CHOI", event="E-11", reason="đã xong"))
    await office.plant("inbox", "..evil.xml", good)
    await office.plant("inbox", ".hidden.xml", good)
    await office.plant("inbox", "g-nosidecar.xml", good, sidecar=False)
    updates = await poll_applied(connector)
    assert updates == []
    assert connector.last_report.quarantined == {
        "answer-a-09.xml": "duplicate",
        "b-malformed.xml": "malformed-xml",
        "c-schema.xml": "schema-invalid",
        "d-unknown.xml": "unknown-correlation",
        "e-conflict.xml": "duplicate",
        "..evil.xml": "unsafe-name",
        ".hidden.xml": "unsafe-name",
    }
    assert connector.last_report.waiting == ["g-nosidecar.xml"]
    quarantine = await office.names("quarantine")
    assert {"d-unknown.xml", "d-unknown.xml.reason.txt", "e-conflict.xml.reason.txt"} <= quarantine
    assert b"reason: unknown-correlation" in await office.read("quarantine", "d-unknown.xml.reason.txt")
    assert "..evil.xml" not in quarantine  # unsafe names are kept under a digest, never as given


async def test_a_result_whose_content_breaks_its_checksum_is_quarantined(
    office: OfficeFolder, connector: LandConnector
) -> None:
    doc = etree.fromstring(answer("HOAN_THANH", event="E-1", certificate=True))
    sha_el = doc.find("DanhSachKetQua/GiayTo/Sha256")
    assert sha_el is not None
    sha_el.text = "f" * 64
    await office.plant("inbox", "answer-x.xml", etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))
    assert await poll_applied(connector) == []
    assert connector.last_report.quarantined == {"answer-x.xml": "invalid-answer"}


async def test_a_hostile_listing_with_path_traversal_is_refused_untouched(
    tmp_path: Path, make_connector: Callable[[LandSettings], LandConnector]
) -> None:
    root = tmp_path / "drop"
    await asyncio.to_thread(root.mkdir)
    hostile = ["../etc/passwd.xml", "a/b.xml", "..\\win.xml", "x\0y.xml"]

    class HostileStore(LocalFolderStore):
        async def list(self, folder: str) -> list[str]:
            return sorted([*await super().list(folder), *hostile])

    office = OfficeFolder("local", LandSettings(transport="local", root=str(root)), root)
    c = make_connector(office.settings)
    await c.start()
    assert c.exchange is not None
    c.exchange.store = HostileStore(root, agency="land")
    await office.plant("inbox", "answer-ok.xml", answer(event="E-1"))
    assert [u.event_id for u in await poll_applied(c)] == ["E-1"]
    assert sorted(c.last_report.refused) == sorted(hostile)
    assert await office.names("quarantine") == set()


async def test_sftp_office_unreachable_is_retryable_and_check_says_so(
    tmp_path: Path, make_connector: Callable[[LandSettings], LandConnector]
) -> None:
    root = tmp_path / "srv"
    await asyncio.to_thread(root.mkdir)
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    settings = LandSettings(
        host="127.0.0.1", port=port, username=USER, password=PASSWORD, host_key=server.public_key, root="/hanoi"
    )
    c = make_connector(settings)
    await c.start()
    try:
        assert (await c.check()).ok is False  # no office folder yet
        await c.submit(dossier(first_certificate()), KEY)
        assert (await c.check()).ok is True
        server.close()
        await server.wait_closed()
        with pytest.raises(AgencyUnavailable):
            await c.submit(dossier(first_certificate(), did=uuid.uuid4()), KEY)
        with pytest.raises(AgencyUnavailable):
            await poll_applied(c)
    finally:
        await c.aclose()


async def test_a_wrong_host_key_is_never_trusted(
    tmp_path: Path, make_connector: Callable[[LandSettings], LandConnector]
) -> None:
    root = tmp_path / "srv"
    await asyncio.to_thread(root.mkdir)
    server, port = await start_sftp_server(root, username=USER, password=PASSWORD)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    settings = LandSettings(host="127.0.0.1", port=port, username=USER, password=PASSWORD, host_key=other, root="/")
    c = make_connector(settings)
    await c.start()
    try:
        with pytest.raises(AgencyUnavailable):
            await c.submit(dossier(first_certificate()), KEY)
        assert await asyncio.to_thread(lambda: list(root.iterdir())) == []
    finally:
        await c.aclose()
        server.close()
        await server.wait_closed()
