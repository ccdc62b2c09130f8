"""The `lienthong` command: serve, demo, conf check, deliveries, audit, simulate, keys, plugin."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, LienthongError

DEFAULT_CONF = Path(__file__).resolve().parents[1] / "conf" / "demo"


def _conf_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", type=Path, default=DEFAULT_CONF, help="configuration folder (default: the demo)")


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway import logging as glog
    from gateway.app import create_app, freeze_startup_heap, reload_on_sighup
    from gateway.config import load_config
    from gateway.plugin_manager import load_registry

    registry = load_registry()
    config = load_config(args.conf, registry)
    glog.configure(config.gateway.log_level)
    app = create_app(config, registry)
    app.on_startup.append(freeze_startup_heap)  # a long-running process: after every other start-up step
    reload_on_sighup(app)
    port = args.port if args.port is not None else config.gateway.server.port
    server = config.gateway.server
    web.run_app(
        app, host=server.host, port=port, backlog=server.backlog, access_log=None, print=None, shutdown_timeout=5.0
    )
    return 0


def cmd_conf_check(args: argparse.Namespace) -> int:
    from gateway.catalog import Catalog
    from gateway.config import load_config
    from gateway.plugin_manager import load_registry
    from gateway.routing import RouteTable

    registry = load_registry()
    try:
        config = load_config(args.dir, registry)
        catalog = Catalog.build(config, registry)
        RouteTable.build(config, catalog)
    except ConfigError as exc:
        for file, key, msg in exc.problems:
            print(f"{args.dir / file if not file.startswith('/') else file}: {key or '(file)'}: {msg}")
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(
        f"{args.dir}: ok: {len(config.clients)} clients, {len(config.agencies)} agencies, "
        f"{len(config.routes)} routes, {len(catalog.procedures)} procedures, {len(config.bundles)} bundles"
    )
    return 0


@contextlib.asynccontextmanager
async def _configured_store(conf: Path) -> AsyncIterator[Any]:
    """The store of a configuration, opened beside a serving gateway (not exclusive: WAL lets us in);
    None, said on stderr, when there is no store yet."""
    from gateway.config import load_config
    from gateway.plugin_manager import load_registry
    from gateway.store import SqliteStore

    # Reading the configuration and the plugins' entry points is file work: off the event loop.
    config = await asyncio.to_thread(lambda: load_config(conf, load_registry()))
    path = Path(config.gateway.store.path)
    if not await asyncio.to_thread(path.exists):
        print(f"no store at {path}", file=sys.stderr)
        yield None
        return
    store = SqliteStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _deliveries(args: argparse.Namespace) -> int:
    async with _configured_store(args.conf) as store:
        if store is None:
            return 1
        if args.action == "replay":
            ids = args.ids or [j.id for j in await store.jobs("dead", limit=1_000_000)]
            n = await store.replay_dead(ids)
            print(f"replayed {n} dead deliveries; a running gateway picks them up within a second")
            if args.wait and n:
                return await _follow(store, ids, args.wait)
        else:
            for j in await store.jobs(args.state, limit=args.limit):
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
    return asyncio.run(_deliveries(args))


async def _audit(args: argparse.Namespace) -> int:
    async with _configured_store(args.conf) as store:
        if store is None:
            return 1
        if args.audit_command == "verify":
            check = await store.verify_audit()
            if not check.ok:
                print(
                    f"audit log: record {check.first_bad} does not verify: {check.reason} "
                    f"({check.checked:,} records walked)"
                )
                return 1
            print(f"audit log: {check.checked:,} records, chain intact")
            if check.checked:
                [last] = await store.audit_log(after=check.checked - 1, limit=1)
                # Records cut off the end leave no trace in the chain: a head noted elsewhere shows them.
                print(f"head: record {last.seq}, hash {last.hash}")
        else:
            for r in await store.audit_log(
                after=args.after, limit=args.limit, dossier_id=args.dossier, client_id=args.client
            ):
                detail = json.dumps(r.detail, ensure_ascii=False, sort_keys=True) if r.detail else ""
                print(
                    f"{r.seq:>6} {r.at:%Y-%m-%d %H:%M:%S}Z {r.client_id:<16} {r.action:<10} {r.outcome:<7} "
                    f"{r.basis:<16} dossier={r.dossier_id or '-'} {detail}".rstrip()
                )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    return asyncio.run(_audit(args))


def cmd_simulate(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway import logging as glog
    from gateway.plugin_manager import load_registry
    from gateway.sdk.simulation import Faults, SimulatorOptions

    glog.configure(args.log_level)
    if args.kind == "portal":  # the national portal, taking pushed status changes; --secret is its API key
        from gateway.sandbox.portal_sim import create_portal_simulator

        make = create_portal_simulator
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
        return asyncio.run(run_demo(args.conf, dossiers=args.dossiers, keep=args.keep))
    except KeyboardInterrupt:
        return 130


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
    parser = argparse.ArgumentParser(prog="lienthong", description="Integration gateway for public service centres")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    _conf_arg(p)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run simulators and the gateway on loopback and submit a batch of dossiers")
    _conf_arg(p)
    p.add_argument("--dossiers", type=int, default=60, help="size of the batch of single dossiers (default 60)")
    p.add_argument("--keep", action="store_true", help="keep the gateway and simulators running at the end (Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    conf = sub.add_parser("conf", help="configuration tools").add_subparsers(dest="conf_command", required=True)
    p = conf.add_parser("check", help="validate a configuration folder; print every error with file and key")
    p.add_argument("dir", type=Path, nargs="?", default=DEFAULT_CONF)
    p.set_defaults(func=cmd_conf_check)

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
    p.set_defaults(func=cmd_deliveries)

    audit = sub.add_parser("audit", help="the audit log of accesses to dossiers").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser("verify", help="walk the hash chain; exit 1 naming the first record that does not verify")
    _conf_arg(p)
    p.set_defaults(func=cmd_audit)
    p = audit.add_parser("list", help="print audit records, oldest first, one a line")
    _conf_arg(p)
    p.add_argument("--dossier", default=None, help="only accesses to this dossier (its id)")
    p.add_argument("--client", default=None, help="only accesses by this client")
    p.add_argument("--after", type=int, default=0, metavar="SEQ", help="only records after this one")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("simulate", help="run an agency simulator, or the national portal's (kind: portal)")
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
