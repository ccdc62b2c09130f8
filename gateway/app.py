"""The application factory. Resources are opened in cleanup_ctx and closed in reverse order."""

from __future__ import annotations

import asyncio
import functools
import gc
import signal
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from contracts.calendar import add_working_days, preload
from gateway import live, wallet
from gateway.api import (
    admin,
    appointments,
    bundles,
    callbacks,
    dashboard,
    documents,
    dossiers,
    feed,
    kpis,
    lookups,
    meta,
    payments,
    procedures,
    public,
    receipts,
)
from gateway.api import transactions as transaction_browser
from gateway.api.access import PROOF_GUARD, ProofGuard
from gateway.api.keys import (
    CHECKPOINTER,
    CONNECTORS,
    DISPATCHER,
    DOCUMENT_INTAKE,
    DOCUMENTS,
    GATE,
    HTTP,
    INTAKE,
    LIVE,
    METRICS,
    PAYMENTS,
    PORTAL_PUSHER,
    RATE_LIMITS,
    READ_DOCUMENTS,
    REGISTRY,
    STORE,
    TOKEN_KEYS,
    UPLOADS,
)
from gateway.api.middleware import request_context
from gateway.breaker import Breakers
from gateway.checkpoints import Checkpointer, load_earlier, load_key
from gateway.config import Config, load_config
from gateway.connector import Connector, ConnectorContext
from gateway.connector_state import StoreConnectorState
from gateway.dispatcher import Dispatcher, poll_agency, sweep_deadlines
from gateway.documents import FilesystemDocumentStore
from gateway.documents.delivery import DeliveryDocuments
from gateway.documents.fetch import UrlFetcher
from gateway.documents.intake import DocumentIntake
from gateway.documents.rules import limits_for
from gateway.documents.sweep import sweep_documents
from gateway.documents.tiered import Documents
from gateway.errors import ConfigError
from gateway.gate import Gate
from gateway.intake import Intake
from gateway.live import Live, LiveConf
from gateway.maintenance import Holds
from gateway.metrics import Metrics
from gateway.payments import CALLBACK_PATH, PaymentPlatform, reconcile
from gateway.plugin_manager import Registry, load_registry
from gateway.portal import PortalPusher
from gateway.ratelimit import RateLimits
from gateway.retention import run_retention
from gateway.store import SqliteStore
from gateway.store.factory import make_store, store_url
from gateway.tasks import cancel_and_wait
from gateway.tls import OutboundTLS, client_context
from gateway.tokens import KeySets
from gateway.tracing import correlation_middleware

log = structlog.get_logger("lienthong")
CLOSE_TIMEOUT = 5.0
DELIVERY_DOCUMENTS = web.AppKey("delivery_documents", DeliveryDocuments)
SIGHUP_ACTOR = "signal:SIGHUP"  # who a reload by signal is audited as (whoever may signal the process)


def public_url(config: Config, app_port: int | None = None) -> str:
    return config.gateway.server.base_url(app_port)


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    # One client session (one connection pool) for every outbound call of this app. No cookie jar: the
    # session carries calls made for every centre, and an agency's cookie must not ride along other calls.
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=128, ttl_dns_cache=300)
    # Every call carries the correlation id and a W3C traceparent (gateway/tracing.py).
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        middlewares=(correlation_middleware,),
    ) as session:
        app[HTTP] = session
        yield


def store_path(config: Config) -> Path:
    path = Path(config.gateway.store.path)
    return path if path.is_absolute() else Path.cwd() / path


def documents_path(config: Config) -> Path:
    """`[documents] path`, or a `documents` folder beside the database."""
    configured = config.gateway.documents.path
    if not configured:
        return store_path(config).parent / "documents"
    path = Path(configured)
    return path if path.is_absolute() else Path.cwd() / path


async def _token_keys(app: web.Application) -> AsyncIterator[None]:
    """The issuers' keys; those behind a URL are fetched now, so the first token does not wait for them."""
    keys = KeySets(app[HTTP])
    app[TOKEN_KEYS] = keys
    issuers = [i for i in app[LIVE].current.config.issuers.values() if i.jwks_url]
    await asyncio.gather(*(keys.fetch(i) for i in issuers))
    yield


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[LIVE].current.config.gateway.store
    audit = app[LIVE].current.config.gateway.audit
    key = await asyncio.to_thread(load_key, audit, app[LIVE].current.config.base_dir)
    store = make_store(
        store_url(settings.url, store_path(app[LIVE].current.config)),
        batch_max=settings.batch_max,
        exclusive=True,
        audit_key=key,
        group_commit_wait=settings.group_commit_wait,
        lookup_record_wait=settings.lookup_record_wait,
    )
    await store.open()
    released = 0 if store.shared else await store.release_leases()
    if released:
        log.info("leases_released", jobs=released)
    store.use_calendar(lambda: app[LIVE].current.calendar)  # a reload of calendar.toml reaches the store too
    app[STORE] = store
    try:
        yield
    finally:
        await store.close()


