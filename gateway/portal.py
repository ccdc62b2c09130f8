"""The national portal's side of the status feed: its records, and the pusher that syncs them to the portal.

GET /v1/feed lets the portal pull; with `[portal] push_url` set, the gateway also pushes the feed, a
batch at a time, in the portal's own protocol as OpenCPS speaks it (contracts/portal.py): a session from
the login endpoint, kept `session_ttl` seconds; then for each batch one DongBoHoSoMC call for the
dossiers the portal does not have yet (isUpdating "False"), one for those it has ("True"), and once
those are taken, one CapNhatTienDoHoSoMC call with the batch's progress records.

Every answer's error_code is read: only 0 acknowledges. Anything else is a refusal, logged with the
portal's message and retried with the usual backoff; a refusal that names a dossier (and often a field)
is kept on that dossier for an operator (Dossier.portal_refusal) until the portal takes it. The cursor
(the last seq the portal acknowledged, kept in the store) moves only when every call of the batch was
acknowledged, so a restart resumes after it and nothing refused is skipped. Delivery is at least once: a
batch whose acknowledgement was lost comes again (a create the portal already took is answered "đã tồn
tại" and is sent again as an update, as the provincial system does).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog
from pydantic import BaseModel, ValidationError

from contracts import Dossier
from contracts.dossier import PortalRefusal
from contracts.portal import (
    PortalAnswer,
    PortalDatabase,
    PortalDocument,
    PortalDossier,
    PortalFee,
    PortalIdentity,
    PortalOtherDocument,
    PortalProgress,
    PortalResult,
    PortalSupplement,
    RecordContext,
    portal_dossier,
    portal_progress,
)
from gateway.config.model import PortalSettings
from gateway.dispatcher import Backoff
from gateway.errors import StorageUnavailable
from gateway.live import Live, LiveConf
from gateway.store.base import FeedItem, Store

log = structlog.get_logger("lienthong.outbound")

CURSOR = "portal-push"
GATEWAY_NAME = "Hệ thống Liên thông"  # the gateway's own events (a deadline passed), as the portal shows them
# Statuses worth another try soon; any other 4xx means the portal refuses what we send, and only
# someone fixing a configuration or the portal helps: it is retried at the longest delay, loudly.
TRANSIENT_4XX = frozenset({408, 429})
# "Đã tồn tại" (exists already): the provincial system's sign that a create must be an update.
_EXISTS_CODES = frozenset({"3", "-3"})
_FIELDS = sorted(
    {
        name
        for model in (
            PortalDossier,
            PortalProgress,
            PortalDocument,
            PortalFee,
            PortalOtherDocument,
            PortalSupplement,
            PortalResult,
            PortalIdentity,
            PortalDatabase,
        )
        for name in model.model_fields
    },
    key=len,
    reverse=True,
)
_FIELD_RE = re.compile(r"\b(" + "|".join(_FIELDS) + r")\b")


class PortalRecords:
    """Builds the portal's records with one configuration's names and codes (one per feed page or push).

    A dossier's record is its current state, the same for each of its changes in a page: built once."""

    def __init__(self, conf: LiveConf) -> None:
        self.conf = conf
        self._dossiers: dict[str, tuple[PortalDossier, dict[str, Any]]] = {}
        config = conf.config
        # Actor -> the name the portal shows: agencies by title, centres by name.
        names = {f"agency:{a}": agency.title or a for a, agency in config.agencies.items()}
        names.update({c: client.name for c, client in config.clients.items()})
        names["gateway"] = GATEWAY_NAME
        self.names: Mapping[str, str] = names
        self.base = config.gateway.server.base_url()

    def context(self, dossier: Dossier) -> RecordContext:
        spec = self.conf.catalog.get(dossier.procedure_code)
        agency = self.conf.config.agencies.get(dossier.agency)
        base = self.base
        return RecordContext(
            sector=spec.sector if spec is not None else "",
            sector_code=(spec.sector_code or spec.sector) if spec is not None else "",
            handled_by=agency.title if agency is not None and agency.title else dossier.agency,
            names=self.names,
            databases=spec.portal_databases if spec is not None else (),
            result_link=lambda d, i: f"{base}/v1/dossiers/{d.code}/results/{i}",  # GET serves results held inline
            # GET streams every submitted document from the document store, those fetched by URL included.
            document_link=lambda d, i: f"{base}/v1/dossiers/{d.code}/attachments/{i}",
        )

    def of(self, item: FeedItem) -> tuple[PortalDossier, PortalProgress]:
        """The dossier's current record (DongBoHoSoMC) and the item's progress record (CapNhatTienDoHoSoMC)."""
        ctx = self.context(item.dossier)
        return self._dossier(item, ctx)[0], portal_progress(item.dossier, item.event, ctx)

    def _dossier(self, item: FeedItem, ctx: RecordContext) -> tuple[PortalDossier, dict[str, Any]]:
        got = self._dossiers.get(item.dossier.code)
        if got is None:
            record = portal_dossier(item.dossier, item.history, ctx)
            got = self._dossiers[item.dossier.code] = (record, record.model_dump())
        return got

    def feed_item(self, item: FeedItem) -> dict[str, Any]:
        """One item of GET /v1/feed: the records the pusher sends."""
        ctx = self.context(item.dossier)
        progress = portal_progress(item.dossier, item.event, ctx)
        return {"seq": item.event.seq, "progress": progress.model_dump(), "dossier": self._dossier(item, ctx)[1]}


