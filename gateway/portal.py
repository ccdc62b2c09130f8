"""The national portal's side of the status feed: its items, and the pusher that POSTs them to the portal.

GET /v1/feed lets the portal pull; with `[portal] push_url` set, the gateway also pushes the same items
in commit order, a batch at a time: {"items": [...], "next_after": seq}. The cursor (the last seq the
portal acknowledged with a 2xx) is kept in the store, so a restart resumes after it. Delivery is at
least once: a batch whose acknowledgement was lost is pushed again, and the portal upserts by MaHoSo.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
import structlog

from contracts.portal import portal_dossier, portal_progress
from gateway.catalog import Catalog
from gateway.config.model import AgencyConf, PortalSettings
from gateway.dispatcher import Backoff
from gateway.errors import StorageUnavailable
from gateway.live import Live
from gateway.store.base import FeedItem, Store

log = structlog.get_logger("lienthong.outbound")

CURSOR = "portal-push"
# Statuses worth another try soon; any other 4xx means the portal refuses what we send, and only
# someone fixing a configuration or the portal helps: it is retried at the longest delay, loudly.
TRANSIENT_4XX = frozenset({408, 429})


def feed_item(item: FeedItem, catalog: Catalog, agencies: Mapping[str, AgencyConf]) -> dict[str, Any]:
    """One feed item in the portal's format: the progress record (CapNhatTienDoHoSoMC) and the
    dossier's current record (DongBoHoSoMC). GET /v1/feed and the pusher send the same."""
    d = item.dossier
    spec = catalog.get(d.procedure_code)
    agency = agencies.get(d.agency)
    record = portal_dossier(
        d,
        item.history,
        sector=spec.sector if spec is not None else "",
        handled_by=agency.title if agency is not None and agency.title else d.agency,
    )
    return {
        "seq": item.event.seq,
        "progress": portal_progress(d, item.event).model_dump(),
        "dossier": record.model_dump(),
    }


class PushFailed(Exception):
    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.transient = transient
        self.retry_after = retry_after


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
        assert settings.push_url, "no push_url: no pusher"
        self.store = store
        self.http = http
        self.settings = settings
        self.url = settings.push_url
        self.live = live  # the catalog and agency titles as a reload leaves them, read at each push
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True  # [portal.tls]
        self.backoff = Backoff(settings)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._wake = asyncio.Event()
        self.cursor = 0
        self.pushed = 0  # items acknowledged since start
        self.failures = 0

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
                    await self._idle()
                    continue
                last = items[-1].event.seq
                await self._push(items, last)
                await self.store.advance_feed_cursor(CURSOR, last)
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

    async def _push(self, items: list[FeedItem], last: int) -> None:
        conf = self.live.current
        catalog, agencies = conf.catalog, conf.config.agencies
        body = orjson.dumps({"items": [feed_item(i, catalog, agencies) for i in items], "next_after": last})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key:
            headers["X-Api-Key"] = self.settings.api_key
        started = time.perf_counter()
        status: int | None = None
        fields: dict[str, Any] = {"op": "portal.push", "first": items[0].event.seq, "last": last, "items": len(items)}
        try:
            async with self.http.post(
                self.url, data=body, headers=headers, timeout=self._timeout, ssl=self.ssl
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
            if not _acknowledged(text):
                # A 2xx that is not the portal's answer (a proxy's page, a cut-off body) proves nothing.
                log.warning("outbound", **fields, status=status, ms=ms, error="malformed-answer", answer=text[:200])
                raise PushFailed("malformed answer", transient=True)
            log.info("outbound", **fields, status=status, ms=ms)
            return
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
            hint="the portal refuses this batch; nothing is skipped: check push_url and api_key",
        )
        raise PushFailed(f"HTTP {status}", transient=False)


def _acknowledged(text: str) -> bool:
    """The portal answers a push with a JSON object; an empty answer (204) is taken as one too."""
    if not text.strip():
        return True
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: our own backoff will do