async def _documents(app: web.Application) -> AsyncIterator[None]:
    """The document store, what intake does with documents, and the sweep of expired uploads."""
    config = app[LIVE].current.config
    settings = config.gateway.documents
    documents = FilesystemDocumentStore(documents_path(config))
    await documents.open()
    fetcher = UrlFetcher(app[HTTP], settings.fetch, documents)
    app[DOCUMENTS] = documents
    app[READ_DOCUMENTS] = reading = Documents(app[STORE], documents)
    app[DOCUMENT_INTAKE] = taking = DocumentIntake(app[STORE], documents, fetcher, settings)
    app[UPLOADS] = asyncio.Semaphore(config.gateway.limits.uploads_in_progress)
    app[INTAKE] = Intake(
        app[STORE],
        app[LIVE],
        config.gateway.limits.max_inline_attachment_bytes,
        taking,
        in_progress=config.gateway.limits.submissions_in_progress,
    )

    def max_bytes(procedure: str, component: str) -> int:
        return limits_for(settings, app[LIVE].current.catalog.get(procedure), component).max_bytes

    app[DELIVERY_DOCUMENTS] = DeliveryDocuments(reading, fetcher, max_bytes)
    sweep = asyncio.create_task(sweep_documents(app[STORE], documents, settings), name="documents-sweep")
    sweep.add_done_callback(_report_end)
    try:
        yield
    finally:
        await cancel_and_wait([sweep], what="documents sweep")
        await documents.close()


async def _audit_proof(app: web.Application) -> AsyncIterator[None]:
    """With an audit key: check the log against its last checkpoint (refusing to start on a log cut short,
    rewritten or appended to by someone else), then a checkpoint every interval and one at shutdown."""
    store = app[STORE]
    settings = app[LIVE].current.config.gateway.audit
    if not isinstance(store, SqliteStore) or store.audit_key is None:
        yield
        return
    base = app[LIVE].current.config.base_dir
    earlier = await asyncio.to_thread(load_earlier, settings, base)
    checkpointer = Checkpointer(
        store, store.audit_key, Path(settings.checkpoint_dir), settings.checkpoint_interval, earlier
    )
    await checkpointer.start()
    if not store.shared:
        await checkpointer.write(why="start")
    app[CHECKPOINTER] = checkpointer
    held = not store.shared

    async def duty() -> None:
        # On a store shared by several processes one writes the checkpoints (two would number them alike);
        # taking the role over, it continues the chain the others left in the store and the folder.
        nonlocal held
        if store.shared:
            await checkpointer.start()
            await checkpointer.write(why="start")
            held = True
        await checkpointer.run()

    task = asyncio.create_task(store.hold_role("audit-checkpoints", duty), name="audit-checkpoints")
    task.add_done_callback(_report_end)
    yield
    await cancel_and_wait([task], what="audit checkpoints")
    # After every request and task that writes audit records has stopped: the last record is covered.
    if held:
        await checkpointer.write(why="shutdown")


async def _connectors(app: web.Application) -> AsyncIterator[None]:
    config, registry = app[LIVE].current.config, app[REGISTRY]
    base = public_url(config)
    built: dict[tuple[str, str], Connector] = {}
    try:
        for a_name, agency in config.agencies.items():
            kind = registry.agency_kinds[agency.kind]
            for e_name in agency.endpoints:
                settings = config.endpoint_settings[(a_name, e_name)]
                ctx = ConnectorContext(
                    agency=a_name,
                    endpoint=e_name,
                    settings=settings,
                    http=app[HTTP],
                    callback_url=f"{base}/v1/callbacks/{a_name}",
                    documents=app[READ_DOCUMENTS],
                    state=StoreConnectorState(app[STORE], a_name, e_name),
                    ssl_context=await _client_tls(settings.tls, config),
                )
                connector = kind.connector(ctx)
                await connector.start()
                built[(a_name, e_name)] = connector
        if config.gateway.wallet is not None:  # results to the VNeID wallet go through the outbox too
            w = wallet.endpoint_settings(config.gateway.wallet)
            ctx = ConnectorContext(
                agency=wallet.AGENCY,
                endpoint=wallet.ENDPOINT,
                settings=w,
                http=app[HTTP],
                callback_url="",
                ssl_context=await _client_tls(w.tls, config),
            )
            built[(wallet.AGENCY, wallet.ENDPOINT)] = wallet.WalletConnector(ctx)
        app[CONNECTORS] = built
        yield
    finally:
        for c in reversed(list(built.values())):
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):  # a stuck agency connection must not stall shutdown
                    await c.aclose()
            except Exception:
                log.warning("connector_close_failed", agency=c.ctx.agency, endpoint=c.ctx.endpoint, exc_info=True)


