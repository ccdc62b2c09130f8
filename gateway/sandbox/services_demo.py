"""The demo's citizen-facing services (docs/services.md), after the working day at the counters:

- a referred land dossier (first certificate) books a slot at the land office, books it again with the
  same key (one booking), moves it, and cancels it;
- a residence dossier whose applicant chose the VNeID wallet finishes while the wallet is down, and is
  returned (10) into the wallet once it is back;
- a land transfer whose tax notices are paid online through the payment platform, the callback lost:
  the reconciliation finds the payment, the tax step and then the land registration go on, and the
  portal record says paid online.
Each prints what it did and gives a line (and whether it passed) for the demo's final table.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gateway.plugin_manager import Registry
from gateway.sandbox.agencies import Sandbox
from gateway.sandbox.launcher import SimSpec, Stack

CENTRE_KEYS: dict[str, str] = {}  # filled by the demo: its plaintext demo keys
CONSENT = {"given_at": "2026-12-01T09:00:00+07:00", "channel": "counter", "reference": "PDY-DEMO-0001"}
Check = tuple[str, bool]


def service_sims(box: Sandbox) -> tuple[list[SimSpec], dict[str, str]]:
    """The wallet and payment platform simulators of a demo run, and the environment that points the
    gateway at them (conf/demo's [wallet] and [payments] read it)."""
    wallet = SimSpec(
        kind="wallet",
        agency="wallet",
        url_env="WALLET_URL",
        secret_env="WALLET_SECRET",
        secret=f"sandbox-{secrets.token_urlsafe(18)}",
    )
    settle = {"tax": f"{box.sim('tax').url}/_sim/pay"} if any(s.agency == "tax" for s in box.sims) else {}
    payments = SimSpec(
        kind="payments",
        agency="payments",
        url_env="PAYMENT_URL",
        secret_env="PAYMENT_SECRET",
        secret=f"sandbox-{secrets.token_urlsafe(18)}",
        settings={"settle_urls": settle, "merchants": ["LIENTHONG"]},
    )
    env = {
        "LIENTHONG_PAY_RECONCILE_AFTER": "2",
        "LIENTHONG_PAY_RECONCILE_INTERVAL": "0.5",
        # Reminders a fortnight ahead, so that the demo's booking (within a week) gets its reminder at once.
        "LIENTHONG_REMIND_BEFORE": str(14 * 86400),
        "LIENTHONG_REMIND_SWEEP": "0.5",
    }
    return [wallet, payments], env


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, centre: str | None = None, body: Any = None, key: str = ""
) -> tuple[int, Any]:
    headers = {"X-Api-Key": CENTRE_KEYS[centre]} if centre else {}
    if key:
        headers["Idempotency-Key"] = key
    async with session.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.2)
    return found


def _in_hanoi(body: dict[str, Any]) -> dict[str, Any]:
    body["jurisdiction"] = {"province": "01", "commune": "00070"}
    for parcel in body["form"]["parcels"]:
        parcel["address"] |= body["jurisdiction"]
    return body


