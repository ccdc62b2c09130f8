"""A simulated booking service of an agency's officers (the other side of gateway.sdk.appointments).

Mounted on a plugin's simulator app, so its faults (latency, errors, downtime, malformed answers) apply
to it too. It checks each request's HMAC signature (401), its fields (422, with the reason), the
Idempotency-Key of a booking, move or cancellation (400 without one; the same key answers the same again,
a key reused for another request is refused, 409), and that a slot is free (409). Slots: working days,
five a day (08:00, 09:00, 10:00, 14:00, 15:00, Vietnam time, 45 minutes), one applicant each.
Control: GET /_sim/appointments (every booking, cancelled ones too).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.signing import HmacVerifier, SignatureError
from contracts.appointment import SLOT_ID, AppointmentMode, BookedSlot, Slot
from gateway.sdk.simulation import STATS

VN = timezone(timedelta(hours=7))
HOURS = ((8, 0), (9, 0), (10, 0), (14, 0), (15, 0))
LENGTH = timedelta(minutes=45)
MAX_DAYS = 31


class _Booking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: str = Field(pattern=SLOT_ID)
    mode: AppointmentMode
    office: str = Field(min_length=1, max_length=100)
    dossier_code: str = Field(min_length=1, max_length=100)
    procedure_code: str = Field(min_length=1, max_length=50)


class _Move(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: str = Field(pattern=SLOT_ID)


@dataclass
class Desk:
    """One agency's calendars: its offices (name -> address), who receives, what is booked."""

    agency: str
    offices: dict[str, str]
    officers: tuple[str, ...] = ("Chuyên viên tiếp nhận",)
    meeting_base: str = "https://meet.example.gov.vn"
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # agency ref -> booking
    held: dict[str, str] = field(default_factory=dict)  # slot id -> agency ref holding it
    keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key -> (request hash, answer)

    def slot(self, office: str, day: date, hour: int, minute: int) -> Slot:
        start = datetime.combine(day, time(hour, minute), VN)
        officer = self.officers[(day.toordinal() + hour) % len(self.officers)]
        return Slot(
            slot_id=f"{office}-{day:%Y%m%d}-{hour:02d}{minute:02d}",
            starts_at=start,
            ends_at=start + LENGTH,
            modes=("in_person", "online"),
            place=self.offices[office],
            officer=officer,
        )

    def free(self, office: str, since: date, days: int) -> list[Slot]:
        out: list[Slot] = []
        for n in range(days):
            day = since + timedelta(days=n)
            if day.weekday() >= 5:
                continue
            out.extend(s for h, m in HOURS if (s := self.slot(office, day, h, m)).slot_id not in self.held)
        return out

    def find(self, slot_id: str) -> Slot | None:
        office, _, rest = slot_id.rpartition("-")
        office, _, day_text = office.rpartition("-")
        if office not in self.offices or len(rest) != 4 or not rest.isdigit():
            return None
        try:
            day = datetime.strptime(day_text, "%Y%m%d").date()
        except ValueError:
            return None
        hm = (int(rest[:2]), int(rest[2:]))
        return self.slot(office, day, *hm) if hm in HOURS and day.weekday() < 5 else None


DESK = web.AppKey("appointment_desk", Desk)
VERIFIER = web.AppKey("appointment_verifier", HmacVerifier)