async def _client_tls(tls: OutboundTLS | None, config: Config) -> ssl.SSLContext | None:
    """An endpoint's own TLS context (CAs, client certificate, pins), read off the event loop."""
    if tls is None:
        return None
    return await asyncio.to_thread(client_context, tls, config.base_dir)


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    config = app[LIVE].current.config
    settings = config.gateway.dispatcher
    live_conf = app[LIVE]
    # Breakers are learnt by each process; windows follow the configuration in use; pauses are in the store.
    connectors = app[CONNECTORS]
    gate = Gate(connectors.keys(), Breakers(settings.breaker), Holds(lambda: live_conf.current.schedule))
    await gate.refresh(app[STORE])  # pauses in force hold their agencies from the first claim after a restart
    app[GATE] = gate
    concurrency = {a: conf.concurrency for a, conf in config.agencies.items()}
    give_up_after = {a: conf.give_up_after for a, conf in config.agencies.items() if conf.give_up_after}
    if (w := config.gateway.wallet) is not None:
        concurrency[wallet.AGENCY] = w.concurrency
        if w.give_up_after:
            give_up_after[wallet.AGENCY] = w.give_up_after
    d = Dispatcher(
        app[STORE],
        app[CONNECTORS],
        concurrency,
        settings,
        prepare=app[DELIVERY_DOCUMENTS].prepare,
        gate=gate,
        give_up_after=give_up_after,
        replay_on_recovery=frozenset(a for a, conf in config.agencies.items() if conf.replay_dead_on_recovery),
        metrics=app[METRICS],
    )
    app[DISPATCHER] = d
    readings = app[METRICS].readings
    readings.gate = gate.readings
    readings.dispatcher = lambda: (d.delivered, d.failed, d.reclaimed)
    store = app[STORE]
    readings.store = lambda: (store.commits, store.writes)
    readings.in_flight = lambda: d.in_flight
    readings.claimed_ahead = d.claimed_ahead
    live_conf.on_swap.append(d.wake)  # windows may have changed
    app[STORE].on_remote_events(d.wake)  # jobs another process on the same store made or released
    tasks = [
        asyncio.create_task(d.run(), name="dispatcher"),
        asyncio.create_task(sweep_deadlines(app[STORE], settings.deadline_sweep_interval, d.wake), name="deadlines"),
        asyncio.create_task(gate.watch(app[STORE], settings.hold_refresh_interval, d.wake), name="holds"),
    ]
    for (a_name, e_name), connector in app[CONNECTORS].items():
        if a_name in config.agencies and app[REGISTRY].agency_kinds[config.agencies[a_name].kind].polls:
            # One process of those sharing the store polls each endpoint (its event-log cursor, its inbox).
            poll = functools.partial(
                poll_agency,
                app[STORE],
                a_name,
                connector,
                settings.agency_poll_interval,
                gate,
                settings.max_delay,
                metrics=app[METRICS],
            )
            role = app[STORE].hold_role(f"poll:{a_name}:{e_name}", poll)
            tasks.append(asyncio.create_task(role, name=f"poll-{a_name}-{e_name}"))
    yield
    live_conf.on_swap.remove(d.wake)
    await cancel_and_wait(tasks, what="dispatcher and pollers")
    await d.drain()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Done jobs and idempotency keys pruned by age ([retention]); stops before the store closes."""
    live_conf = app[LIVE]
    task = asyncio.create_task(
        run_retention(
            app[STORE], lambda: (list(live_conf.current.config.agencies), live_conf.current.config.gateway.retention)
        ),
        name="retention",
    )
    task.add_done_callback(_report_end)
    yield
    await cancel_and_wait([task], what="retention")


async def _portal_pusher(app: web.Application) -> AsyncIterator[None]:
    """With [portal] push_url set: push the status feed to the national portal (gateway/portal.py)."""
    settings = app[LIVE].current.config.gateway.portal
    if not settings.push_url:
        yield
        return
    tls = await _client_tls(settings.tls, app[LIVE].current.config)
    pusher = PortalPusher(app[STORE], app[HTTP], settings, app[LIVE], ssl_context=tls)
    app[PORTAL_PUSHER] = pusher
    app[METRICS].readings.portal = lambda: (pusher.pushed, pusher.failures, pusher.lag())
    app[STORE].on_events(pusher.wake)
    task = asyncio.create_task(app[STORE].hold_role("portal-push", pusher.run), name="portal-push")
    task.add_done_callback(_report_end)
    yield
    await cancel_and_wait([task], what="portal pusher")


async def _reminders(app: web.Application) -> AsyncIterator[None]:
    """The applicants' appointment reminders, written as events when their time comes."""
    settings = app[LIVE].current.config.gateway.appointments
    task = asyncio.create_task(appointments.remind(app[STORE], settings.sweep_interval), name="reminders")
    task.add_done_callback(_report_end)
    yield
    await cancel_and_wait([task], what="appointment reminders")


