"""`lienthong demo`: every agency's simulator and the gateway on loopback, then a working day at three centres.

The simulators, look-ups and submissions come from the configuration's agencies (gateway/sandbox/
agencies.py): each agency's kind gives its simulator, its look-ups' examples, its demo dossiers and
bundles, whichever plugin provides it. On conf/demo: look-ups at three agencies; single dossiers for
residence, civil status, social insurance, tax and land from centres in three provinces (land parcels
often in another province than the centre); the three liên thông bundles, every dossier with its
documents (the larger ones uploaded first, POST /v1/documents); a land dossier for a province without an
office, and one whose declared province is not its parcel's, refused at intake; the first agency
(police) taken down midway and brought back; applicants then collect their results, some at another
centre than the one they applied at. Every status change is pushed to a national portal simulator,
which is also taken down for a moment. Progress is shown; a table of final statuses ends it, each
simulator's own count proves every dossier arrived once and with all its documents whole, the portal's
view (pulled and pushed) agrees with every dossier, and the audit chain of every access verifies.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.connector import AgencyKind
from gateway.plugin_manager import Registry, load_registry
from gateway.sandbox import citizens
from gateway.sandbox.agencies import Sandbox, sandbox
from gateway.sandbox.launcher import SimSpec, Stack
from gateway.sandbox.services_demo import run_services, service_sims
from gateway.store.seals import new_key as new_audit_key

# Plaintext keys of conf/demo/clients.toml (which holds only their hashes). Demo only.
DEMO_KEYS = {
    "centre-hanoi": "demo-centre-hanoi-key-7Qk2",
    "centre-hcm": "demo-centre-hcm-key-Vw9p",
    "centre-danang": "demo-centre-danang-key-Lm4c",
    "portal": "demo-portal-key-Zx81",
    "police-callbacks": "demo-police-callback-key-Hh3r",
    "justice-callbacks": "demo-justice-callback-key-Nb2x",
    "social-insurance-callbacks": "demo-bhxh-callback-key-Rt6w",
    "operator": "demo-operator-key-Pq5t",
}
CENTRE_PROVINCE = {"centre-hanoi": "01", "centre-hcm": "79", "centre-danang": "48"}
CENTRES = list(CENTRE_PROVINCE)
# The password the gateway logs in to the portal simulator with (conf/demo reads LIENTHONG_PORTAL_PASSWORD).
PORTAL_PUSH_KEY = "demo-portal-push-key-2025"
PORTAL_UNIT = "000.00.00.H29"  # madonvi: the demo province's code at the portal
FINAL = {9, 10}  # finished, returned
UPLOAD_FROM = 64 * 1024  # documents this large are uploaded before their dossier, smaller ones sent inline
TERMINAL_BUNDLE = {"completed", "cancelled", "action_required"}


def police_sim() -> SimSpec:
    """The police simulator reached the way conf/demo reads it from the environment (POLICE_URL,
    POLICE_SECRET), for tests that run a gateway on such a configuration without the sandbox."""
    return SimSpec(
        kind="police",
        agency="police",
        url_env="POLICE_URL",
        secret_env="POLICE_SECRET",
        secret="demo-police-shared-secret-2025",
        callback_key=DEMO_KEYS["police-callbacks"],
    )


def portal_sim() -> tuple[SimSpec, dict[str, str]]:
    """The national portal's simulator, and the environment that makes the gateway push to it."""
    from gateway.sandbox.portal_sim import LOGIN_PATH, SERVICE_PATH

    spec = SimSpec(
        kind="portal",
        agency="portal",
        url_env="PORTAL_SIM_URL",
        secret_env="LIENTHONG_PORTAL_PASSWORD",
        secret=PORTAL_PUSH_KEY,
        settings={"username": "lienthong-demo", "madonvi": PORTAL_UNIT},
    )
    env = {
        "LIENTHONG_PORTAL_URL": spec.url + SERVICE_PATH,
        "LIENTHONG_PORTAL_AUTH_URL": spec.url + LOGIN_PATH,
        "LIENTHONG_PORTAL_USER": "lienthong-demo",
        "LIENTHONG_PORTAL_UNIT": PORTAL_UNIT,
        "LIENTHONG_PORTAL_MAX_DELAY": "1.0",  # short waits between attempts: the brief outage ends in seconds
    }
    return spec, env