class PushFailed(Exception):
    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.transient = transient
        self.retry_after = retry_after


class Refused(PushFailed):
    """The portal answered with a non-zero error_code."""

    def __init__(self, service: str, answer: PortalAnswer) -> None:
        super().__init__(f"{service} refused: error_code {answer.error_code}: {answer.message}", transient=True)
        self.service = service
        self.answer = answer

    @property
    def exists(self) -> bool:
        return str(self.answer.error_code).strip() in _EXISTS_CODES and "tồn tại" in self.answer.message.lower()


class PortalPusher:
    """Pushes the feed to the portal, one batch at a time, never skipping one."""

    def __init__(
        self,
        store: Store,
        http: aiohttp.ClientSession,
        settings: PortalSettings,
        live: Live,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        assert settings.push_url and settings.auth_url, "no push_url: no pusher"
        self.store = store
        self.http = http
        self.settings = settings
        self.url = settings.push_url
        self.live = live  # the catalog, names and titles as a reload leaves them, read at each push
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True  # [portal.tls]
        self.backoff = Backoff(settings)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._wake = asyncio.Event()
        self._session: tuple[str, float] | None = None  # the portal's session, and when we stop using it
        self.cursor = 0
        self.pushed = 0  # items acknowledged since start
        self.failures = 0
        self.refusals = 0  # answers with a non-zero error_code
        self._behind_since = time.monotonic()
        self.caught_up_at: float | None = None  # monotonic time the feed was last found empty; None: behind

    def lag(self) -> float:
        """Seconds since the pusher was last caught up with the feed; 0 while it is (for /metrics)."""
        if self.caught_up_at is not None:
            return 0.0
        return time.monotonic() - self._behind_since

    def wake(self) -> None:
        """New events were committed: look at the feed now rather than at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        failed = 0  # failed attempts in a row
        started = False
        while True:
            # Cleared before the read: events committed while it runs wake the next round.
            self._wake.clear()
            try:
                if not started:
                    self.cursor = await self.store.feed_cursor(CURSOR)
                    started = True
                    log.info("portal_push_started", url=self.url, after=self.cursor)
                items = await self.store.feed(after=self.cursor, limit=self.settings.batch)
                if not items:
                    self.caught_up_at = time.monotonic()
                    await self._idle()
                    continue
                if self.caught_up_at is not None:
                    self._behind_since, self.caught_up_at = self.caught_up_at, None
                last = items[-1].event.seq
                await self._push(items)
                await self.store.advance_feed_cursor(CURSOR, last)
                await self.store.clear_portal_refusals(sorted({i.dossier.code for i in items}))
            except asyncio.CancelledError:
                raise
            except PushFailed as exc:
                failed += 1
                self.failures += 1
                await asyncio.sleep(self._delay(exc, failed))
                continue
            except Exception as exc:
                # The store, or building an item: nothing was acknowledged, the same batch comes again.
                failed += 1
                self.failures += 1
                if not isinstance(exc, StorageUnavailable):  # a storage fault is logged once, by the store
                    log.exception("portal_push_error", after=self.cursor)
                await asyncio.sleep(self.backoff.delay(failed))
                continue
            failed = 0
            self.cursor = last
            self.pushed += len(items)

    async def _idle(self) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow the cancellation that stops us.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.interval):
                await self._wake.wait()

    def _delay(self, exc: PushFailed, failed: int) -> float:
        if not exc.transient:
            return self.settings.max_delay
        delay = self.backoff.delay(failed)
        if exc.retry_after is not None:  # the portal said when: no sooner, and never beyond our cap
            delay = max(delay, min(exc.retry_after, self.settings.max_delay))
        return delay

    # -- one batch ----------------------------------------------------------------------------------

    async def _push(self, items: list[FeedItem]) -> None:
        build = PortalRecords(self.live.current)
        records: dict[str, PortalDossier] = {}
        new: set[str] = set()
        progress: list[PortalProgress] = []
        for item in items:
            record, step = build.of(item)
            records[record.MaHoSo] = record
            progress.append(step)
            if item.history and item.history[0].seq > self.cursor:
                new.add(record.MaHoSo)  # its first event was never acknowledged: the portal has not got it
        seqs = (items[0].event.seq, items[-1].event.seq)
        creates = [r for code, r in records.items() if code in new]
        updates = [r for code, r in records.items() if code not in new]
        if creates:
            # Those an earlier push whose answer was lost had created already go again as updates.
            updates = await self._create(creates, seqs) + updates
        if updates:
            await self._call("DongBoHoSoMC", updates, seqs, updating=True)
        await self._call("CapNhatTienDoHoSoMC", progress, seqs)

    async def _create(self, records: list[PortalDossier], seqs: tuple[int, int]) -> list[PortalDossier]:
        """Create the records; returns those the portal had already ("đã tồn tại"), to be updated instead."""
        try:
            await self._call("DongBoHoSoMC", records, seqs, updating=False)
            return []
        except Refused as exc:
            if not exc.exists:
                raise
            if len(records) == 1:
                return records
            named = [r for r in records if r.MaHoSo in exc.answer.message]
            if not named:  # the portal did not say which: one at a time
                return [r for one in records for r in await self._create([one], seqs)]
            rest = [r for r in records if r not in named]
            return named + (await self._create(rest, seqs) if rest else [])

    async def _call(
        self, service: str, data: Sequence[BaseModel], seqs: tuple[int, int], *, updating: bool | None = None
    ) -> None:
        body: dict[str, Any] = {
            "session": await self._current_session(),
            "madonvi": self.settings.madonvi,
            "service": service,
        }
        if updating is not None:
            body["isUpdating"] = "True" if updating else "False"
        body["data"] = [r.model_dump() for r in data]
        fields: dict[str, Any] = {
            "op": "portal.push",
            "service": service,
            "records": len(data),
            "first": seqs[0],
            "last": seqs[1],
        }
        if updating is not None:
            fields["updating"] = updating
        answer = await self._post(self.url, body, fields)
        if answer.ok:
            return
        self.refusals += 1
        refused = Refused(service, answer)
        if not refused.exists:
            self._session = None  # it may have ended at the portal: the next call logs in again
        codes = [str(getattr(r, "MaHoSo", "")) for r in data]
        fields_named = _FIELD_RE.findall(answer.message)
        named = self._named(codes, answer.message, bool(fields_named))
        (log.warning if refused.exists else log.error)(
            "portal_refused",
            **fields,
            error_code=str(answer.error_code),
            message=answer.message[:500],
            dossiers=named[:20],
            retry="with backoff" if not refused.exists else "as an update",
        )
        if named and not refused.exists:
            refusal = PortalRefusal(
                at=datetime.now(UTC),
                service=service,
                error_code=str(answer.error_code),
                message=answer.message[:1000],
                field=next((f for f in fields_named if f != "MaHoSo"), fields_named[0] if fields_named else None),
            )
            await self.store.record_portal_refusal(named, refusal)
        raise refused

    @staticmethod
    def _named(codes: Sequence[str], message: str, names_a_field: bool) -> list[str]:
        """The dossiers a refusal is about: those its message names, or, when it names a field, the only
        dossier the call carried. A refusal naming neither (a session that ended) is about none."""
        distinct = sorted(set(codes))
        named = [c for c in distinct if c and c in message]
        return named or (distinct if names_a_field and len(distinct) == 1 else [])

    async def _current_session(self) -> str:
        now = time.monotonic()
        if self._session is not None and self._session[1] > now:
            return self._session[0]
        body = {"username": self.settings.username, "password": self.settings.password}
        assert self.settings.auth_url is not None
        answer = await self._post(self.settings.auth_url, body, {"op": "portal.login"})
        session = answer.model_extra.get("session") if answer.model_extra else None
        if not answer.ok or not isinstance(session, str) or not session:
            self.refusals += 1
            log.error("portal_login_refused", error_code=str(answer.error_code), message=answer.message[:300])
            raise Refused("login", answer)
        self._session = (session, now + self.settings.session_ttl)
        return session

    async def _post(self, url: str, body: dict[str, Any], fields: dict[str, Any]) -> PortalAnswer:
        """One call; its answer when the portal gave one (2xx with {error_code, ...}), else PushFailed."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.dstcode:
            headers["dstcode"] = self.settings.dstcode
        started = time.perf_counter()
        try:
            async with self.http.post(
                url, data=orjson.dumps(body), headers=headers, timeout=self._timeout, ssl=self.ssl
            ) as resp:
                status = resp.status
                text = await resp.text(errors="replace")
                retry_after = _seconds(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.warning("outbound", **fields, status=None, ms=ms, error=type(exc).__name__)
            raise PushFailed(type(exc).__name__, transient=True) from exc
        ms = round((time.perf_counter() - started) * 1000, 1)
        if 200 <= status < 300:
            answer = _answer(text)
            if answer is None:
                # A 2xx that is not the portal's answer (a proxy's page, a cut-off body) proves nothing.
                log.warning("outbound", **fields, status=status, ms=ms, error="malformed-answer", answer=text[:200])
                raise PushFailed("malformed answer", transient=True)
            level = "info" if answer.ok else "warning"
            getattr(log, level)("outbound", **fields, status=status, ms=ms, error_code=str(answer.error_code))
            return answer
        if status >= 500 or status in TRANSIENT_4XX:
            log.warning("outbound", **fields, status=status, ms=ms, answer=text[:200])
            raise PushFailed(f"HTTP {status}", transient=True, retry_after=retry_after)
        log.error(
            "outbound",
            **fields,
            status=status,
            ms=ms,
            answer=text[:500],
            error="refused",
            retry_in=self.settings.max_delay,
            hint="the portal refuses this batch; nothing is skipped: check push_url, auth_url and the credentials",
        )
        raise PushFailed(f"HTTP {status}", transient=False)


def _answer(text: str) -> PortalAnswer | None:
    """The portal's answer: a JSON object with error_code (both sources read it on every answer)."""
    try:
        return PortalAnswer.model_validate_json(text)
    except ValidationError:
        return None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: our own backoff will do