def _problem(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


async def _verified(request: web.Request) -> bytes:
    body = await request.read()
    try:
        request.app[VERIFIER].verify(request.method, request.path_qs, request.headers, body)
    except SignatureError as exc:
        raise web.HTTPUnauthorized(
            text=orjson.dumps({"error": "signature", "message": str(exc)}).decode(), content_type="application/json"
        ) from None
    return body


def _answer(desk: Desk, ref: str) -> dict[str, Any]:
    b = desk.bookings[ref]
    slot = desk.find(b["slot_id"])
    assert slot is not None
    url = f"{desk.meeting_base}/{ref}" if b["mode"] == "online" else None
    return BookedSlot(agency_ref=ref, slot=slot, mode=b["mode"], meeting_url=url).model_dump(mode="json")


async def slots(request: web.Request) -> web.Response:
    await _verified(request)
    desk, q = request.app[DESK], request.query
    office = q.get("office", "")
    if office not in desk.offices:
        return _problem(422, "unknown-office", f"office must be one of {sorted(desk.offices)}")
    try:
        since = date.fromisoformat(q.get("from", ""))
        days = int(q.get("days", "7"))
    except ValueError:
        return _problem(422, "invalid-query", "from is YYYY-MM-DD and days a whole number")
    if not 1 <= days <= MAX_DAYS:
        return _problem(422, "invalid-query", f"days is between 1 and {MAX_DAYS}")
    found = desk.free(office, since, days)
    return web.json_response({"slots": [s.model_dump(mode="json") for s in found]})


async def _keyed(request: web.Request, body: bytes) -> tuple[str, str] | web.Response:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 200:
        return _problem(400, "idempotency-key", "an Idempotency-Key header of 1 to 200 characters is required")
    return key, hashlib.sha256(request.method.encode() + request.path.encode() + body).hexdigest()


def _replayed(desk: Desk, key: str, digest: str, stats: Counter[str]) -> web.Response | None:
    seen = desk.keys.get(key)
    if seen is None:
        return None
    if seen[0] != digest:
        return _problem(409, "key-reused", "this Idempotency-Key was used for another request")
    stats["appointments_replayed"] += 1
    return web.json_response(seen[1])


async def book(request: web.Request) -> web.Response:
    body = await _verified(request)
    desk, stats = request.app[DESK], request.app[STATS]
    keyed = await _keyed(request, body)
    if isinstance(keyed, web.Response):
        return keyed
    if (replay := _replayed(desk, *keyed, stats)) is not None:
        return replay
    try:
        req = _Booking.model_validate_json(body)
    except ValidationError as exc:
        return _problem(422, "invalid-booking", str(exc))
    slot = desk.find(req.slot_id)
    if req.office not in desk.offices or slot is None or not req.slot_id.startswith(f"{req.office}-"):
        return _problem(422, "unknown-slot", f"no slot {req.slot_id!r} at office {req.office!r}")
    if req.slot_id in desk.held:
        return _problem(409, "slot-taken", f"slot {req.slot_id} is taken")
    ref = f"LH-{secrets.token_hex(4).upper()}"
    desk.bookings[ref] = req.model_dump() | {"state": "booked", "moves": 0}
    desk.held[req.slot_id] = ref
    answer = _answer(desk, ref)
    desk.keys[keyed[0]] = (keyed[1], answer)
    stats["appointments_booked"] += 1
    return web.json_response(answer, status=201)


def _booking(request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
    ref = request.match_info["ref"]
    booking = request.app[DESK].bookings.get(ref)
    if booking is None:
        return _problem(404, "unknown-appointment", f"no appointment {ref}")
    return ref, booking


async def move(request: web.Request) -> web.Response:
    body = await _verified(request)
    desk, stats = request.app[DESK], request.app[STATS]
    keyed = await _keyed(request, body)
    if isinstance(keyed, web.Response):
        return keyed
    if (replay := _replayed(desk, *keyed, stats)) is not None:
        return replay
    found = _booking(request)
    if isinstance(found, web.Response):
        return found
    ref, booking = found
    try:
        req = _Move.model_validate_json(body)
    except ValidationError as exc:
        return _problem(422, "invalid-move", str(exc))
    if booking["state"] != "booked":
        return _problem(409, "cancelled", f"appointment {ref} was cancelled")
    if desk.find(req.slot_id) is None or not req.slot_id.startswith(f"{booking['office']}-"):
        return _problem(422, "unknown-slot", f"no slot {req.slot_id!r} at office {booking['office']!r}")
    if desk.held.get(req.slot_id, ref) != ref:
        return _problem(409, "slot-taken", f"slot {req.slot_id} is taken")
    desk.held.pop(booking["slot_id"], None)
    booking["slot_id"] = req.slot_id
    booking["moves"] += 1
    desk.held[req.slot_id] = ref
    answer = _answer(desk, ref)
    desk.keys[keyed[0]] = (keyed[1], answer)
    stats["appointments_moved"] += 1
    return web.json_response(answer)


async def cancel(request: web.Request) -> web.Response:
    body = await _verified(request)
    desk, stats = request.app[DESK], request.app[STATS]
    keyed = await _keyed(request, body)
    if isinstance(keyed, web.Response):
        return keyed
    found = _booking(request)
    if isinstance(found, web.Response):
        return found
    ref, booking = found
    if booking["state"] == "booked":
        booking["state"] = "cancelled"
        desk.held.pop(booking["slot_id"], None)
        stats["appointments_cancelled"] += 1
    return web.json_response({"agency_ref": ref, "state": "cancelled"})


async def listing(request: web.Request) -> web.Response:
    desk = request.app[DESK]
    return web.json_response([{"agency_ref": ref, **b} for ref, b in desk.bookings.items()])


def mount_desk(app: web.Application, desk: Desk, *, key_id: str, secret: str) -> None:
    """Add the booking service's routes to a simulator app (its fault middleware covers them)."""
    app[DESK] = desk
    app[VERIFIER] = HmacVerifier({key_id: secret})
    app.router.add_get("/appointments/slots", slots)
    app.router.add_post("/appointments", book)
    app.router.add_post("/appointments/{ref}/move", move)
    app.router.add_post("/appointments/{ref}/cancel", cancel)
    app.router.add_get("/_sim/appointments", listing)