def demo_stack(box: Sandbox, workdir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    """The gateway on the bound copy of the configuration, every agency's simulator, the portal's, and the
    VNeID wallet's and the payment platform's (gateway/sandbox/services_demo.py)."""
    portal, portal_env = portal_sim()
    services, services_env = service_sims(box)
    env = {"LIENTHONG_AGENCY_POLL": "0.2"} | portal_env | services_env | (extra_env or {})
    return Stack(box.conf, workdir, [*box.sims, portal, *services], extra_env=env)


def audit_key_env(workdir: Path) -> dict[str, str]:
    """A fresh audit key for this run (the gateway seals its audit log and signs checkpoints with it), and
    the environment that points conf/demo at it and at the checkpoint folder."""
    key = workdir / "audit-key.pem"
    key.write_bytes(new_audit_key().pem())
    key.chmod(0o600)
    return {
        "LIENTHONG_AUDIT_SIGNING_KEY_PATH": str(key),
        "LIENTHONG_AUDIT_CHECKPOINTS": str(workdir / "audit-checkpoints"),
    }


class Progress:
    """One line rewritten in place on a terminal, a line a second otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            print(f"\r{text:<118}", end="", flush=True)
        elif force or now - self.last >= 1.0:
            print(text, flush=True)
            self.last = now

    def done(self) -> None:
        if self.tty:
            print()


@dataclass
class Batch:
    """What the demo submitted: single dossiers and bundles, each with the centre that received it."""

    dossiers: dict[str, str] = field(default_factory=dict)  # dossier id -> centre
    bundles: dict[str, str] = field(default_factory=dict)  # bundle id -> centre
    inline: int = 0  # documents sent inside their dossier
    uploaded: int = 0  # documents uploaded first, named by their dossier
    uploaded_bytes: int = 0


def configured_kinds(box: Sandbox, registry: Registry) -> list[AgencyKind]:
    """The kinds of the configuration's agencies, each once, in the configuration's order."""
    names = dict.fromkeys(a.kind for a in box.config.agencies.values())
    return [registry.agency_kinds[n] for n in names]


def plan(box: Sandbox, registry: Registry, count: int) -> list[tuple[str, dict[str, Any]]]:
    """("dossier" | "bundle", body) in a shuffled order, as a day at the counters would bring them: an
    equal share of `count` from each configured kind's demo dossiers (those whose procedure the
    configuration offers), and its demo bundles of the bundles the configuration declares."""
    kinds = configured_kinds(box, registry)
    offered = {p.code for p in box.config.procedures if p.enabled}
    items: list[tuple[str, dict[str, Any]]] = []
    for i, kind in enumerate(kinds):
        if kind.demo_dossiers is not None:
            mine = [d for d in kind.demo_dossiers(40 + i, max(1, round(count / len(kinds))) * 2)]
            mine = [d for d in mine if d["procedure_code"] in offered][: max(1, round(count / len(kinds)))]
            items += [("dossier", body) for body in mine]
        if kind.demo_bundles is not None:
            bundles = kind.demo_bundles(60 + i, max(2, count // 15))
            items += [("bundle", body) for body in bundles if body["bundle"] in box.config.bundles]
    random.Random(3).shuffle(items)
    return items


async def _post(session: aiohttp.ClientSession, url: str, centre: str, body: Any, key: str) -> tuple[int, Any]:
    headers = {"X-Api-Key": DEMO_KEYS[centre], "Idempotency-Key": key}
    async with session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _upload_large(
    session: aiohttp.ClientSession, url: str, centre: str, what: str, body: dict[str, Any], batch: Batch
) -> dict[str, Any]:
    """The body with its larger documents uploaded first (POST /v1/documents) and named by upload id, as a
    centre does with scans; the others stay inline."""

    async def taken(a: dict[str, Any]) -> dict[str, Any]:
        if a.get("content_base64") is None or a["size"] < UPLOAD_FROM:
            batch.inline += 1
            return a
        raw = base64.b64decode(a["content_base64"])
        digest = base64.b64encode(bytes.fromhex(a["sha256"])).decode()
        headers = {
            "X-Api-Key": DEMO_KEYS[centre],
            "Content-Type": a["media_type"],
            "Repr-Digest": f"sha-256=:{digest}:",
        }
        async with session.post(f"{url}/v1/documents", data=raw, headers=headers) as resp:
            up = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"upload refused: {resp.status} {up}")
        batch.uploaded += 1
        batch.uploaded_bytes += len(raw)
        return {"component_code": a["component_code"], "name": a["name"], "upload_id": up["id"]}

    if what == "bundle":
        steps = body.get("attachments", {})
        return {**body, "attachments": {k: [await taken(a) for a in v] for k, v in steps.items()}}
    return {**body, "attachments": [await taken(a) for a in body.get("attachments", [])]}


async def _get(session: aiohttp.ClientSession, url: str, centre: str) -> Any:
    async with session.get(url, headers={"X-Api-Key": DEMO_KEYS[centre]}) as resp:
        resp.raise_for_status()
        return await resp.json()


async def _sim(session: aiohttp.ClientSession, sim: SimSpec, path: str, body: Any = None) -> Any:
    method = "POST" if body is not None else "GET"
    async with session.request(method, f"{sim.url}{path}", json=body) as resp:
        return await resp.json()


async def run_demo(conf: Path, *, dossiers: int = 60, workdir: Path | None = None, keep: bool = False) -> int:
    registry = await asyncio.to_thread(load_registry)
    tmp = tempfile.TemporaryDirectory(prefix="lienthong-demo-") if workdir is None else None
    work = workdir or Path(tmp.name)  # type: ignore[union-attr]
    box = await asyncio.to_thread(sandbox, conf, work, registry)
    keys = await asyncio.to_thread(lambda: audit_key_env(work) | citizens.signing_key_env(work))
    stack = demo_stack(box, work, keys)
    print(f"Lienthong demo: working folder {work} (logs of every process are kept there)")
    t0 = time.monotonic()
    try:
        print(f"  starting {len(box.sims)} agency simulators, the national portal's and the gateway ...", flush=True)
        await stack.start_simulators()
        await stack.start_gateway()
        print(f"  gateway on {stack.gateway_url}; simulators: " + ", ".join(f"{s.agency} {s.url}" for s in stack.sims))
        print(f"  operator dashboard: {stack.gateway_url}/dashboard (operator key {DEMO_KEYS['operator']})")
        code = await _scenario(stack, box, registry, dossiers)
        await _save_metrics(stack.gateway_url, work / "metrics.prom")
        print(f"  demo took {time.monotonic() - t0:.0f} s")
        if keep:
            print(f"  still running for you to explore (Ctrl-C to stop): {stack.gateway_url}/dashboard")
            await asyncio.Event().wait()
        return code
    finally:
        await stack.stop()
        if tmp is not None:
            tmp.cleanup()


async def _save_metrics(url: str, path: Path) -> None:
    """The gateway's /metrics at the end of the run, kept in the working folder (for promtool, an operator)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/metrics", headers={"X-Api-Key": DEMO_KEYS["operator"]}) as r,
    ):
        r.raise_for_status()
        body = await r.read()
    await asyncio.to_thread(path.write_bytes, body)