async def appointments(session: aiohttp.ClientSession, url: str, stack: Stack, registry: Registry) -> Check:
    make = registry.agency_kinds["land"].demo_dossiers
    if make is None:
        return "appointments: no land demo dossiers", False
    status, d = await _call(
        session, "POST", f"{url}/v1/dossiers", "centre-hanoi", _in_hanoi(make(131, 1)[0]), "svc-ref"
    )
    if status not in (200, 202):
        return f"appointments: the referred dossier was refused ({status} {d})", False
    status, slots = await _call(
        session, "GET", f"{url}/v1/dossiers/{d['code']}/appointment-slots?days=5", "centre-hanoi"
    )
    if status != 200 or len(slots["items"]) < 2:
        return f"appointments: no slots ({status} {slots})", False
    first, later = slots["items"][0], slots["items"][-1]
    body = {"slot_id": first["slot_id"], "mode": "online"}
    booked = [
        await _call(session, "POST", f"{url}/v1/dossiers/{d['code']}/appointments", "centre-hanoi", body, "svc-book")
        for _ in range(2)
    ]
    appointment = booked[0][1]
    print(
        f"  appointment: {d['code']} booked {first['slot_id']} online ({appointment.get('meeting_url')}), "
        f"with {first['officer']}"
    )

    async def reminded() -> dict[str, Any] | None:
        _, events = await _call(session, "GET", f"{url}/v1/appointments/events?kind=reminder", "centre-hanoi")
        return next((e for e in events["items"] if e["appointment_id"] == appointment["id"]), None)

    reminder = await _until(reminded, timeout=20)
    print(
        "  appointment: the applicant's reminder, read at /v1/appointments/events: "
        + (reminder["data"]["text"] if reminder else "NONE")
    )
    status, moved = await _call(
        session,
        "POST",
        f"{url}/v1/appointments/{appointment['id']}/move",
        "centre-hanoi",
        {"slot_id": later["slot_id"]},
    )
    print(
        f"  appointment: moved to {later['slot_id']} ({status}); "
        f"the same key sent twice answered {[s for s, _ in booked]}"
    )
    status_c, cancelled = await _call(
        session, "POST", f"{url}/v1/appointments/{appointment['id']}/cancel", "centre-hanoi"
    )
    async with session.get(f"{stack.sim('land').url}/_sim/appointments") as resp:
        office = [b for b in await resp.json() if b["dossier_code"] == d["code"]]
    _, events = await _call(session, "GET", f"{url}/v1/appointments/events?limit=1000", "centre-hanoi")
    kinds = [e["kind"] for e in events["items"] if e["dossier_code"] == d["code"]]
    ok = (
        [s for s, _ in booked] == [201, 200]
        and booked[1][1]["id"] == appointment["id"]
        and moved.get("slot", {}).get("slot_id") == later["slot_id"]
        and cancelled.get("state") == "cancelled"
        and len(office) == 1
        and office[0]["state"] == "cancelled"
        and reminder is not None
    )
    line = (
        f"appointment (land, referred): booked, booked again with its key (one booking at the office), moved, "
        f"cancelled ({status_c}); events {', '.join(kinds)}"
    )
    return line, ok


async def wallet(session: aiohttp.ClientSession, url: str, stack: Stack, registry: Registry) -> Check:
    make = registry.agency_kinds["police"].demo_dossiers
    sim = stack.sim("wallet").url
    if make is None:
        return "wallet: no police demo dossiers", False
    await session.post(f"{sim}/_sim/faults", json={"down": True})
    print("  wallet: the VNeID wallet service DOWN")
    body = make(171, 1)[0] | {"return_method": 2, "wallet_consent": CONSENT}
    status, d = await _call(session, "POST", f"{url}/v1/dossiers", "centre-hanoi", body, "svc-wallet")
    if status not in (200, 202):
        return f"wallet: the dossier was refused ({status} {d})", False

    async def status_is(n: int) -> dict[str, Any] | None:
        _, now = await _call(session, "GET", f"{url}/v1/dossiers/{d['id']}", "centre-hanoi")
        return now if now["status"] == n else None

    finished = await _until(lambda: status_is(9))
    await asyncio.sleep(2.0)  # the push is tried and refused while the wallet is down
    async with session.get(f"{sim}/_sim/stats") as resp:
        refused = (await resp.json()).get("refused_down", 0)
    await session.post(f"{sim}/_sim/faults", json={"down": False})
    print(f"  wallet: {d['code']} finished while the wallet was down ({refused} pushes refused); the wallet UP again")
    returned = await _until(lambda: status_is(10))
    async with session.get(f"{sim}/_sim/wallet/{body['applicant']['personal_id']}") as resp:
        held = await resp.json()
    record = await _record(session, url, d["code"])
    ok = bool(finished and returned and held and refused > 0 and record and record["HinhThuc"] == "2")
    line = (
        f"wallet: {d['code']} returned (10) into the VNeID wallet after its outage, {len(held)} result(s) held "
        f"with the request's signature; portal record HinhThuc {record.get('HinhThuc') if record else '?'}"
    )
    return line, ok


async def _record(session: aiohttp.ClientSession, url: str, code: str) -> dict[str, Any] | None:
    """The dossier's latest record in the status feed, as the national portal gets it."""
    after, found = 0, None
    while True:
        _, page = await _call(session, "GET", f"{url}/v1/feed?after={after}&limit=1000", "portal")
        for item in page["items"]:
            if item["dossier"]["MaHoSo"] == code:
                found = item["dossier"]
        if not page["items"]:
            return found
        after = page["next_after"]


