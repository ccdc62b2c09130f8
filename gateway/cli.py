"""The `lienthong` command: serve, demo, conf check, deliveries, agencies, audit, simulate, keys, plugin."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.errors import ConfigError, LienthongError

CONF_ENV = "LIENTHONG_CONF"


def demo_conf() -> Path:
    """The demo's configuration: the repository's conf/demo, or the copy an installed wheel carries."""
    checkout = Path(__file__).resolve().parents[1] / "conf" / "demo"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "lienthong" / "conf" / "demo"


def _conf_dir(given: Path | None) -> Path:
    """--conf, else $LIENTHONG_CONF; never the demo's (its secrets are public)."""
    if given is not None:
        return given
    env = os.environ.get(CONF_ENV)
    if env:
        return Path(env)
    raise LienthongError(
        f"no configuration folder: give --conf DIR or set {CONF_ENV} (`lienthong init DIR` writes a starter one)"
    )


def _conf_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", type=Path, default=None, help=f"configuration folder (default: ${CONF_ENV})")


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway import logging as glog
    from gateway.app import create_app, freeze_startup_heap, reload_on_sighup
    from gateway.config import load_config
    from gateway.demo_secrets import demo_secrets_in
    from gateway.plugin_manager import load_registry
    from gateway.server import serve

    conf = _conf_dir(args.conf)
    public = demo_secrets_in(conf)
    if public and not args.demo_secrets:
        print(f"lienthong serve: {conf} uses the demo's public secrets (without --demo-secrets):", file=sys.stderr)
        for place in public:
            print(f"  {place}", file=sys.stderr)
        print("set them from the environment (NAME or NAME_FILE) or run `lienthong init DIR`", file=sys.stderr)
        return 2
    registry = load_registry()
    config = load_config(conf, registry)
    glog.configure(config.gateway.log_level)
    if args.workers > 1:
        return _serve_workers(args, conf, config)
    app = create_app(config, registry)
    app.on_startup.append(freeze_startup_heap)  # a long-running process: after every other start-up step
    reload_on_sighup(app)
    with asyncio.Runner(loop_factory=event_loop_factory(config.gateway.server.loop)) as runner:
        runner.run(serve(app, config, args.port, reuse_port=args.reuse_port))
    return 0


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The `[server] loop` chosen: None for asyncio's own."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def _serve_workers(args: argparse.Namespace, conf: Path, config: Any) -> int:
    """Several processes on one port: only on a store they can share."""
    from gateway.store.factory import sqlite_path, store_url
    from gateway.workers import Supervisor

    settings = config.gateway.store
    url = store_url(settings.url, Path(settings.path))
    if sqlite_path(url) is not None:
        print(
            "lienthong serve --workers needs a PostgreSQL store: an SQLite file is served by one process. "
            'Set [store] url = "postgresql://..." in gateway.toml (or LIENTHONG_STORE_URL); '
            "`lienthong store copy` moves an SQLite store there (docs/store.md)",
            file=sys.stderr,
        )
        return 2
    port = args.port if args.port is not None else config.gateway.server.port
    if not port:
        print("lienthong serve --workers needs a port of its own (--port or [server] port), not 0", file=sys.stderr)
        return 2
    return asyncio.run(Supervisor(conf, port, args.workers, demo_secrets=args.demo_secrets).run())


def cmd_init(args: argparse.Namespace) -> int:
    from gateway.starter import FILES, write_starter

    try:
        key = write_starter(args.dir)
    except FileExistsError as exc:
        print(f"lienthong init: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(FILES)} to {args.dir}")
    print(f"operator API key (shown once; only its hash is kept, in clients.toml): {key}")
    print(f"next: fill in what the files mark FILL IN, then `lienthong conf check {args.dir}` and")
    print(f"      `lienthong serve --conf {args.dir}` (or {CONF_ENV}={args.dir} lienthong serve)")
    return 0


def cmd_conf_diff(args: argparse.Namespace) -> int:
    """What a reload would change: DIR against the folder in use (--against, or $LIENTHONG_CONF), or with
    --url what the running gateway would change on a reload of its own folder."""
    if args.url:
        from gateway import cli_remote

        return cli_remote.run(cli_remote.conf_diff(args))
    from gateway.catalog import Catalog
    from gateway.conf_diff import config_diff
    from gateway.config import load_config
    from gateway.live import restart_needed
    from gateway.plugin_manager import load_registry

    if args.dir is None:
        raise LienthongError("give the changed folder (DIR), or --url for a running gateway's own")
    registry = load_registry()
    loaded = []
    for folder in (_conf_dir(args.against), args.dir):
        try:
            config = load_config(folder, registry)
            loaded.append((config, Catalog.build(config, registry)))
        except ConfigError as exc:
            for file, key, msg in exc.problems:
                print(f"{folder / file}: {key or '(file)'}: {msg}")
            return 1
    (old, old_catalog), (new, new_catalog) = loaded
    changes = config_diff(old, new, old_catalog, new_catalog)
    for change in changes:
        print(change.line())
    restart = restart_needed(old, new)
    if not changes:
        print("no change")
    elif restart:
        print(f"a reload would be refused: {', '.join(restart)} changed; restart the gateway to apply")
    else:
        print(f"{len(changes)} change(s); a reload (SIGHUP, POST /v1/admin/reload) applies them")
    return 0


