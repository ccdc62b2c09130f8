"""Appointments at an agency's desk: the REST client plugins share, and the connector methods it backs.

Land offices and tax offices keep their officers' calendars in a booking service of their own; each
plugin's endpoint names it (`appointments = {url, key_id, secret}`). Every request is HMAC-signed
(adapters/signing.py); bookings, moves and cancellations carry an Idempotency-Key the desk de-duplicates
on, so the gateway may ask again after a lost answer and the applicant still holds one slot.

The wire (JSON):
  GET  /appointments/slots?office=&procedure=&from=YYYY-MM-DD&days=N -> {"slots": [Slot]}
  POST /appointments {slot_id, mode, office, dossier_code, procedure_code}  -> BookedSlot
  POST /appointments/{ref}/move {slot_id}                                   -> BookedSlot
  POST /appointments/{ref}/cancel {}                                        -> {"agency_ref", "state"}
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.rest import RestRequest, RestTransport
from adapters.signing import HmacSigner
from contracts import Dossier
from contracts.appointment import AppointmentMode, BookedSlot, Slot
from gateway.connector import Connector
from gateway.errors import MalformedAnswer, NotFound


class DeskSettings(BaseModel):
    """An agency's booking service (`[agency.<name>.endpoints.<e>.appointments]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://", description="the booking service's base URL")
    key_id: str = Field("lienthong-gateway", min_length=1)
    secret: str = Field(min_length=16, repr=False, description="the HMAC key shared with the desk; use ${ENV}")
    timeout: float = Field(5.0, gt=0, le=60)


class _Slots(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slots: list[Slot] = Field(max_length=2000)


class AppointmentDesk:
    """The REST client of one booking service, on the app's one session."""

    def __init__(self, transport: RestTransport, office: str) -> None:
        self.transport = transport
        self.office = office  # which of the agency's offices (a land office's folder, a tax department)

    @classmethod
    def of(cls, connector: Connector, settings: DeskSettings, office: str) -> AppointmentDesk:
        transport = RestTransport(
            connector.ctx.http,
            settings.url,
            agency=connector.ctx.agency,
            timeout=settings.timeout,
            signer=HmacSigner(settings.key_id, settings.secret),
            ssl_context=connector.ctx.ssl_context,
        )
        return cls(transport, office)

    async def slots(self, dossier: Dossier, since: date, days: int) -> list[Slot]:
        query = urlencode(
            {"office": self.office, "procedure": dossier.procedure_code, "from": since.isoformat(), "days": days}
        )
        answer = await self.transport.send(RestRequest("GET", f"/appointments/slots?{query}"))
        return _read(_Slots, answer.json(), self.transport.agency).slots

    async def book(self, dossier: Dossier, slot_id: str, mode: AppointmentMode, key: str) -> BookedSlot:
        body = {
            "slot_id": slot_id,
            "mode": mode,
            "office": self.office,
            "dossier_code": dossier.code,
            "procedure_code": dossier.procedure_code,
        }
        answer = await self.transport.send(
            RestRequest("POST", "/appointments", json=body, headers={"Idempotency-Key": key})
        )
        return _read(BookedSlot, answer.json(), self.transport.agency)

    async def move(self, agency_ref: str, slot_id: str, key: str) -> BookedSlot:
        answer = await self.transport.send(
            RestRequest(
                "POST",
                f"/appointments/{quote(agency_ref, safe='')}/move",
                json={"slot_id": slot_id},
                headers={"Idempotency-Key": key},
            )
        )
        return _read(BookedSlot, answer.json(), self.transport.agency)

    async def cancel(self, agency_ref: str, key: str) -> None:
        await self.transport.send(
            RestRequest(
                "POST", f"/appointments/{quote(agency_ref, safe='')}/cancel", json={}, headers={"Idempotency-Key": key}
            )
        )


M = TypeVar("M", bound=BaseModel)


def _read(model: type[M], data: object, agency: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedAnswer(f"{agency}: the booking service's answer does not fit: {exc}", agency=agency) from None


class AppointmentsAtDesk:
    """Connector methods backed by an AppointmentDesk: mixed into a plugin's connector, which sets
    `self.desk` (None: the endpoint has no booking service configured)."""

    desk: AppointmentDesk | None = None

    def _desk(self) -> AppointmentDesk:
        if self.desk is None:
            raise NotFound("this agency endpoint has no booking service configured (appointments)")
        return self.desk

    async def appointment_slots(self, dossier: Dossier, since: date, days: int) -> list[Slot]:
        return await self._desk().slots(dossier, since, days)

    async def book_appointment(self, dossier: Dossier, slot_id: str, mode: AppointmentMode, key: str) -> BookedSlot:
        return await self._desk().book(dossier, slot_id, mode, key)

    async def move_appointment(self, agency_ref: str, slot_id: str, key: str) -> BookedSlot:
        return await self._desk().move(agency_ref, slot_id, key)

    async def cancel_appointment(self, agency_ref: str, key: str) -> None:
        await self._desk().cancel(agency_ref, key)