async def payment(session: aiohttp.ClientSession, url: str, stack: Stack, registry: Registry) -> Check:
    make = registry.agency_kinds["land"].demo_bundles
    pay, tax = stack.sim("payments").url, stack.sim("tax").url
    if make is None:
        return "payment: no land demo bundles", False
    await session.post(f"{tax}/_sim/auto-pay", json={"after": None})  # the applicant pays online, not at the bank
    await session.post(f"{pay}/_sim/payments", json={"drop_callbacks": True})
    status, bundle = await _call(session, "POST", f"{url}/v1/bundles", "centre-hcm", make(151, 1)[0], "svc-pay")
    if status not in (200, 202):
        return f"payment: the land transfer was refused ({status} {bundle})", False

    async def tax_waiting() -> str | None:
        _, view = await _call(session, "GET", f"{url}/v1/bundles/{bundle['id']}", "centre-hcm")
        step = next(s for s in view["steps"] if s["step"] == "tax")
        return str(step["dossier_id"]) if step["status"] == 6 else None

    tax_dossier = await _until(tax_waiting)
    if tax_dossier is None:
        return "payment: the tax step never asked for payment", False
    status, p = await _call(session, "POST", f"{url}/v1/dossiers/{tax_dossier}/payments", "centre-hcm", {}, "svc-pay-1")
    if status != 201:
        return f"payment: the payment request was refused ({status} {p})", False
    amount = f"{p['amount_vnd']:,}".replace(",", ".")
    print(f"  payment: {len(p['bills'])} tax notices, {amount} đồng; pay at {p['pay_url']} or scan the QR")
    async with session.post(f"{pay}/_sim/pay", json={"order_id": p["id"]}) as resp:
        paid = await resp.json()
    print(f"  payment: paid ({paid['bank_ref']}), the platform's callback LOST; waiting for the reconciliation")

    async def recorded() -> dict[str, Any] | None:
        _, now = await _call(session, "GET", f"{url}/v1/payments/{p['id']}", "centre-hcm")
        return now if now["state"] == "paid" else None

    done = await _until(recorded)

    async def completed() -> dict[str, Any] | None:
        _, view = await _call(session, "GET", f"{url}/v1/bundles/{bundle['id']}", "centre-hcm")
        return view if view["state"] == "completed" else None

    view = await _until(completed)
    _, events = await _call(session, "GET", f"{url}/v1/dossiers/{tax_dossier}/events", "centre-hcm")
    learnt = [e["data"]["payment"]["learnt_by"] for e in events["events"] if "payment" in e["data"]]
    _, tax_view = await _call(session, "GET", f"{url}/v1/dossiers/{tax_dossier}", "centre-hcm")
    record = await _record(session, url, tax_view["code"])
    await session.post(f"{tax}/_sim/auto-pay", json={"after": 1.0})
    ok = bool(done and view and learnt == ["reconciliation"] and record and record["DuocThanhToanTrucTuyen"] == "1")
    line = (
        f"payment: land transfer's tax notices paid online ({amount} đồng), callback lost, found by "
        f"{', '.join(learnt) or 'nobody'}; bundle {view['state'] if view else 'NOT completed'}; receipt "
        f"{done['receipt']['number'] if done else '-'}; portal record DuocThanhToanTrucTuyen "
        f"{record.get('DuocThanhToanTrucTuyen') if record else '?'}"
    )
    return line, ok


async def run_services(stack: Stack, box: Sandbox, registry: Registry, keys: dict[str, str]) -> list[Check]:
    """The three services, one after the other; their lines for the final table."""
    CENTRE_KEYS.update(keys)
    kinds = {s.kind for s in box.sims}
    checks: list[Check] = []
    async with aiohttp.ClientSession() as session:
        url = stack.gateway_url
        if "land" in kinds:
            checks.append(await appointments(session, url, stack, registry))
        if "police" in kinds:
            checks.append(await wallet(session, url, stack, registry))
        if {"land", "tax"} <= kinds:
            checks.append(await payment(session, url, stack, registry))
    return checks
