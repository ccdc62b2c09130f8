"""Appointments with an agency's officer for a referred dossier: free slots, a booking, a move.

A procedure marked `referral` needs the agency itself (a complex case): the centre books the applicant a
slot, in person at the agency's office or as an online consultation with a meeting link.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.base import AwareDatetime, InputModel, Model

AppointmentMode = Literal["in_person", "online"]
SLOT_ID = r"^[A-Za-z0-9._:-]{1,100}$"


class Slot(Model):
    """A free period of an agency officer's calendar."""

    slot_id: str = Field(pattern=SLOT_ID)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    modes: tuple[AppointmentMode, ...] = Field(min_length=1, description="in person, online, or both")
    place: str = Field(min_length=1, max_length=300, description="the office's address, or 'online'")
    officer: str = Field("", max_length=200, description="who receives the applicant")


class BookedSlot(Model):
    """What the agency answers to a booking or a move: its reference and the slot now held."""

    agency_ref: str = Field(min_length=1, max_length=100)
    slot: Slot
    mode: AppointmentMode
    meeting_url: str | None = Field(None, max_length=500, description="an online consultation's link")


class BookingRequest(InputModel):
    """What a centre sends to POST /v1/dossiers/{ref}/appointments (with an Idempotency-Key header)."""

    slot_id: str = Field(pattern=SLOT_ID)
    mode: AppointmentMode = "in_person"
    note: str = Field("", max_length=500)


class MoveRequest(InputModel):
    """What a centre sends to POST /v1/appointments/{id}/move."""

    slot_id: str = Field(pattern=SLOT_ID)


class Appointment(Model):
    """A booking as the gateway keeps it, listed per centre."""

    id: str
    client_id: str
    dossier_id: str
    dossier_code: str
    agency: str
    endpoint: str
    state: Literal["booking", "booked", "cancelled"]
    mode: AppointmentMode
    slot: Slot | None = None
    agency_ref: str | None = None
    meeting_url: str | None = None
    remind_at: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class AppointmentEvent(Model):
    """booked, moved, cancelled, reminder: what the centre's system reads at GET /v1/appointments/events."""

    seq: int
    appointment_id: str
    dossier_code: str
    kind: Literal["booked", "moved", "cancelled", "reminder"]
    at: AwareDatetime
    data: dict[str, object] = Field(default_factory=dict)