async def _lookups(session: aiohttp.ClientSession, url: str, kinds: list[AgencyKind]) -> None:
    """Each configured kind's look-ups, asked with their examples, once each."""
    queries = [(spec.name, spec.example()) for kind in kinds for spec in kind.lookups if spec.example is not None]
    for name, query in queries:
        status, answer = await _post(session, f"{url}/v1/lookups/{name}", "centre-hanoi", query, f"lookup-{name}")
        print(f"  look-up {name}: {status} {answer}")


async def _out_of_jurisdiction(session: aiohttp.ClientSession, url: str, registry: Registry) -> None:
    """A land dossier for a parcel in Hải Phòng, where conf/demo has no land office; and one whose centre
    declares Hà Nội for a parcel in Đà Nẵng: the parcel decides, the declaration must agree."""
    make = registry.agency_kinds["land"].demo_dossiers
    if make is None:
        return
    body = make(99, 1)[0]
    body["jurisdiction"] = {"province": "31", "commune": "11311"}
    for parcel in body["form"]["parcels"]:
        parcel["address"] |= body["jurisdiction"]
    status, problem = await _post(session, f"{url}/v1/dossiers", "centre-hanoi", body, "demo-no-office")
    print(f"  land dossier for a parcel in Hải Phòng: {status} {problem.get('type')}: {problem.get('detail')}")
    body = make(98, 1)[0]
    body["jurisdiction"] = {"province": "01"}
    for parcel in body["form"]["parcels"]:
        parcel["address"] |= {"province": "48", "commune": "20242"}
    status, problem = await _post(session, f"{url}/v1/dossiers", "centre-hanoi", body, "demo-wrong-province")
    error = (problem.get("errors") or [{}])[0]
    where = f"{error.get('path')}: {error.get('message')}"
    print(f"  land dossier declared in Hà Nội for a parcel in Đà Nẵng: {status} {where}")


