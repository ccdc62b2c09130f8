"""The simulated land registry: one office per province, each a folder on the simulator's SFTP server.

Each office reads the gateway's requests from its folder's `outbox` (the gateway's outbox is the
office's inbox), checks the sha256 sidecar and the XSD, takes each correlation id once, and writes its
answers into `inbox` the way the gateway expects: sidecar first, then the data file, both atomically.
An office checks the documents each dossier carries (DanhSachTaiLieu, base64 in the file): all the
procedure requires, each whole and of an accepted type; a dossier whose documents are not all right is
refused (TU_CHOI, the reason named) and counted as `documents_refused`, the others as `documents_ok`.
Faults: slow offices, errors, malformed files, duplicate and missing answers, silent dossiers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from lxml import etree

from adapters.file import LocalFolderStore, naming
from adapters.file.model import SIDECAR_MAX_BYTES, parse_sidecar, sidecar_text
from adapters.file.stores import new_token
from adapters.xml import parse_xml, validate
from contracts.calendar import VN_TZ
from gateway.sdk import (
    Faults,
    MalformedAnswer,
    ReceivedDocument,
    UnsafeAnswer,
    count_documents,
    document_problems,
)
from plugins.land.answers import Answer, Document, Obligation, answer_xml, pdf
from plugins.land.procedures import by_code
from plugins.land.wire import parse_time

log = structlog.get_logger("lienthong.simulator.land")

MAX_REQUEST_BYTES = 64 * 1024 * 1024
PROCEDURES = by_code()  # the offices' own rules: required documents and accepted types per procedure
CHECKSUM_PATIENCE = 50  # scans a request may disagree with its sidecar before it is refused
# VND per m2 the obligations are assessed on when the declared price is lower (a stand-in price list).
UNIT_PRICE = {"01": 45_000_000, "79": 50_000_000, "48": 20_000_000}
DEFAULT_UNIT_PRICE = 8_000_000
CERTIFICATE = "Giấy chứng nhận quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất"
TRANSMITTAL = "Phiếu chuyển thông tin để xác định nghĩa vụ tài chính về đất đai"
Spawn = Callable[[Coroutine[Any, Any, None]], None]


@dataclass
class LandFaults:
    """Land-specific faults, changed at run time through POST /_sim/land."""

    duplicate_rate: float = 0.0  # an answer written twice, the copy under another name
    missing_rate: float = 0.0  # an answer never written (until POST /_sim/resend)
    reject_rate: float = 0.0  # the office refuses the dossier (TU_CHOI)
    auto_pay_after: float | None = 1.0  # TRON_GOI: obligations paid after this long; None: wait for /_sim/pay


@dataclass
class Record:
    office: str
    correlation: str
    code: str
    kind: str
    phase: str
    ref: str
    request: etree._Element
    paid: asyncio.Event = field(default_factory=asyncio.Event)
    answers: list[str] = field(default_factory=list)
    finished: bool = False
    document_problems: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "office": self.office,
            "correlation": self.correlation,
            "code": self.code,
            "kind": self.kind,
            "phase": self.phase,
            "ref": self.ref,
            "province": self.request.findtext("DiaBan/MaTinh"),
            "answers": list(self.answers),
            "finished": self.finished,
            "documents": [
                {
                    "component": d.findtext("MaThanhPhan"),
                    "size": d.findtext("KichThuoc"),
                    "sha256": d.findtext("Sha256"),
                }
                for d in self.request.iterfind("DanhSachTaiLieu/TaiLieu")
            ],
            "document_problems": list(self.document_problems),
        }


@dataclass
class Office:
    name: str  # its folder
    province: str
    store: LocalFolderStore
    seq: int = 0

    @property
    def code(self) -> str:
        return f"VPDK{self.province}"


class LandRegistry:
    def __init__(
        self,
        offices: list[Office],
        *,
        request_schema: etree.XMLSchema,
        answer_schema: etree.XMLSchema,
        faults: Callable[[], Faults],
        land_faults: LandFaults,
        rng: random.Random,
        stats: Counter[str],
        spawn: Spawn,
        processing_delay: float = 0.2,
        answer_gap: float = 0.05,
        requests: str = "outbox",
        answers: str = "inbox",
    ) -> None:
        self.offices = {o.name: o for o in offices}
        self.request_schema, self.answer_schema = request_schema, answer_schema
        self.faults, self.land_faults = faults, land_faults
        self.rng, self.stats, self.spawn = rng, stats, spawn
        self.processing_delay, self.answer_gap = processing_delay, answer_gap
        self.requests, self.answers = requests, answers
        self.records: dict[str, Record] = {}  # correlation -> record
        self.by_ref: dict[str, Record] = {}
        self.dropped: list[tuple[Office, str, bytes]] = []  # answers a fault kept back
        self._mismatch: Counter[str] = Counter()

    async def prepare(self) -> None:
        for o in self.offices.values():
            await asyncio.to_thread(o.store.root.mkdir, 0o750, True, True)
            for folder in (self.requests, self.answers, "taken", "refused"):
                await o.store.ensure_folder(folder)

    async def run(self, interval: float) -> None:
        while True:
            if not self.faults().down:
                for office in self.offices.values():
                    try:
                        await self.scan(office)
                    except Exception:
                        log.exception("scan_failed", office=office.name)
            await asyncio.sleep(interval)

    # -- taking requests ---------------------------------------------------------------------------

    async def scan(self, office: Office) -> None:
        names = await office.store.list(self.requests)
        present = set(names)
        for name in names:
            if naming.is_temp_name(name) or name.endswith(naming.SIDECAR_SUFFIX) or not name.endswith(".xml"):
                continue
            if naming.sidecar_name(name) not in present:
                self.stats["waiting_sidecar"] += 1
                continue
            await self._take(office, name)

    async def _take(self, office: Office, name: str) -> None:
        store = office.store
        try:
            side = await store.read(self.requests, naming.sidecar_name(name), SIDECAR_MAX_BYTES)
            data = await store.read(self.requests, name, MAX_REQUEST_BYTES)
        except FileNotFoundError:
            return
        if parse_sidecar(side, name) != hashlib.sha256(data).hexdigest():
            # Never a partial file (writes are atomic); a retried send between its two renames can show it.
            self.stats["checksum_mismatch"] += 1
            self._mismatch[name] += 1
            if self._mismatch[name] > CHECKSUM_PATIENCE:
                await self._refuse(office, name, "checksum does not match the sidecar")
            return
        self._mismatch.pop(name, None)
        if self.rng.random() < self.faults().error_rate:
            self.stats["errors"] += 1  # the office's system failed on this file: taken on a later scan
            return
        try:
            doc = _parse(data, self.request_schema)
        except (MalformedAnswer, UnsafeAnswer) as exc:
            self.stats["invalid"] += 1
            await self._refuse(office, name, exc.message)
            return
        correlation = doc.findtext("MaYeuCau") or ""
        if correlation in self.records:
            self.stats["duplicates"] += 1  # a re-sent request: the office already has this dossier
            await _remove_pair(store, self.requests, name)
            return
        office.seq += 1
        record = Record(
            office=office.name,
            correlation=correlation,
            code=doc.findtext("SoBienNhan") or "",
            kind=doc.findtext("LoaiThuTuc") or "",
            phase=doc.findtext("GiaiDoan") or "",
            ref=f"{office.code}-{datetime.now(VN_TZ):%y}{office.seq:06d}",
            request=doc,
            document_problems=document_problems(PROCEDURES.get(doc.findtext("MaTTHC") or ""), _documents(doc)),
        )
        count_documents(self.stats, record.document_problems)
        self.records[correlation] = self.by_ref[record.ref] = record
        await _move_pair(store, self.requests, name, "taken")
        self.stats["accepted"] += 1
        self.spawn(self._process(office, record))

    async def _refuse(self, office: Office, name: str, reason: str) -> None:
        log.warning("request_refused", office=office.name, file=name, reason=reason)
        await _move_pair(office.store, self.requests, name, "refused")
        await office.store.write_atomic("refused", naming.reason_name(name), reason.encode())

    # -- processing --------------------------------------------------------------------------------

    async def _process(self, office: Office, r: Record) -> None:
        f = self.faults()
        delay = self.processing_delay + (f.latency_ms + self.rng.uniform(0, f.jitter_ms)) / 1000
        await asyncio.sleep(delay)
        silent = self.rng.random() < f.timeout_rate  # this dossier's answers all go missing
        refusal = self._refusal(office, r)
        if refusal is not None:
            await self._answer(office, r, "TU_CHOI", silent, note="Hồ sơ không được tiếp nhận", reason=refusal)
            r.finished = True
            return
        await self._answer(office, r, "DA_TIEP_NHAN", silent, note=f"Văn phòng đăng ký đất đai tiếp nhận: {r.ref}")
        if r.phase == "DANG_KY":
            await self._certificate(office, r, silent)
            return
        await asyncio.sleep(self.answer_gap)
        obligation = self._obligation(office, r)
        note = (
            "Đã chuyển thông tin địa chính đến cơ quan thuế để xác định nghĩa vụ tài chính"
            if r.phase == "KE_KHAI"
            else "Đề nghị nộp các khoản nghĩa vụ tài chính"
        )
        await self._answer(office, r, "YEU_CAU_NVTC", silent, note=note, obligation=obligation)
        if r.phase == "KE_KHAI":
            await asyncio.sleep(self.answer_gap)
            doc = Document(TRANSMITTAL, "PCTT", pdf(f"Phieu chuyen thong tin {r.code} {r.ref}"), f"{r.ref}/PCTT")
            await self._answer(
                office,
                r,
                "HOAN_THANH",
                silent,
                note="Đã chuyển thông tin; chờ cơ quan thuế và người nộp hoàn thành nghĩa vụ tài chính",
                obligation=obligation,
                cadastral=_cadastral(r.request),
                documents=(doc,),
            )
            r.finished = True
            return
        wait = self.land_faults.auto_pay_after
        if wait is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancellation on 3.11
                    await r.paid.wait()
            r.paid.set()
        await r.paid.wait()  # POST /_sim/pay
        self.stats["paid"] += 1
        await self._certificate(office, r, silent)

    def _refusal(self, office: Office, r: Record) -> str | None:
        if r.document_problems:
            return "Hồ sơ thiếu hoặc sai giấy tờ: " + "; ".join(r.document_problems)
        parcels = _texts(r.request, "DanhSachThuaDat/ThuaDat/DiaChi/MaTinh")
        provinces = {r.request.findtext("DiaBan/MaTinh"), *parcels}
        if provinces != {office.province}:
            self.stats["wrong_province"] += 1
            return f"Thửa đất không thuộc địa bàn tỉnh {office.province} của văn phòng"
        if r.phase == "DANG_KY":
            original = self.by_ref.get(r.request.findtext("MaHoSoDatDaiGoc") or "")
            if original is None or original.phase != "KE_KHAI" or original.office != office.name:
                return "Không tìm thấy hồ sơ kê khai gốc tại văn phòng"
            if not r.request.findall("DanhSachBienLai/BienLai"):
                return "Chưa có chứng từ hoàn thành nghĩa vụ tài chính"
        if self.rng.random() < self.land_faults.reject_rate:
            self.stats["rejected"] += 1
            return "Hồ sơ chưa đủ điều kiện đăng ký biến động"
        return None

    def _obligation(self, office: Office, r: Record) -> Obligation:
        area = sum((Decimal(a) for a in _texts(r.request, "DanhSachThuaDat/ThuaDat/DienTich")), Decimal(0))
        listed = int(area * UNIT_PRICE.get(office.province, DEFAULT_UNIT_PRICE))
        assessed = max(int(r.request.findtext("GiaKeKhai") or 0), listed)
        items = [("LPTB", "Lệ phí trước bạ nhà, đất", assessed * 5 // 1000)]
        if r.kind == "CHUYEN_NHUONG":
            items.append(("TNCN", "Thuế thu nhập cá nhân từ chuyển nhượng bất động sản", assessed * 2 // 100))
        received = parse_time(r.request.findtext("NgayTiepNhan") or "20000101000000")
        return Obligation(assessed, items, received + timedelta(days=30))

    async def _certificate(self, office: Office, r: Record, silent: bool) -> None:
        await asyncio.sleep(self.answer_gap)
        serial = f"AA {office.province}{office.seq:06d}"  # series letters and digits: the shape is uncertain
        gcn = Document(CERTIFICATE, "GCN", pdf(f"GCN {serial} - ho so {r.code} - {r.ref}"), serial)
        await self._answer(office, r, "HOAN_THANH", silent, note="Đã đăng ký, cấp Giấy chứng nhận", documents=(gcn,))
        r.finished = True

    # -- answers -----------------------------------------------------------------------------------

    async def _answer(self, office: Office, r: Record, status: str, silent: bool, **kw: Any) -> None:
        if self.faults().answer_delay_ms:
            await asyncio.sleep(self.faults().answer_delay_ms / 1000)
        n = len(r.answers) + 1
        a = Answer(f"{r.ref}-{n:02d}", r.correlation, r.code, r.ref, status, datetime.now(VN_TZ), **kw)
        data = answer_xml(a)
        validate(etree.fromstring(data), self.answer_schema, agency="land-simulator")  # a bug here, not a fault
        r.answers.append(a.event_id)
        name = naming.safe_name(f"answer-{r.correlation}-{n:02d}.xml")
        if silent or self.rng.random() < self.land_faults.missing_rate:
            self.stats["answers_missing"] += 1
            self.dropped.append((office, name, data))
            return
        if self.rng.random() < self.faults().malformed_rate:
            self.stats["answers_malformed"] += 1
            await self.write(office, name.replace(".xml", "-x.xml"), data[: len(data) // 2])
        await self.write(office, name, data)
        if self.rng.random() < self.land_faults.duplicate_rate:
            self.stats["answers_duplicated"] += 1
            await self.write(office, name.replace(".xml", "-r1.xml"), data)

    async def write(self, office: Office, name: str, data: bytes) -> None:
        """As the gateway expects: the sidecar first, then the data file, each written atomically."""
        await office.store.write_atomic(self.answers, naming.sidecar_name(name), sidecar_text(name, _sha(data)))
        await office.store.write_atomic(self.answers, name, data)
        self.stats["answers_written"] += 1

    async def resend(self) -> int:
        dropped, self.dropped = self.dropped, []
        for office, name, data in dropped:
            await self.write(office, name, data)
        return len(dropped)

    def pay(self, key: str) -> bool:
        r = self.by_ref.get(key) or next((x for x in self.records.values() if x.code == key), None)
        if r is None:
            return False
        r.paid.set()
        return True


def _parse(data: bytes, schema: etree.XMLSchema) -> etree._Element:
    doc = parse_xml(data, max_bytes=MAX_REQUEST_BYTES, agency="land-office")
    validate(doc, schema, agency="land-office")
    return doc


def _documents(request: etree._Element) -> list[ReceivedDocument]:
    """DanhSachTaiLieu as it came: a document whose content is not base64 arrives as nothing."""
    out = []
    for t in request.iterfind("DanhSachTaiLieu/TaiLieu"):
        try:
            content = base64.b64decode(t.findtext("NoiDung") or "", validate=True)
        except (binascii.Error, ValueError):
            content = b""
        out.append(
            ReceivedDocument.of(
                t.findtext("MaThanhPhan") or "",
                t.findtext("TenTaiLieu") or "",
                t.findtext("LoaiTep") or "",
                int(t.findtext("KichThuoc") or -1),
                t.findtext("Sha256") or "",
                content,
            )
        )
    return out


def _texts(doc: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in doc.iterfind(path)]


def _cadastral(request: etree._Element) -> etree._Element:
    out = etree.Element("DuLieuDiaChinh")
    parcels = request.find("DanhSachThuaDat")
    assert parcels is not None  # the XSD requires it
    out.append(copy.deepcopy(parcels))
    if request.findtext("GiaKeKhai"):
        etree.SubElement(out, "GiaKeKhai").text = request.findtext("GiaKeKhai")
    parties = request.find("DanhSachChuThe")
    if parties is not None:
        out.append(copy.deepcopy(parties))
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _move_pair(store: LocalFolderStore, src: str, name: str, dst: str) -> None:
    """Move a request and its sidecar; an older copy already there gets a fresh name."""
    for n in (name, naming.sidecar_name(name)):
        try:
            await store.move(src, n, dst)
        except FileExistsError:
            await store.move(src, n, dst, f"{n}.{new_token()}")
        except FileNotFoundError:
            pass


async def _remove_pair(store: LocalFolderStore, folder: str, name: str) -> None:
    await store.remove(folder, name)
    await store.remove(folder, naming.sidecar_name(name))