async def _payments(app: web.Application) -> AsyncIterator[None]:
    """With [payments]: the payment platform's client, and the reconciliation of payments without news."""
    config = app[LIVE].current.config
    settings = config.gateway.payments
    if settings is None:
        yield
        return
    platform = PaymentPlatform(
        app[HTTP],
        settings,
        f"{public_url(config)}{CALLBACK_PATH}",
        ssl_context=await _client_tls(settings.tls, config),
    )
    app[PAYMENTS] = platform
    task = asyncio.create_task(
        reconcile(app[STORE], platform, settings.reconcile_interval, settings.reconcile_after), name="payments"
    )
    task.add_done_callback(_report_end)
    yield
    await cancel_and_wait([task], what="payment reconciliation")


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_died", task=task.get_name(), exc_info=task.exception())


def _warm_up() -> None:
    """Load data that libraries read lazily from disk (holiday tables, unit lists), off the event loop."""
    from contracts.admin_units import communes

    year = datetime.now(UTC).year
    preload(range(year - 1, year + 6))
    communes()
    add_working_days(datetime.now(UTC), 1)


async def _on_startup(app: web.Application) -> None:
    await asyncio.to_thread(_warm_up)


async def freeze_startup_heap(app: web.Application) -> None:
    """Move what start-up built (plugins, WSDLs, holiday and unit tables) out of the garbage collector's
    sight, once everything has started: a full collection then walks only what requests create, instead
    of the whole heap (it was a large share of the CPU under load, and the slowest requests)."""
    gc.collect()
    gc.freeze()


def reload_on_sighup(app: web.Application) -> None:
    """`kill -HUP <pid>` reloads clients, procedures, routes and bundles (gateway/live.py); an invalid
    folder or a change that needs a restart is logged and leaves the running configuration as it was."""
    running: set[asyncio.Task[None]] = set()

    async def reload_logged() -> None:
        try:
            await admin.reload_and_audit(app, SIGHUP_ACTOR)  # logs what changed
        except (ConfigError, live.RestartNeeded) as exc:
            log.error("configuration_reload_refused", error=str(exc))
        except Exception:
            log.exception("configuration_reload_failed")

    def on_signal() -> None:
        task = asyncio.create_task(reload_logged(), name="reload")
        running.add(task)
        task.add_done_callback(running.discard)

    async def install(app: web.Application) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_signal)

    async def remove(app: web.Application) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await cancel_and_wait(set(running), what="configuration reload")

    app.on_startup.append(install)
    app.on_cleanup.append(remove)


def create_app(config: Config, registry: Registry) -> web.Application:
    app = web.Application(client_max_size=config.gateway.limits.max_body_bytes, middlewares=[request_context])
    app[LIVE] = Live(LiveConf.build(config, registry))
    app[REGISTRY] = registry
    app[METRICS] = Metrics()
    limits = config.gateway.limits
    app[PROOF_GUARD] = ProofGuard(limits.applicant_proof_failures, limits.applicant_proof_window)
    app[RATE_LIMITS] = RateLimits(config.gateway.rate_limits)
    app.on_startup.extend([_on_startup, dashboard.load_page, receipts.load])
    for module in (
        dossiers,
        documents,
        bundles,
        feed,
        procedures,
        lookups,
        appointments,
        payments,
        callbacks,
        admin,
        kpis,
        meta,
        dashboard,
        public,
        receipts,
    ):
        app.router.add_routes(module.routes)
    app.router.add_routes(transaction_browser.routes)
    # Order matters: the store and session outlive the document store, which outlives the connectors, which
    # outlive the dispatcher; the portal pusher needs only the store and the session, and stops first; the
    # audit checkpoints stop after everything that writes audit records, just before the store closes.
    app.cleanup_ctx.extend(
        [
            _http_session,
            _token_keys,
            _store,
            _audit_proof,
            _documents,
            _connectors,
            _dispatcher,
            _portal_pusher,
            _reminders,
            _payments,
            _retention,
        ]
    )
    return app


def app_from_conf(conf_dir: Path | str) -> web.Application:
    registry = load_registry()
    return create_app(load_config(conf_dir, registry), registry)
