"""The tax plugin's appointments: its connector books, moves and cancels consultations at the tax office's
booking service (the tax simulator), signed; one key books once; a broken answer is the agency's fault."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.errors import AgencyRejected, MalformedAnswer, NotFound
from gateway.sdk.testing import bound_connector, dossier_from_demo, running_simulator
from tests.builtin import builtin_registry

MONDAY = date(2030, 3, 4)


async def test_the_tax_office_books_moves_and_cancels(tmp_path: Path) -> None:
    registry = await asyncio.to_thread(builtin_registry)
    kind = registry.agency_kinds["tax"]
    dossier = await asyncio.to_thread(dossier_from_demo, registry, "tax")
    async with running_simulator(kind, tmp_path) as sim, bound_connector(kind, sim, endpoint="national") as c:
        slots = await c.appointment_slots(dossier, MONDAY, 1)
        assert len(slots) == 5 and "Chi cục Thuế" in slots[0].place
        booked = await c.book_appointment(dossier, slots[0].slot_id, "online", key="k-1")
        again = await c.book_appointment(dossier, slots[0].slot_id, "online", key="k-1")
        assert again == booked and booked.meeting_url is not None
        with pytest.raises(AgencyRejected) as taken:
            await c.book_appointment(dossier, slots[0].slot_id, "in_person", key="k-2")
        assert taken.value.status == 409
        moved = await c.move_appointment(booked.agency_ref, slots[1].slot_id, key="m-1")
        assert moved.slot.slot_id == slots[1].slot_id
        await c.cancel_appointment(booked.agency_ref, key="c-1")
        assert len(await c.appointment_slots(dossier, MONDAY, 1)) == 5
        async with sim.http.post(f"{sim.running.url}/_sim/faults", json={"malformed_rate": 1.0}) as r:
            assert r.status == 200
        with pytest.raises(MalformedAnswer):
            await c.appointment_slots(dossier, MONDAY + timedelta(days=7), 1)


async def test_an_endpoint_without_a_booking_service_takes_no_appointments(tmp_path: Path) -> None:
    registry = await asyncio.to_thread(builtin_registry)
    kind = registry.agency_kinds["tax"]
    dossier = await asyncio.to_thread(dossier_from_demo, registry, "tax")
    async with (
        running_simulator(kind, tmp_path) as sim,
        bound_connector(kind, sim, endpoint="national", appointments=None) as c,
    ):
        with pytest.raises(NotFound):
            await c.appointment_slots(dossier, MONDAY, 1)
