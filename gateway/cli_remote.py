"""The operators' commands against a running gateway's admin API (`--url`), wherever it runs and whatever
its store: the key from LIENTHONG_API_KEY (or LIENTHONG_API_KEY_FILE), a client with the admin right.
Each action is audited by the gateway under that client. Without --url the commands open the store
directly (a stopped gateway, SQLite)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from gateway.errors import LienthongError

KEY_ENV = "LIENTHONG_API_KEY"
URL_ENV = "LIENTHONG_URL"


class RemoteError(LienthongError):
    """The gateway refused or could not be reached: its problem's title and detail."""


def api_key() -> str:
    key = os.environ.get(KEY_ENV)
    if not key and os.environ.get(f"{KEY_ENV}_FILE"):
        key = Path(os.environ[f"{KEY_ENV}_FILE"]).read_text(encoding="utf-8").strip()
    if not key:
        raise RemoteError(f"set {KEY_ENV} (or {KEY_ENV}_FILE) to an API key with the admin right")
    return key


class Admin:
    """One session to the admin API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.headers = {"X-Api-Key": api_key(), "Accept": "application/json"}
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Admin:
        self.http = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=120))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        assert self.http is not None
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.http.request(method, self.url + path, params=query, json=body) as r:
                data = await r.json(content_type=None) if r.content_length != 0 else None
                if r.status >= 400:
                    detail = data.get("detail") if isinstance(data, dict) else None
                    title = data.get("title") if isinstance(data, dict) else r.reason
                    errors = data.get("errors") if isinstance(data, dict) else None
                    fields = "; ".join(
                        f"{e.get('path')}: {e.get('message')}" for e in errors or [] if isinstance(e, dict)
                    )
                    raise RemoteError(
                        f"{method} {path}: {r.status} {title}"
                        + (f": {detail}" if detail else "")
                        + (f" ({fields})" if fields else "")
                    )
                return data
        except aiohttp.ClientError as exc:
            raise RemoteError(f"cannot reach {self.url}: {exc}") from None
        except json.JSONDecodeError:
            raise RemoteError(f"{method} {path}: the answer is not JSON (is {self.url} a Lienthong gateway?)") from None


def _job_line(j: dict[str, Any]) -> str:
    return (
        f"{j['id']:>6} {j['state']:<8} {j['agency']:<12} attempts={j['attempts']} dossier={j['dossier_id']} "
        f"{j.get('last_error') or ''}"
    )


async def deliveries(args: argparse.Namespace) -> int:
    async with Admin(args.url) as admin:
        if args.action == "list":
            params = {"state": args.state, "limit": args.limit, "agency": args.agency, "since": args.since}
            for j in (await admin.call("GET", "/v1/admin/deliveries", params=params))["items"]:
                print(_job_line(j))
            return 0
        ids = args.ids
        if not ids and args.wait:  # to follow them, the ids this replay takes
            params = {"state": "dead", "limit": 10_000, "agency": args.agency, "since": args.since}
            ids = [j["id"] for j in (await admin.call("GET", "/v1/admin/deliveries", params=params))["items"]]
        body = {"ids": ids or None, "agency": args.agency, "since": args.since}
        got = await admin.call("POST", "/v1/admin/deliveries/replay", body={k: v for k, v in body.items() if v})
        print(f"replayed {got['replayed']} dead deliveries at {admin.url}")
        if args.wait and got["replayed"] and ids:
            return await _follow(admin, ids, args.wait)
    return 0


async def _follow(admin: Admin, ids: list[int], timeout: float) -> int:
    wanted = set(ids)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        items = (await admin.call("GET", "/v1/admin/deliveries", params={"limit": 10_000}))["items"]
        states = Counter(j["state"] for j in items if j["id"] in wanted)
        print(
            f"  delivered {states['done']}/{len(ids)}, dead again {states['dead']}, "
            f"waiting {states['pending'] + states['leased']}",
            flush=True,
        )
        if states["done"] + states["dead"] >= len(ids) or asyncio.get_running_loop().time() > deadline:
            return 0 if states["done"] == len(ids) else 1
        await asyncio.sleep(1.0)


async def agencies(args: argparse.Namespace) -> int:
    async with Admin(args.url) as admin:
        command = args.agencies_command
        if command == "list":
            for i in (await admin.call("GET", "/v1/admin/agencies", params={"check": "false"}))["items"]:
                line = f"{i['agency']}/{i['endpoint']}: {i['state']}"
                if i.get("paused_until"):
                    line += f" until {i['paused_until']} by {i.get('paused_by')}: {i.get('reason')}"
                line += f"; pending {i.get('pending', 0)}, held {i.get('held', 0)}"
                print(line)
            return 0
        path = f"/v1/admin/agencies/{args.agency}/{command}"
        if command == "pause":
            body = {"until": args.until, "reason": args.reason, "endpoint": args.endpoint}
            got = await admin.call("POST", path, body={k: v for k, v in body.items() if v is not None})
            paused = got["paused"]
            print(f"paused {args.agency} until {paused['until']}: {paused['reason']} (in force at once)")
        else:
            got = await admin.call("POST", path, body={"endpoint": args.endpoint} if args.endpoint else {})
            n = got["resumed"]
            print(f"resumed {n} pause(s) of {args.agency}" if n else f"{args.agency} was not paused")
    return 0


async def audit(args: argparse.Namespace) -> int:
    async with Admin(args.url) as admin:
        if args.audit_command == "verify":
            got = await admin.call("GET", "/v1/admin/audit/verify")
            head = got["head"]
            if not got["ok"]:
                print(f"audit log: {len(got['problems'])} problem(s) ({got['checked']:,} records walked):")
                for problem in got["problems"]:
                    print(f"  - {problem}")
                return 1
            what = "chain, seals and checkpoints" if got["sealed"] else "chain"
            print(f"audit log: {got['checked']:,} records, {what} intact")
            print(f"head: record {head['seq']}, hash {head['hash']}")
            return 0
        params = {"after": args.after, "limit": args.limit, "dossier": args.dossier, "client": args.client}
        for r in (await admin.call("GET", "/v1/admin/audit", params=params))["items"]:
            detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True) if r["detail"] else ""
            print(
                f"{r['seq']:>6} {r['at'][:19].replace('T', ' ')}Z {r['client']:<16} {r['action']:<10} "
                f"{r['outcome']:<7} {r['basis']:<16} dossier={r['dossier_id'] or '-'} {detail}".rstrip()
            )
    return 0


async def conf_diff(args: argparse.Namespace) -> int:
    async with Admin(args.url) as admin:
        got = await admin.call("POST", "/v1/admin/reload", params={"dry_run": "true"})
    for line in got["lines"]:
        print(line)
    if not got["lines"]:
        print("no change")
    elif got["restart_needed"]:
        print(f"a reload would be refused: {', '.join(got['restart_needed'])} changed; restart the gateway to apply")
    else:
        print(f"{len(got['lines'])} change(s); a reload (SIGHUP, POST /v1/admin/reload) applies them")
    return 0


def add_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or None,
        help=f"a running gateway's address (default: ${URL_ENV}); the key from ${KEY_ENV}. "
        "Without it: the configured store, directly",
    )


def run(coro: Any) -> int:
    try:
        return int(asyncio.run(coro))
    except RemoteError as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return 1
