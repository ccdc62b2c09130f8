"""XML file exchange with an agency: requests go to its outbox folder, answers are polled from an inbox.

Checksum: every file travels with a sidecar `<name>.sha256` holding `<hex digest>  <name>` (the
`sha256sum` format, so an operator can run `sha256sum -c`). We write the sidecar first and the data
file last, both atomically, so a data file that is visible is complete. An agency writing answers
must do the same; an answer whose sidecar is still missing after `checksum_grace_polls` polls is
quarantined (or accepted unverified if `require_checksum=False`).

Handler contract (read this before writing one). `poll(handler)` calls
`await handler(correlation_id, doc, name)` for each valid answer and moves the file to `processed/`
only after the handler returned. Delivery is therefore AT LEAST ONCE: if the process dies after the
handler succeeded but before the move, the next poll hands over the same file again. The handler
must de-duplicate by correlation id (or the answer's own event id):
- the same answer again  -> return normally (it was already applied; the file then goes to processed/);
- a different, conflicting answer for a finished correlation -> raise DuplicateAnswer;
- a correlation id we never sent -> raise UnknownCorrelation;
- any other AnswerRejected -> quarantined with its `reason`;
- any other exception (database down ...) -> the file stays in the inbox and is retried next poll.
A file whose name is already in processed/ is quarantined as a duplicate without calling the handler.
One poller per inbox: two pollers would each hand the same file to their handler.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from lxml import etree

from adapters.base import CheckResult, Transport
from adapters.file import naming
from adapters.file.model import (
    SIDECAR_MAX_BYTES,
    AnswerRejected,
    OutboundFile,
    PollReport,
    SentFile,
    parse_sidecar,
    sidecar_text,
)
from adapters.file.stores import FileStore, FileTooLarge, new_token
from adapters.xml import DEFAULT_MAX_BYTES, InvalidDocument, parse_xml, validate
from gateway.errors import AgencyUnavailable, MalformedAnswer, UnsafeAnswer

log = structlog.get_logger("lienthong.outbound")

Handler = Callable[[str, etree._Element, str], Awaitable[None]]
CorrelationOf = Callable[[etree._Element], str | None]


class FileExchange(Transport[OutboundFile, SentFile]):
    def __init__(
        self,
        store: FileStore,
        *,
        agency: str,
        correlation_of: CorrelationOf,
        outbox: str = "outbox",
        inbox: str = "inbox",
        processed: str = "processed",
        quarantine: str = "quarantine",
        prefix: str = "request",
        suffix: str = ".xml",
        schema: etree.XMLSchema | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        require_checksum: bool = True,
        checksum_grace_polls: int = 3,
    ) -> None:
        self.store = store
        self.agency = agency
        self.correlation_of = correlation_of
        self.outbox, self.inbox = naming.safe_folder(outbox), naming.safe_folder(inbox)
        self.processed, self.quarantine = naming.safe_folder(processed), naming.safe_folder(quarantine)
        self.prefix, self.suffix = prefix, suffix
        self.schema = schema
        self.max_bytes = max_bytes
        self.require_checksum = require_checksum
        self.checksum_grace_polls = checksum_grace_polls
        self._no_sidecar: dict[str, int] = {}  # name -> polls seen without its sidecar
        self._folders_ready: set[str] = set()

    async def _ensure(self, *folders: str) -> None:
        for folder in folders:
            if folder not in self._folders_ready:
                await self.store.ensure_folder(folder)
                self._folders_ready.add(folder)

    async def send(self, request: OutboundFile) -> SentFile:
        name = naming.request_name(request.prefix or self.prefix, request.correlation_id, self.suffix)
        digest = hashlib.sha256(request.body).hexdigest()
        started = time.perf_counter()
        try:
            await self._ensure(self.outbox)
            await self.store.write_atomic(self.outbox, naming.sidecar_name(name), sidecar_text(name, digest))
            await self.store.write_atomic(self.outbox, name, request.body)
        except (FileNotFoundError, FileExistsError) as exc:  # outbox removed under us: an outage
            log.warning("outbound", agency=self.agency, op="file.send", file=name, error=type(exc).__name__)
            self._folders_ready.discard(self.outbox)
            raise AgencyUnavailable(f"{self.agency}: cannot write {self.outbox}/{name}", agency=self.agency) from exc
        except Exception as exc:
            log.warning(
                "outbound",
                agency=self.agency,
                op="file.send",
                file=name,
                error=type(exc).__name__,
                ms=_ms(started),
            )
            raise
        log.info(
            "outbound",
            agency=self.agency,
            op="file.send",
            file=name,
            bytes=len(request.body),
            ms=_ms(started),
        )
        return SentFile(self.outbox, name, digest, len(request.body))

    async def poll(self, handler: Handler) -> PollReport:
        """Process every ready answer in the inbox once. Raises AgencyUnavailable/AgencyTimeout only
        when the store itself fails; a bad file is quarantined and the next one processed."""
        started = time.perf_counter()
        report = PollReport()
        try:
            await self._ensure(self.processed, self.quarantine)
            names = await self.store.list(self.inbox)
            present = set(names)
            for name in names:
                if name.endswith(naming.SIDECAR_SUFFIX) or naming.is_temp_name(name):
                    continue
                if not name.endswith(self.suffix):
                    report.ignored.append(name)
                    continue
                await self._one(name, present, handler, report)
            self._no_sidecar = {n: c for n, c in self._no_sidecar.items() if n in present}
        except Exception as exc:
            log.warning(
                "outbound",
                agency=self.agency,
                op="file.poll",
                error=type(exc).__name__,
                done=len(report.processed),
                ms=_ms(started),
            )
            raise
        log.info(
            "outbound",
            agency=self.agency,
            op="file.poll",
            processed=len(report.processed),
            quarantined=len(report.quarantined),
            waiting=len(report.waiting),
            failed=len(report.failed),
            refused=len(report.refused),
            ms=_ms(started),
        )
        return report

    async def _one(self, name: str, present: set[str], handler: Handler, report: PollReport) -> None:
        if not naming.is_single_component(name):
            # Only a hostile server lists such a name; moving it could touch files outside the inbox.
            log.error("inbound.refused", agency=self.agency, file=repr(name))
            report.refused.append(name)
            return
        try:
            await self._check_and_handle(name, present, handler, report)
        except _Quarantine as q:
            await self._quarantine(name, q.reason, q.detail, present, report)
        except FileNotFoundError:  # gone between list and read: someone else's business
            log.warning("inbound.vanished", agency=self.agency, file=name)

    async def _check_and_handle(self, name: str, present: set[str], handler: Handler, report: PollReport) -> None:
        if not naming.is_safe_name(name):
            raise _Quarantine("unsafe-name", f"name {name!r} is not on the allowed pattern")
        if await self.store.exists(self.processed, name):
            raise _Quarantine("duplicate", f"{name} is already in {self.processed}/")
        expected = await self._expected_digest(name, present)
        if expected is None and self.require_checksum:
            seen = self._no_sidecar[name] = self._no_sidecar.get(name, 0) + 1
            if seen > self.checksum_grace_polls:
                raise _Quarantine("checksum-missing", f"no {naming.sidecar_name(name)} after {seen} polls")
            report.waiting.append(name)
            return
        try:
            data = await self.store.read(self.inbox, name, self.max_bytes)
        except FileTooLarge as exc:
            raise _Quarantine("too-large", exc.message) from exc
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise _Quarantine("checksum-mismatch", f"sha256 of {len(data)} bytes does not match the sidecar")
        try:
            doc = parse_xml(data, max_bytes=self.max_bytes, agency=self.agency)
            if self.schema is not None:
                validate(doc, self.schema, agency=self.agency)
        except InvalidDocument as exc:
            raise _Quarantine("schema-invalid", exc.message) from exc
        except UnsafeAnswer as exc:
            raise _Quarantine("unsafe-xml", exc.message) from exc
        except MalformedAnswer as exc:
            raise _Quarantine("malformed-xml", exc.message) from exc
        try:
            correlation_id = self.correlation_of(doc)
        except Exception as exc:
            raise _Quarantine("no-correlation", f"{type(exc).__name__}: {exc}") from exc
        if not correlation_id:
            raise _Quarantine("no-correlation", "no correlation id in the answer")
        try:
            await handler(correlation_id, doc, name)
        except AnswerRejected as exc:
            raise _Quarantine(exc.reason, exc.message) from exc
        except Exception as exc:
            log.warning(
                "inbound.handler_failed",
                agency=self.agency,
                file=name,
                correlation_id=correlation_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            report.failed.append(name)
            return
        try:
            await self.store.move(self.inbox, name, self.processed)
        except FileExistsError as exc:  # processed/ got the same name meanwhile
            raise _Quarantine("duplicate", f"{name} is already in {self.processed}/") from exc
        await self._move_sidecar(name, name, self.processed, present)
        self._no_sidecar.pop(name, None)
        report.processed.append(name)
        log.info("inbound", agency=self.agency, file=name, correlation_id=correlation_id, outcome="processed")

    async def _expected_digest(self, name: str, present: set[str]) -> str | None:
        side = naming.sidecar_name(name)
        if side not in present:
            return None
        try:
            raw = await self.store.read(self.inbox, side, SIDECAR_MAX_BYTES)
        except FileTooLarge as exc:
            raise _Quarantine("checksum-unreadable", f"{side} is not a sha256 sidecar") from exc
        digest = parse_sidecar(raw, name)
        if digest is None:
            raise _Quarantine("checksum-unreadable", f"{side} is not a sha256 sidecar for {name}")
        return digest

    async def _move_sidecar(self, name: str, new_name: str, folder: str, present: set[str]) -> None:
        side = naming.sidecar_name(name)
        if side in present and naming.is_single_component(side):
            try:
                await self.store.move(self.inbox, side, folder, naming.sidecar_name(new_name))
            except FileExistsError:
                await self.store.remove(self.inbox, side)
            except FileNotFoundError:
                pass

    async def _quarantine(self, name: str, reason: str, detail: str, present: set[str], report: PollReport) -> None:
        target = naming.quarantine_name(name)
        try:
            try:
                moved = await self.store.move(self.inbox, name, self.quarantine, target)
            except FileExistsError:
                moved = await self.store.move(self.inbox, name, self.quarantine, f"{target[:120]}-dup-{new_token()}")
        except FileNotFoundError:
            log.warning("inbound.vanished", agency=self.agency, file=name)
            return
        await self._move_sidecar(name, moved, self.quarantine, present)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        text = f"file: {name!r}\nreason: {reason}\ndetail: {detail}\nagency: {self.agency}\nat: {at}\n"
        await self.store.write_atomic(self.quarantine, naming.reason_name(moved), text.encode("utf-8", "replace"))
        self._no_sidecar.pop(name, None)
        report.quarantined[name] = reason
        log.warning(
            "inbound",
            agency=self.agency,
            file=repr(name),
            outcome="quarantined",
            reason=reason,
            moved_to=f"{self.quarantine}/{moved}",
        )

    async def check(self) -> CheckResult:
        return await self.store.check()

    async def aclose(self) -> None:
        await self.store.aclose()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "store": self.store.describe(),
            "outbox": self.outbox,
            "inbox": self.inbox,
            "processed": self.processed,
            "quarantine": self.quarantine,
            "schema": self.schema is not None,
            "require_checksum": self.require_checksum,
        }


class _Quarantine(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