def outage_agency(box: Sandbox, registry: Registry) -> str:
    """The agency taken down midway: the first one reached over HTTP (police in conf/demo)."""
    for s in box.sims:
        if registry.agency_kinds[s.kind].protocol != "file":
            return s.agency
    return box.sims[0].agency


async def _scenario(stack: Stack, box: Sandbox, registry: Registry, count: int) -> int:
    url = stack.gateway_url
    down_agency = outage_agency(box, registry)
    police = stack.sim(down_agency)
    batch = Batch()
    kinds = configured_kinds(box, registry)
    async with aiohttp.ClientSession() as session:
        await _lookups(session, url, kinds)
        guides = await citizens.guides(session, url)
        if "land" in {k.name for k in kinds} and "land" in box.config.agencies:
            await _out_of_jurisdiction(session, url, registry)

        items = plan(box, registry, count)
        rng = random.Random(5)
        progress = Progress()
        down_at, down_for = len(items) // 3, 4.0
        down_since = 0.0
        portal_outage: asyncio.Task[None] | None = None
        for i, (what, body) in enumerate(items):
            if i == len(items) // 2:
                portal_outage = asyncio.create_task(_portal_outage(session, stack.sim("portal"), progress, 2.0))
            if i == down_at:
                await _sim(session, police, "/_sim/faults", {"down": True})
                down_since = time.monotonic()
                progress.show(f"  [{i}/{len(items)}] {down_agency} system DOWN: the gateway keeps accepting", True)
                progress.done()
            if i > down_at and down_since and time.monotonic() - down_since > down_for:
                await _sim(session, police, "/_sim/faults", {"down": False})
                down_since = 0.0
                progress.show(f"  [{i}/{len(items)}] {down_agency} system UP again: deliveries resume", force=True)
                progress.done()
            centre = rng.choice(CENTRES)
            body = await _upload_large(session, url, centre, what, body, batch)
            status, answer = await _post(session, f"{url}/v1/{what}s", centre, body, f"demo-{what}-{i}")
            if status not in (200, 202):
                raise RuntimeError(f"{what} refused: {status} {answer}")
            (batch.bundles if what == "bundle" else batch.dossiers)[answer["id"]] = centre
            progress.show(f"  submitting: {i + 1}/{len(items)} accepted ({what} {answer.get('code', answer['id'])})")
            await asyncio.sleep(0.03)
        progress.show(f"  submitted {len(batch.dossiers)} dossiers and {len(batch.bundles)} bundles", force=True)
        progress.done()
        if down_since:
            await asyncio.sleep(max(0.0, down_for - (time.monotonic() - down_since)))
            await _sim(session, police, "/_sim/faults", {"down": False})
            print(f"  {down_agency} system UP again: deliveries resume")
        if portal_outage is not None:
            await portal_outage

        final, bundles = await _follow(session, url, batch, progress)
        handover = await _hand_over(session, url, final, rng)
        steps = await asyncio.gather(
            *(
                _get(session, f"{url}/v1/dossiers/{s['dossier_id']}", batch.bundles[b["id"]])
                for b in bundles.values()
                for s in b["steps"]
                if s["delivery"] != "cancelled"
            )
        )
        stats = {s.agency: await _sim(session, s, "/_sim/stats") for s in stack.sims}
        portal = await _portal_sync(session, url, [*final.values(), *steps])
        pushed = await _portal_push(session, url, stack.sim("portal"), [*final.values(), *steps])
        audit = await _audit_check(session, url)
        receipts = await citizens.receipts(session, url, final, DEMO_KEYS)
    services = await run_services(stack, box, registry, DEMO_KEYS)  # after the counts: its dossiers are extra
    documents = (
        f"documents: {batch.inline} sent inline, {batch.uploaded} uploaded first "
        f"({batch.uploaded_bytes / 2**20:.1f} MiB), every one checked by its agency (docs ok)"
    )
    checks = [(documents, True), handover, portal, pushed, audit, guides, receipts, *services]
    return report(final, bundles, steps, stats, checks)


