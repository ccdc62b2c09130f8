"""Shared builders for the land tests: dossiers as the gateway holds them, office answers as files."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import Dossier, DossierStatus
from contracts.calendar import VN_TZ
from gateway.connector import AgencyUpdate, Connector, PollOutcome
from plugins.land.answers import Answer, Document, Obligation, answer_xml, pdf
from plugins.land.demo import demo_bundles, demo_dossiers

DID = uuid.UUID("0b5c8f7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")
CORRELATION = f"{DID}.submit"
CODE = "000.00.01.H58-261120-0007"


def first_certificate(i: int = 0) -> dict[str, Any]:
    return demo_dossiers(42, i + 1)[i]


def transfer(phase: str = "declaration", province: str = "01") -> dict[str, Any]:
    """One step of a land-transfer bundle as a plain submission."""
    b = demo_bundles(7, 1, province=province)[0]
    step = "declaration" if phase in ("declaration", "full") else "registration"
    form = dict(b["forms"][step])
    if phase == "full":
        form["phase"] = "full"
    return {
        "procedure_code": "1.004227",
        "applicant": b["applicant"],
        "jurisdiction": b["jurisdiction"],
        "summary": b["summary"],
        "form": form,
        "attachments": b["attachments"].get(step, []),
    }


def dossier(submission: dict[str, Any], did: uuid.UUID = DID, code: str = CODE) -> Dossier:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    return Dossier(
        id=did,
        code=code,
        procedure_code=submission["procedure_code"],
        procedure_name="land",
        receiving_unit=code.split("-")[0],
        client_id="centre-hcm",
        agency="land",
        endpoint="hanoi",
        status=DossierStatus.RECEIVED,
        received_at=now,
        due_at=now + timedelta(days=10),
        updated_at=now,
        submission=submission,
    )


def answer(
    status: str = "DA_TIEP_NHAN",
    *,
    event: str = "VPDK01-26000001-01",
    correlation: str = CORRELATION,
    certificate: bool = False,
    **kw: Any,
) -> bytes:
    docs = (Document("Giấy chứng nhận", "GCN", pdf("GCN AA 01000001"), "AA 01000001"),) if certificate else ()
    return answer_xml(
        Answer(
            event,
            correlation,
            CODE,
            "VPDK01-26000001",
            status,
            datetime(2026, 11, 21, 9, 30, tzinfo=VN_TZ),
            documents=kw.pop("documents", docs),
            **kw,
        )
    )


def obligation(assessed: int = 2_000_000_000) -> Obligation:
    return Obligation(assessed, [("LPTB", "Lệ phí trước bạ", assessed * 5 // 1000)])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def poll_applied(c: Connector) -> list[AgencyUpdate]:
    """One poll as the dispatcher makes it when the store takes every update: poll, then acknowledge."""
    updates = await c.poll()
    await c.acknowledge(PollOutcome(frozenset(u.event_id for u in updates)))
    return updates