def cmd_conf_check(args: argparse.Namespace) -> int:
    from gateway.catalog import Catalog
    from gateway.config import load_config
    from gateway.plugin_manager import load_registry
    from gateway.routing import RouteTable

    registry = load_registry()
    args.dir = _conf_dir(args.dir)
    try:
        config = load_config(args.dir, registry)
        catalog = Catalog.build(config, registry)
        RouteTable.build(config, catalog)
    except ConfigError as exc:
        for file, key, msg in exc.problems:
            print(f"{args.dir / file if not file.startswith('/') else file}: {key or '(file)'}: {msg}")
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    from gateway.kpi import load_league

    try:
        load_league(Path(args.dir))  # read at each request of the league, so it is not in the configuration
    except ValueError as exc:
        print(f"{args.dir}/{exc}")
        print("1 problem(s) found", file=sys.stderr)
        return 1
    print(
        f"{args.dir}: ok: {len(config.clients)} clients, {len(config.agencies)} agencies, "
        f"{len(config.routes)} routes, {len(catalog.procedures)} procedures, {len(config.bundles)} bundles, "
        f"{len(config.calendar.day_off) + len(config.calendar.working_day)} calendar days"
    )
    return 0


@contextlib.asynccontextmanager
async def _configured(conf: Path | None, store_path: Path | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """A configuration and its store (or the file `store_path`, e.g. a copy taken elsewhere), opened beside
    a serving gateway (not exclusive: WAL lets us in), sealing what it writes with the configured audit
    key; the store is None, said on stderr, when there is none yet."""
    from gateway.checkpoints import load_key
    from gateway.store import SqliteStore
    from gateway.store.factory import make_store, sqlite_path, store_url

    if store_path is not None and conf is None and not os.environ.get(CONF_ENV):
        # A store file given and no configuration: read it as it is (no audit key to seal with).
        if not await asyncio.to_thread(store_path.exists):
            print(f"no store at {store_path}", file=sys.stderr)
            yield None, None
            return
        bare = SqliteStore(store_path)
        await bare.open()
        try:
            yield None, bare
        finally:
            await bare.close()
        return
    config = await _config(conf)
    settings = config.gateway.store
    url = f"sqlite:///{store_path}" if store_path else store_url(settings.url, Path(settings.path))
    path = sqlite_path(url)
    if path is not None and not await asyncio.to_thread(path.exists):
        print(f"no store at {path}", file=sys.stderr)
        yield config, None
        return
    key = await asyncio.to_thread(load_key, config.gateway.audit, config.base_dir)
    store = make_store(url, audit_key=key)
    await store.open()
    try:
        yield config, store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _configured_store(conf: Path | None, store_path: Path | None = None) -> AsyncIterator[Any]:
    async with _configured(conf, store_path) as (_, store):
        yield store


async def _config(conf: Path | None) -> Any:
    from gateway.config import load_config
    from gateway.plugin_manager import load_registry

    folder = _conf_dir(conf)
    # Reading the configuration and the plugins' entry points is file work: off the event loop.
    return await asyncio.to_thread(lambda: load_config(folder, load_registry()))


def _operator() -> str:
    """Who acts from the command line, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _when(text: str, *, ago: bool = False) -> datetime:
    from gateway.maintenance import parse_when

    try:
        return parse_when(text, datetime.now(UTC), ago=ago)
    except ValueError as exc:
        raise SystemExit(f"lienthong: {exc}") from None


def _check_agency(config: Any, agency: str | None, endpoint: str | None) -> None:
    if agency is None:
        if endpoint is not None:
            raise SystemExit("lienthong: --endpoint needs --agency")
        return
    if agency not in config.agencies:
        raise SystemExit(f"lienthong: no agency named {agency!r} (known: {', '.join(config.agencies)})")
    if endpoint is not None and endpoint not in config.agencies[agency].endpoints:
        known = ", ".join(config.agencies[agency].endpoints)
        raise SystemExit(f"lienthong: agency {agency!r} has no endpoint {endpoint!r} (known: {known})")


async def _deliveries(args: argparse.Namespace) -> int:
    from gateway.store.base import AuditEntry

    since = _when(args.since, ago=True) if args.since else None
    async with _configured(args.conf) as (config, store):
        if store is None:
            return 1
        _check_agency(config, args.agency, None)
        stamp = since.timestamp() if since else None
        if args.action == "replay":
            ids = args.ids or [j.id for j in await store.jobs("dead", limit=1_000_000, agency=args.agency, since=stamp)]
            detail = {"ids": len(ids), "agency": args.agency, "since": since.isoformat() if since else None}
            entry = AuditEntry(_operator(), "replay", "allowed", "cli", detail={k: v for k, v in detail.items() if v})
            n = await store.replay_dead(ids, audit=entry)
            print(f"replayed {n} dead deliveries; a running gateway picks them up within a second")
            if args.wait and n:
                return await _follow(store, ids, args.wait)
        else:
            for j in await store.jobs(args.state, limit=args.limit, agency=args.agency, since=stamp):
                print(
                    f"{j.id:>6} {j.state:<8} {j.agency:<12} attempts={j.attempts} dossier={j.dossier_id} "
                    f"{j.last_error or ''}"
                )
    return 0


async def _follow(store: Any, ids: list[int], timeout: float) -> int:
    """Show replayed jobs draining until each is delivered or dead again (or the time runs out)."""
    tty = sys.stdout.isatty()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        states = Counter(j.state for j in await store.jobs(limit=len(ids), ids=ids))
        line = (
            f"  delivered {states['done']}/{len(ids)}, dead again {states['dead']}, "
            f"waiting {states['pending'] + states['leased']}"
        )
        print(f"\r{line:<80}" if tty else line, end="" if tty else "\n", flush=True)
        if states["done"] + states["dead"] == len(ids) or asyncio.get_running_loop().time() > deadline:
            print() if tty else None
            return 0 if states["done"] == len(ids) else 1
        await asyncio.sleep(1.0)


def cmd_deliveries(args: argparse.Namespace) -> int:
    if args.url:
        from gateway import cli_remote

        return cli_remote.run(cli_remote.deliveries(args))
    return asyncio.run(_deliveries(args))


async def _agencies(args: argparse.Namespace) -> int:
    from gateway.maintenance import Schedule
    from gateway.store.base import AuditEntry, Pause

    async with _configured(args.conf) as (config, store):
        if store is None:
            return 1
        if args.agencies_command == "list":
            return await _list_holds(config, store, Schedule.build(config.windows))
        _check_agency(config, args.agency, args.endpoint)
        who = _operator()
        if args.agencies_command == "pause":
            until = _when(args.until)
            if until <= datetime.now(UTC):
                raise SystemExit(f"lienthong: --until {args.until} has passed")
            reason = args.reason.strip()
            if not 1 <= len(reason) <= 500:
                raise SystemExit("lienthong: --reason says why, in 1 to 500 characters")
            pause = Pause(args.agency, args.endpoint, until.timestamp(), reason, who, time.time())
            detail = {"agency": args.agency, "until": until.isoformat(), "reason": reason}
            if args.endpoint:
                detail["endpoint"] = args.endpoint
            await store.pause(pause, AuditEntry(who, "pause", "allowed", "cli", detail=detail))
            where = f"{args.agency}/{args.endpoint}" if args.endpoint else args.agency
            print(
                f"paused {where} until {until.isoformat()}: {reason}\n"
                "a running gateway holds its deliveries within a few seconds (hold_refresh_interval)"
            )
        else:
            detail = {"agency": args.agency} | ({"endpoint": args.endpoint} if args.endpoint else {})
            entry = AuditEntry(who, "resume", "allowed", "cli", detail=detail)
            ended = await store.resume(args.agency, args.endpoint, entry)
            print(f"resumed {len(ended)} pause(s) of {args.agency}" if ended else f"{args.agency} was not paused")
    return 0


async def _list_holds(config: Any, store: Any, schedule: Any) -> int:
    now = time.time()
    pauses = {(p.agency, p.endpoint): p for p in await store.pauses()}
    for agency, conf in config.agencies.items():
        for endpoint in conf.endpoints:
            line = f"{agency}/{endpoint}:"
            pause = pauses.get((agency, endpoint)) or pauses.get((agency, None))
            window = schedule.hold(agency, endpoint, now)
            if pause is not None:
                line += f" paused until {_local(pause.until)} by {pause.by}: {pause.reason};"
            if window is not None:
                line += f" in a maintenance window until {_local(window.until)}: {window.reason};"
            upcoming = schedule.upcoming(agency, endpoint, now)
            if upcoming is not None:
                line += f" next window {_local(upcoming[0])} to {_local(upcoming[1])};"
            print(line if line.endswith(";") else line + " open to deliveries (a running gateway's breaker aside)")
    return 0


def _local(t: float) -> str:
    from contracts.calendar import VN_TZ

    return datetime.fromtimestamp(t, VN_TZ).isoformat(timespec="minutes")


def cmd_agencies(args: argparse.Namespace) -> int:
    if args.url:
        from gateway import cli_remote

        return cli_remote.run(cli_remote.agencies(args))
    return asyncio.run(_agencies(args))


async def _audit(args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return await _audit_verify(args)
    if args.audit_command == "acknowledge":
        return await _audit_acknowledge(args)
    async with _configured_store(args.conf) as store:
        if store is None:
            return 1
        for r in await store.audit_log(
            after=args.after, limit=args.limit, dossier_id=args.dossier, client_id=args.client
        ):
            detail = json.dumps(r.detail, ensure_ascii=False, sort_keys=True) if r.detail else ""
            print(
                f"{r.seq:>6} {r.at:%Y-%m-%d %H:%M:%S}Z {r.client_id:<16} {r.action:<10} {r.outcome:<7} "
                f"{r.basis:<16} dossier={r.dossier_id or '-'} {detail}".rstrip()
            )
    return 0


async def _audit_verify(args: argparse.Namespace) -> int:
    """The chain alone; or, with --checkpoints, the chain, the seals and the signed checkpoints, using
    nothing but the public key."""
    from gateway.checkpoints import load_public, read_folder, verify_log
    from gateway.config.model import AuditSettings

    if args.checkpoints is None:
        return await _audit_verify_chain(args)
    if args.public_key and args.store and args.conf is None and not os.environ.get(CONF_ENV):
        settings, base = AuditSettings(), Path(".")  # everything given: no configuration needed
    else:
        config = await _config(args.conf)
        settings, base = config.gateway.audit, config.base_dir
    try:
        verifier = await asyncio.to_thread(load_public, settings, base, args.public_key or ())
    except (OSError, ValueError) as exc:
        print(f"audit public key: {exc}", file=sys.stderr)
        return 2
    if verifier is None:
        print("give the audit public key: --public-key, or [audit] public_key_file", file=sys.stderr)
        return 2
    checkpoints, unreadable = await asyncio.to_thread(read_folder, args.checkpoints)
    async with _configured_store(args.conf, args.store) as store:
        if store is None:
            return 1
        verdict = await verify_log(store, verifier, checkpoints)
    chain = verdict.chain
    others = f"; {chain.other_keys} of other keys not checked" if chain.other_keys else ""
    print(f"checkpoints: {len(chain.valid)} valid in {args.checkpoints} (key {verifier.key_id}{others})")
    for ack in chain.acknowledgements:
        print(f"acknowledged at {ack.at} (checkpoint #{ack.number}): {ack.body.get('reason')}")
        for found in ack.body.get("found", []):
            print(f"  - {found}")
    problems = unreadable + verdict.problems
    seq, digest = verdict.head
    if problems:
        print(f"audit log: {len(problems)} problem(s) ({verdict.check.checked:,} records walked):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    last = chain.last
    print(f"audit log: {seq:,} records, chain, seals and checkpoints intact")
    print(f"head: record {seq}, hash {digest}")
    if last is not None:
        print(f"last checkpoint: #{last.number} at {last.at}, record {last.seq} ({seq - last.seq} written since)")
    return 0


async def _audit_verify_chain(args: argparse.Namespace) -> int:
    async with _configured_store(args.conf, args.store) as store:
        if store is None:
            return 1
        check = await store.verify_audit()
        if not check.ok:
            print(
                f"audit log: record {check.first_bad} does not verify: {check.reason} "
                f"({check.checked:,} records walked)"
            )
            return 1
        print(f"audit log: {check.checked:,} records, chain intact")
        if check.checked:
            seq, digest = await store.audit_head()
            # Records cut off the end leave no trace in the chain: the signed checkpoints show them.
            print(f"head: record {seq}, hash {digest}")
    return 0


async def _audit_acknowledge(args: argparse.Namespace) -> int:
    from gateway.checkpoints import Checkpointer, load_earlier

    async with _configured_store(args.conf) as store:
        if store is None:
            return 1
        config = await _config(args.conf)
        if store.audit_key is None:
            print("no audit key is configured ([audit] signing_key_file)", file=sys.stderr)
            return 2
        settings = config.gateway.audit
        earlier = await asyncio.to_thread(load_earlier, settings, config.base_dir)
        checkpointer = Checkpointer(
            store, store.audit_key, Path(settings.checkpoint_dir), settings.checkpoint_interval, earlier
        )
        ack = await checkpointer.acknowledge(args.reason)
    if ack is None:
        print("the audit log matches its last checkpoint: nothing to acknowledge")
        return 0
    print(f"acknowledged as checkpoint #{ack.number}: record {ack.seq}, hash {ack.head}")
    for found in ack.body["found"]:
        print(f"  - {found}")
    return 0


def _write_key_pair(out: Path) -> tuple[Any, str, Path] | None:
    """A new Ed25519 key at `out` (0600, never over an existing file) and its public half beside it
    (`out.pub`): (the key, the public key's text, where it went); None when `out` exists."""
    from gateway.store.seals import new_key, public_text

    if out.exists():
        print(f"{out} exists: not overwritten", file=sys.stderr)
        return None
    key = new_key()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.pem())
    public = public_text(key.verifier.public)
    pub_path = out.with_name(out.name + ".pub")
    pub_path.write_text(public + "\n", encoding="ascii")
    return key, public, pub_path


def cmd_audit_keygen(args: argparse.Namespace) -> int:
    made = _write_key_pair(args.out)
    if made is None:
        return 2
    _, public, pub_path = made
    print(f"audit key written to {args.out} (keep it readable by the gateway only)")
    print(f"public key (for verifiers) in {pub_path}: {public}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a receipt or result against its detached signature, offline: exit 0 valid, 1 not, 2 unusable."""
    from gateway.signatures import load_verifier

    try:
        document = args.file.read_bytes()
        signature = args.signature.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        print(f"cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        if args.public_key:
            verifier = load_verifier(_no_signing(), Path("."), args.public_key)
        elif args.conf is not None or os.environ.get(CONF_ENV):
            from gateway.config import load_config
            from gateway.plugin_manager import load_registry

            config = load_config(_conf_dir(args.conf), load_registry())
            verifier = load_verifier(config.gateway.signing, config.base_dir)
        else:
            verifier = None  # no key given and no configuration to read one from
    except (OSError, ValueError) as exc:
        print(f"cannot load the public key: {exc}", file=sys.stderr)
        return 2
    if verifier is None:
        print("no key to verify with: give --public-key, or a --conf with a [signing] key", file=sys.stderr)
        return 2
    verdict = verifier.check(signature, document=document)
    if not verdict.valid:
        print(f"INVALID: {args.file}: {verdict.reason}")
        return 1
    c = verdict.claims
    what = f"{c.get('typ', 'document')} of dossier {c.get('dossier')}"
    if c.get("typ") == "result":
        what += f", result {c.get('index')} ({c.get('name')})"
    print(f"valid: {args.file} is the {what}, issued {c.get('issued_at')} by {c.get('iss')}")
    print(f"  sha256 {c.get('sha256')}, {c.get('size')} bytes, key {verdict.kid}")
    return 0


def _no_signing() -> Any:
    from gateway.config.model import SigningSettings

    return SigningSettings()


def cmd_signing_keygen(args: argparse.Namespace) -> int:
    from gateway.signatures import thumbprint

    made = _write_key_pair(args.out)
    if made is None:
        return 2
    key, public, pub_path = made
    print(f"signing key written to {args.out}: set [signing] key_file to it (readable by the gateway only)")
    print(f"public key (for verifiers) in {pub_path}: {public}, kid {thumbprint(key.verifier.public)}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    remote = getattr(args, "url", None)
    if remote and args.audit_command in ("list", "verify"):
        if args.audit_command == "verify" and (args.checkpoints or args.store):
            print("lienthong: --checkpoints and --store read files here: not with --url", file=sys.stderr)
            return 2
        from gateway import cli_remote

        return cli_remote.run(cli_remote.audit(args))
    return asyncio.run(_audit(args))


async def _store_copy(args: argparse.Namespace) -> int:
    from gateway.store import PostgresStore, is_postgres_url
    from gateway.store.copy import CopyRefused, copy_store
    from gateway.store.factory import redacted, sqlite_path

    source = sqlite_path(args.source)
    if source is None or not is_postgres_url(args.target):
        print("lienthong store copy --from sqlite:///path --to postgresql://...", file=sys.stderr)
        return 2
    try:
        report = await asyncio.to_thread(copy_store, source, args.target)
    except CopyRefused as exc:
        print(f"store copy refused: {exc}", file=sys.stderr)
        return 1
    for table, n in report.rows.items():
        print(f"{table}: {n} rows")
    # The copy checked where it now lives: every record's hash and link, as `audit verify` does.
    store = PostgresStore(args.target)
    await store.open()
    try:
        check = await store.verify_audit()
        counts = await store.counts()
    finally:
        await store.close()
    if not check.ok:
        print(f"audit chain of the copy: broken at seq {check.first_bad}: {check.reason}", file=sys.stderr)
        return 1
    dossiers = sum(counts["dossiers_by_status"].values())
    print(f"copied to {redacted(args.target)}: audit chain verified ({check.checked} records); dossiers: {dossiers}")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    return asyncio.run(_store_copy(args))


def cmd_simulate(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway import logging as glog
    from gateway.plugin_manager import load_registry
    from gateway.sdk.simulation import Faults, SimulatorOptions

    glog.configure(args.log_level)
    if args.kind == "portal":  # the national portal, taking pushed status changes; --secret is its API key
        from gateway.sandbox.portal_sim import create_portal_simulator

        make = create_portal_simulator
    elif args.kind == "wallet":  # the VNeID wallet service; --secret is the HMAC key shared with the gateway
        from gateway.sandbox.wallet_sim import create_wallet_simulator

        make = create_wallet_simulator
    elif args.kind == "payments":  # the national payment platform; --secret is the HMAC key, both ways
        from gateway.sandbox.payment_sim import create_payment_simulator

        make = create_payment_simulator
    else:
        kind = load_registry().agency_kinds.get(args.kind)
        if kind is None or kind.simulator is None:
            print(f"no simulator for agency kind {args.kind!r}", file=sys.stderr)
            return 2
        make = kind.simulator
    options = SimulatorOptions(
        callback_url=args.callback_url,
        callback_api_key=args.callback_key,
        secret=args.secret,
        seed=args.seed,
        processing_delay=args.processing_delay,
        faults=Faults.model_validate(json.loads(args.faults)) if args.faults else Faults(),
        settings=json.loads(args.settings) if args.settings else {},
    )
    web.run_app(make(options), host=args.host, port=args.port, access_log=None, print=None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.sandbox.demo import run_demo

    try:
        conf = args.conf or demo_conf()
        return asyncio.run(run_demo(conf, dossiers=args.dossiers, keep=args.keep, workdir=args.workdir))
    except KeyboardInterrupt:
        return 130


async def _kpis(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from contracts.calendar import VN_TZ
    from gateway import kpi

    async with _configured(args.conf) as (_, store):
        if store is None:
            return 1
        if args.kpis_command == "rebuild":
            n = await store.rebuild_kpis()
            print(f"KPIs recomputed from the events of {n} dossier(s)")
            return 0
        try:
            end = date.fromisoformat(args.to) if args.to else datetime.now(VN_TZ).date()
            start = date.fromisoformat(args.since) if args.since else end - timedelta(days=29)
        except ValueError as exc:
            raise SystemExit(f"lienthong: --from and --to are dates (YYYY-MM-DD): {exc}") from None
        rows = await store.kpi_rows(args.by, start, end, datetime.now(UTC))
        print(kpi.to_csv(args.by, kpi.report(rows)), end="")
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    return asyncio.run(_kpis(args))


def cmd_keys_new(args: argparse.Namespace) -> int:
    from gateway.auth import hash_key, new_key

    key = new_key()
    print(f"api key (give to the client, once): {key}")
    print(f'api_key_sha256 = "{hash_key(key)}"')
    return 0


def cmd_plugin_new(args: argparse.Namespace) -> int:
    from gateway.sdk.scaffold import ScaffoldError, new_plugin

    try:
        made = new_plugin(args.name, args.protocol, args.dir, title=args.title)
    except ScaffoldError as exc:
        print(f"lienthong plugin new: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {made.folder}: agency kind {made.name!r} ({made.protocol}), procedure {made.procedure}")
    print(f"  cd {made.folder} && pip install --no-deps --no-build-isolation -e . && python -m pytest")
    print("  then add its agency, route and procedure to a copy of conf/demo (see its README) and run")
    print("  lienthong demo --conf that-copy")
    return 0


def cmd_plugin_check(args: argparse.Namespace) -> int:
    from gateway.plugin_manager import load_registry
    from gateway.sdk.behaviour import behaviour_checks
    from gateway.sdk.conformance import checks

    registry = load_registry()
    kinds = args.kinds or None
    try:
        chosen = checks(kinds, registry) + ([] if args.static_only else behaviour_checks(kinds, registry))
    except LookupError as exc:
        print(f"lienthong plugin check: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for check in chosen:
        try:
            asyncio.run(check.run())
            print(f"ok    {check}")
        except AssertionError as exc:
            failed += 1
            print(f"FAIL  {check}: {exc}")
    print(f"{len(chosen) - failed} passed, {failed} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from gateway.cli_remote import add_url

    parser = argparse.ArgumentParser(prog="lienthong", description="Integration gateway for public service centres")
    parser.add_argument("--version", action="version", version=f"lienthong {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    _conf_arg(p)
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--demo-secrets",
        action="store_true",
        help="accept the repository's public demo keys and secrets (the demo and tests only)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (PostgreSQL store only; default 1)"
    )
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init", help="write a starter configuration folder (an operator key and keys generated)")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="run simulators and the gateway on loopback and submit a batch of dossiers")
    _conf_arg(p)
    p.add_argument("--dossiers", type=int, default=60, help="size of the batch of single dossiers (default 60)")
    p.add_argument("--keep", action="store_true", help="keep the gateway and simulators running at the end (Ctrl-C)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the run's files here (each process's log, the database, metrics.prom: a scrape at the end)",
    )
    p.set_defaults(func=cmd_demo)

    conf = sub.add_parser("conf", help="configuration tools").add_subparsers(dest="conf_command", required=True)
    p = conf.add_parser("check", help="validate a configuration folder; print every error with file and key")
    p.add_argument("dir", type=Path, nargs="?", default=None, help=f"default: ${CONF_ENV}")
    p.set_defaults(func=cmd_conf_check)
    p = conf.add_parser("diff", help="what a reload would change, item by item (secrets masked)")
    p.add_argument("dir", type=Path, nargs="?", default=None, help="the changed folder")
    p.add_argument("--against", type=Path, default=None, help=f"the folder in use (default: ${CONF_ENV})")
    add_url(p)
    p.set_defaults(func=cmd_conf_diff)

    p = sub.add_parser("deliveries", help="list or replay deliveries to agencies")
    p.add_argument("action", choices=["list", "replay"])
    _conf_arg(p)
    p.add_argument("--state", choices=["pending", "leased", "done", "dead"], default=None)
    p.add_argument("--ids", type=int, nargs="*", default=None, help="replay only these job ids")
    p.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=600.0,
        default=None,
        metavar="SECONDS",
        help="follow the replayed jobs until delivered or dead again (a running gateway delivers them)",
    )
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--agency", default=None, help="only this agency's deliveries")
    p.add_argument(
        "--since",
        default=None,
        metavar="WHEN",
        help="only those dead-lettered (or changed) since: 2026-12-06T06:00+07:00, or a duration ago (2h, 1d)",
    )
    add_url(p)
    p.set_defaults(func=cmd_deliveries)

    agencies = sub.add_parser("agencies", help="pause and resume deliveries to agencies; see their holds")
    agencies_sub = agencies.add_subparsers(dest="agencies_command", required=True)
    p = agencies_sub.add_parser("pause", help="send nothing to an agency until a time (durable, audited)")
    p.add_argument("agency")
    _conf_arg(p)
    p.add_argument("--until", required=True, metavar="WHEN", help="2026-12-06T06:00+07:00, or a duration (2h)")
    p.add_argument("--reason", required=True, help="why, for the audit log and the dashboard")
    p.add_argument("--endpoint", default=None, help="only this endpoint of the agency")
    add_url(p)
    p.set_defaults(func=cmd_agencies)
    p = agencies_sub.add_parser("resume", help="end an agency's pauses: what was held goes at once")
    p.add_argument("agency")
    _conf_arg(p)
    p.add_argument("--endpoint", default=None, help="only this endpoint's pause")
    add_url(p)
    p.set_defaults(func=cmd_agencies)
    p = agencies_sub.add_parser("list", help="each endpoint's pause, current and next maintenance window")
    _conf_arg(p)
    add_url(p)
    p.set_defaults(func=cmd_agencies, agency=None, endpoint=None)

    audit = sub.add_parser("audit", help="the audit log of accesses to dossiers").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser(
        "verify", help="walk the hash chain (with --checkpoints: seals and signed checkpoints too); exit 1 on a problem"
    )
    _conf_arg(p)
    p.add_argument("--store", type=Path, default=None, help="a store file to check instead of the configured one")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="DIR", help="the exported checkpoint folder")
    p.add_argument(
        "--public-key",
        action="append",
        default=None,
        help="the audit public key (a file, or its base64); again for keys used before a rotation; "
        "default: [audit] public_key_file and earlier_public_keys",
    )
    add_url(p)
    p.set_defaults(func=cmd_audit)
    p = audit.add_parser("keygen", help="make an audit key (Ed25519) and print its public half")
    p.add_argument("--out", type=Path, required=True, help="where the private key goes (the public key beside it)")
    p.set_defaults(func=cmd_audit_keygen)
    p = audit.add_parser(
        "acknowledge", help="accept a log that no longer matches its last checkpoint, with a signed statement"
    )
    _conf_arg(p)
    p.add_argument("--reason", required=True, help="why, and what the operator did (kept in the checkpoint)")
    p.set_defaults(func=cmd_audit)
    p = audit.add_parser("list", help="print audit records, oldest first, one a line")
    _conf_arg(p)
    p.add_argument("--dossier", default=None, help="only accesses to this dossier (its id)")
    p.add_argument("--client", default=None, help="only accesses by this client")
    p.add_argument("--after", type=int, default=0, metavar="SEQ", help="only records after this one")
    p.add_argument("--limit", type=int, default=100)
    add_url(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("verify", help="check a receipt or result against its detached signature, offline")
    p.add_argument("file", type=Path, metavar="FILE", help="the receipt (JSON) or result document")
    p.add_argument("signature", type=Path, metavar="SIG", help="its detached signature (.jws)")
    _conf_arg(p)
    p.add_argument(
        "--public-key",
        action="append",
        default=None,
        help="a public key (PEM or base64 file, a JWKS from /v1/verify/keys, or base64); again for earlier keys; "
        "default: the [signing] keys of --conf",
    )
    p.set_defaults(func=cmd_verify)
    signing = sub.add_parser("signing", help="the key that signs receipts and results").add_subparsers(
        dest="signing_command", required=True
    )
    p = signing.add_parser("keygen", help="make a signing key (Ed25519) and print its public half")
    p.add_argument("--out", type=Path, required=True, help="where the private key goes (the public key beside it)")
    p.set_defaults(func=cmd_signing_keygen)

    store = sub.add_parser("store", help="the gateway's store").add_subparsers(dest="store_command", required=True)
    p = store.add_parser("copy", help="copy a whole SQLite store into an empty PostgreSQL database, then verify it")
    p.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH")
    p.add_argument("--to", dest="target", required=True, metavar="postgresql://...")
    p.set_defaults(func=cmd_store)

    p = sub.add_parser(
        "simulate",
        help="run an agency simulator, or a national system's (kind: portal, wallet, payments)",
    )
    p.add_argument("kind")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--callback-url", default="")
    p.add_argument("--callback-key", default="")
    p.add_argument("--secret", default="demo-police-shared-secret-2025")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--processing-delay", type=float, default=0.2)
    p.add_argument("--faults", default=None, help='JSON, e.g. {"error_rate": 0.1, "latency_ms": 50}')
    p.add_argument("--settings", default=None, help="JSON of simulator-specific settings")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=cmd_simulate)

    plugin = sub.add_parser("plugin", help="write and check agency plugins").add_subparsers(
        dest="plugin_command", required=True
    )
    p = plugin.add_parser("new", help="write a new plugin as a distribution of its own (pip install -e it)")
    p.add_argument("name", help="the agency kind's name, lower_snake_case (e.g. permits)")
    p.add_argument("--protocol", choices=["rest", "soap", "file"], required=True)
    p.add_argument("--dir", type=Path, default=Path("."), help="where to write lienthong-<name>/ (default: here)")
    p.add_argument("--title", default=None, help="the agency's name for operators")
    p.set_defaults(func=cmd_plugin_new)
    p = plugin.add_parser("check", help="run the conformance kits (static and behavioural) over installed plugins")
    p.add_argument("kinds", nargs="*", help="agency kinds to check (default: every installed one)")
    p.add_argument("--static-only", action="store_true", help="only what the plugin declares; start no simulator")
    p.set_defaults(func=cmd_plugin_check)

    kpis = sub.add_parser("kpis", help="centre performance figures").add_subparsers(dest="kpis_command", required=True)
    p = kpis.add_parser("report", help="print the KPIs of a period as CSV (per centre, agency, procedure or province)")
    _conf_arg(p)
    p.add_argument("--by", choices=["centre", "agency", "procedure", "province"], default="centre")
    p.add_argument("--from", dest="since", default=None, metavar="DAY", help="first local day (default: 29 days ago)")
    p.add_argument("--to", default=None, metavar="DAY", help="last local day (default: today)")
    p.set_defaults(func=cmd_kpis)
    p = kpis.add_parser("rebuild", help="recompute the KPI counters from the events (gateway stopped)")
    _conf_arg(p)
    p.set_defaults(func=cmd_kpis)

    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    p = keys.add_parser("new", help="make an API key and the hash to put in clients.toml")
    p.set_defaults(func=cmd_keys_new)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LienthongError as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