async def _hand_over(
    session: aiohttp.ClientSession, url: str, final: dict[str, dict[str, Any]], rng: random.Random
) -> tuple[str, bool]:
    """Applicants collect their results, a third of them at another centre than the one they applied at,
    which opens the dossier with the applicant's id (X-Applicant-Id)."""
    returned, elsewhere, refused = 0, 0, 0
    for d in final.values():
        if d["status"] != 9:
            continue
        centre = d["client_id"] if rng.random() < 0.67 else rng.choice([c for c in CENTRES if c != d["client_id"]])
        headers = {"X-Api-Key": DEMO_KEYS[centre]}
        if centre != d["client_id"]:
            applicant = d["submission"]["applicant"]
            headers["X-Applicant-Id"] = applicant.get("personal_id") or applicant["tax_code"]
        note = {"note": f"kết quả đã trả cho người nộp tại {centre}"}
        async with session.post(f"{url}/v1/dossiers/{d['id']}/return", json=note, headers=headers) as resp:
            if resp.status != 200:
                refused += 1
                continue
            final[d["id"]] = await resp.json()
        returned += 1
        elsewhere += centre != d["client_id"]
    line = f"results handed over: {returned}, {elsewhere} of them at another centre than the receiving one"
    return line + (f"; {refused} REFUSED" if refused else ""), refused == 0


async def _audit_check(session: aiohttp.ClientSession, url: str) -> tuple[str, bool]:
    check = await _get(session, f"{url}/v1/admin/audit/verify", "operator")
    ok = bool(check["ok"])
    proof = "chain, seals and signed checkpoints" if check.get("sealed") else "chain"
    state = f"{proof} intact" if ok else "BROKEN: " + "; ".join(check.get("problems") or [str(check["reason"])])
    line = f"audit log: {check['head']['seq']} records (accesses, look-ups, operators' actions), {state}"
    return line, ok


async def _portal_sync(session: aiohttp.ClientSession, url: str, dossiers: list[dict[str, Any]]) -> tuple[str, bool]:
    """The national portal pulls the status feed from the start; its view must match every dossier."""
    latest: dict[str, str] = {}
    changes, after = 0, 0
    while True:
        page = await _get(session, f"{url}/v1/feed?after={after}&limit=500", "portal")
        for item in page["items"]:
            latest[item["dossier"]["MaHoSo"]] = item["progress"]["TrangThai"]
        changes += len(page["items"])
        if not page["items"]:
            break
        after = page["next_after"]
    agree = all(latest.get(d["code"]) == str(d["status"]) for d in dossiers)  # the portal's codes are strings
    line = f"national portal: pulled {changes} status changes of {len(latest)} dossiers from /v1/feed; " + (
        "its view agrees with every dossier" if agree else "ITS VIEW DISAGREES with the gateway"
    )
    return line, agree


async def _portal_outage(session: aiohttp.ClientSession, portal: SimSpec, progress: Progress, seconds: float) -> None:
    """The national portal goes down for a moment: pushes fail and wait, nothing is lost."""
    await _sim(session, portal, "/_sim/faults", {"down": True})
    progress.show("  national portal DOWN: status changes wait in the feed", force=True)
    progress.done()
    await asyncio.sleep(seconds)
    await _sim(session, portal, "/_sim/faults", {"down": False})
    progress.show("  national portal UP again: pushes resume where the last acknowledged one ended", force=True)
    progress.done()


async def _pulled_feed(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await _get(session, f"{url}/v1/feed?after={after}&limit=1000", "portal")
        if not page["items"]:
            return items
        items += page["items"]
        after = page["next_after"]


def portal_agrees(feed: list[dict[str, Any]], view: dict[str, Any]) -> bool:
    """The portal simulator's view is the feed's: each dossier's latest record (DongBoHoSoMC) field for
    field, and every status change (CapNhatTienDoHoSoMC) once, in order."""
    latest = {it["dossier"]["MaHoSo"]: it["dossier"] for it in feed}
    statuses: dict[str, list[str]] = {}
    for it in feed:
        statuses.setdefault(it["progress"]["MaHoSo"], []).append(it["progress"]["TrangThai"])
    return bool(view["dossiers"] == latest and view["statuses"] == statuses and view["progress_records"] == len(feed))


async def _portal_push(
    session: aiohttp.ClientSession, url: str, portal: SimSpec, dossiers: list[dict[str, Any]], timeout: float = 30.0
) -> tuple[str, bool]:
    """The gateway pushed the feed to the portal simulator in the portal's protocol; once it has caught up,
    the portal's view must be the feed's, and agree with every dossier."""
    deadline = time.monotonic() + timeout
    while True:
        feed = await _pulled_feed(session, url)
        view = await _sim(session, portal, "/_sim/view")
        same = portal_agrees(feed, view)
        if same or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    stats = await _sim(session, portal, "/_sim/stats")
    records = view["dossiers"]
    agree = same and all(
        d["code"] in records and records[d["code"]]["TrangThaiHoSo"] == str(d["status"]) for d in dossiers
    )
    line = (
        f"national portal: {view['progress_records']} status changes of {len(records)} dossiers pushed to it "
        f"in {stats.get('calls', 0)} calls on {stats.get('logins', 0)} sessions ({stats.get('duplicates', 0)} "
        f"repeated, {stats.get('refused_down', 0)} refused while down, {stats.get('refused', 0)} refused); "
    ) + ("its pushed view agrees with every dossier" if agree else "ITS PUSHED VIEW DISAGREES with the gateway")
    return line, agree


async def _follow(
    session: aiohttp.ClientSession, url: str, batch: Batch, progress: Progress, timeout: float = 180.0
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Poll until every dossier is finished and every bundle settled, showing progress."""
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    bundles: dict[str, dict[str, Any]] = {}
    while True:
        got = await asyncio.gather(
            *(_get(session, f"{url}/v1/dossiers/{d}", c) for d, c in batch.dossiers.items()),
            *(_get(session, f"{url}/v1/bundles/{b}", c) for b, c in batch.bundles.items()),
        )
        final = {d["id"]: d for d in got[: len(batch.dossiers)]}
        bundles = {b["id"]: b for b in got[len(batch.dossiers) :]}
        by = Counter(d["status"] for d in final.values())
        done = sum(by[s] for s in FINAL)
        settled = sum(1 for b in bundles.values() if b["state"] in TERMINAL_BUNDLE)
        progress.show(
            f"  progress: dossiers {done}/{len(final)} finished, bundles {settled}/{len(bundles)} settled · "
            + " ".join(f"status {s}: {n}" for s, n in sorted(by.items()))
        )
        if (done == len(final) and settled == len(bundles)) or time.monotonic() > deadline:
            progress.show(f"  progress: dossiers {done}/{len(final)} finished, bundles {settled}/{len(bundles)}", True)
            progress.done()
            return final, bundles
        await asyncio.sleep(0.5)


def report(
    final: dict[str, dict[str, Any]],
    bundles: dict[str, dict[str, Any]],
    steps: list[dict[str, Any]],
    stats: dict[str, dict[str, Any]],
    checks: list[tuple[str, bool]],
) -> int:
    """The tables at the end; 0 when every dossier finished, each agency took each of its dossiers once,
    and every check passed (the national portal's view, pulled and pushed; the hand-overs; the audit chain)."""
    from contracts import DossierStatus

    def label(status: int) -> str:
        return f"{status} {DossierStatus(status).label}"

    print()
    print(f"  {'centre':<16} {'dossiers':>8} {'provinces':>9}  final statuses")
    for centre in CENTRES:
        mine = [d for d in final.values() if d["client_id"] == centre]
        by = Counter(label(d["status"]) for d in mine)
        provinces = {d["submission"]["jurisdiction"]["province"] for d in mine}
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(by.items()))
        print(f"  {centre:<16} {len(mine):>8} {len(provinces):>9}  {statuses}")

    print()
    print(f"  {'bundle':<28} {'count':>5}  states  (steps finished)")
    for name, group in sorted(_group(bundles.values(), "bundle").items()):
        states = Counter(b["state"] for b in group)
        finished_steps = Counter(s["step"] for b in group for s in b["steps"] if s["status"] in FINAL)
        print(
            f"  {name:<28} {len(group):>5}  "
            + ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))
            + "  ("
            + ", ".join(f"{k}: {v}" for k, v in finished_steps.items())
            + ")"
        )

    # Every dossier the gateway routed, single or bundle step, against what each agency counted once, and
    # against the dossiers it found with every document the procedure requires, whole (docs ok).
    routed: Counter[str] = Counter(d["agency"] for d in (*final.values(), *steps))
    print()
    print(
        f"  {'agency':<18} {'routed':>6} {'received':>8} {'docs ok':>7} {'repeats':>7} {'refused':>7}"
        "  (docs ok: dossiers whose every document arrived whole;"
    )
    print("  " + " " * 60 + "repeats: retried deliveries the agency de-duplicated)")
    ok = True
    for agency, n in sorted(routed.items()):
        s = stats.get(agency, {})
        got = int(s.get("accepted", 0))
        docs = int(s.get("documents_ok", 0))
        ok &= got == n and docs == n and not s.get("documents_refused")
        print(f"  {agency:<18} {n:>6} {got:>8} {docs:>7} {s.get('duplicates', 0):>7} {s.get('refused_down', 0):>7}")

    land = [d for d in (*final.values(), *steps) if d["agency"] == "land"]
    if land:
        away = sum(1 for d in land if d["submission"]["jurisdiction"]["province"] != CENTRE_PROVINCE[d["client_id"]])
        offices = Counter(d["endpoint"] for d in land)
        print(
            f"  land: {away} of {len(land)} parcels lay in another province than the receiving centre; each went"
            " to its province's office (" + ", ".join(f"{k}: {v}" for k, v in sorted(offices.items())) + ")"
        )

    finished = sum(1 for d in final.values() if d["status"] in FINAL)
    completed = sum(1 for b in bundles.values() if b["state"] == "completed")
    attempts = Counter(d["delivery"]["attempts"] for d in final.values() if d.get("delivery"))
    print()
    print(f"  single dossiers: {len(final)} accepted, {finished} finished; bundles: {len(bundles)}, {completed} done")
    print("  delivery attempts per dossier: " + ", ".join(f"{a}x: {n}" for a, n in sorted(attempts.items())))
    for line, passed in checks:
        print(f"  {line}")
        ok &= passed
    ok &= finished == len(final) and completed == len(bundles)
    print(
        "  RESULT: "
        + (
            "all delivered with all their documents, none twice"
            if ok
            else "INCOMPLETE: see the logs in the working folder"
        )
    )
    return 0 if ok else 1


def _group(items: Any, key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(item[key], []).append(item)
    return out
