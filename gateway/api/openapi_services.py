"""The OpenAPI paths and schemas of the citizen-facing services: appointments (and, as they come, results to
the wallet and online payment). Kept beside openapi.py, which merges them in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from contracts.appointment import Appointment, AppointmentEvent, BookingRequest, MoveRequest, Slot
from contracts.payment import Payment, PaymentRequest

SCHEMAS: tuple[type[BaseModel], ...] = (
    Appointment,
    AppointmentEvent,
    BookingRequest,
    MoveRequest,
    Slot,
    Payment,
    PaymentRequest,
)

Responses = Callable[..., dict[str, Any]]


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def paths(
    responses: Responses, ref: Callable[[type[BaseModel]], dict[str, str]], ref_param: list[Any]
) -> dict[str, Any]:
    key = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string", "maxLength": 200}}
    held = (
        "Audited. 409 when the procedure is not referred (`ProcedureSpec.referral`), the dossier is closed or the "
        "agency refuses (a slot taken); 502/504 when the agency fails or is slow; 503 with Retry-After while it "
        "is held (window, pause, breaker open)."
    )
    return _appointments(responses, ref, ref_param, key, held) | _payments(responses, ref, ref_param, key)


def _payments(
    responses: Responses, ref: Callable[[type[BaseModel]], dict[str, str]], ref_param: list[Any], key: Any
) -> dict[str, Any]:
    return {
        "/v1/dossiers/{ref}/payments": {
            "post": {
                "summary": "A payment request at the national payment platform: pay URL and VietQR payload",
                "description": (
                    "The amount: the agency's notices while the dossier waits on a financial obligation (6), else "
                    "the procedure's fee (`fees_vnd`); 409 when there is nothing to pay. One payment per "
                    "Idempotency-Key. 502/504 when the platform fails or is slow: the same key goes on."
                ),
                "parameters": [*ref_param, key],
                "requestBody": {"content": {"application/json": {"schema": ref(PaymentRequest)}}},
                "responses": responses(201, ref(Payment), 400, 401, 403, 404, 409, 413, 415, 422, 502, 504)
                | {"200": {"description": "replay of an earlier request with the same Idempotency-Key"}},
            }
        },
        "/v1/payments": {
            "get": {
                "summary": "The centre's payments",
                "parameters": [
                    _query("dossier", {"type": "string"}, "a dossier's id or code"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("client", {"type": "string"}, "operators and portals: one centre's"),
                ],
                "responses": responses(200, None, 400, 401, 403),
            }
        },
        "/v1/payments/{id}": {
            "get": {
                "summary": "One payment",
                "parameters": [_path("id")],
                "responses": responses(200, ref(Payment), 401, 403, 404),
            }
        },
        "/v1/payments/{id}/receipt": {
            "get": {
                "summary": "The platform's electronic receipt (biên lai), as kept",
                "parameters": [_path("id")],
                "responses": responses(200, None, 401, 403, 404),
            }
        },
        "/v1/payments/callback": {
            "post": {
                "summary": "The payment platform's callback with the transaction (HMAC-signed, no API key)",
                "security": [],
                "responses": responses(200, None, 400, 401, 404, 409, 413),
            }
        },
    }


def _appointments(
    responses: Responses, ref: Callable[[type[BaseModel]], dict[str, str]], ref_param: list[Any], key: Any, held: str
) -> dict[str, Any]:
    return {
        "/v1/dossiers/{ref}/appointment-slots": {
            "get": {
                "summary": "Free slots of the agency's officers for a referred dossier",
                "description": held,
                "parameters": [
                    *ref_param,
                    _query("from", {"type": "string", "format": "date"}, "first day; tomorrow by default"),
                    _query(
                        "days",
                        {"type": "integer", "minimum": 1},
                        "days from `from` (7; at most [appointments] max_days)",
                    ),
                ],
                "responses": responses(200, None, 401, 403, 404, 409, 502, 503, 504),
            }
        },
        "/v1/dossiers/{ref}/appointments": {
            "post": {
                "summary": "Book a slot for the applicant (in person, or an online consultation)",
                "description": "One booking per Idempotency-Key, however often it is sent. " + held,
                "parameters": [*ref_param, key],
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref(BookingRequest)}}},
                "responses": responses(201, ref(Appointment), 400, 401, 403, 404, 409, 413, 415, 422, 502, 503, 504)
                | {"200": {"description": "replay of an earlier booking with the same Idempotency-Key"}},
            }
        },
        "/v1/appointments": {
            "get": {
                "summary": "The centre's appointments",
                "parameters": [
                    _query("dossier", {"type": "string"}, "a dossier's id or code"),
                    _query("state", {"enum": ["booking", "booked", "cancelled"]}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("client", {"type": "string"}, "operators and portals: one centre's"),
                ],
                "responses": responses(200, None, 400, 401, 403),
            }
        },
        "/v1/appointments/events": {
            "get": {
                "summary": "Appointment events in order: booked, moved, cancelled, and the applicant's reminders",
                "parameters": [
                    _query("after", {"type": "integer", "minimum": 0}, "the last `seq` read (`next_after`)"),
                    _query("kind", {"enum": ["booked", "moved", "cancelled", "reminder"]}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                "responses": responses(200, None, 400, 401, 403),
            }
        },
        "/v1/appointments/{id}": {
            "get": {
                "summary": "One appointment",
                "parameters": [_path("id")],
                "responses": responses(200, ref(Appointment), 401, 403, 404),
            }
        },
        "/v1/appointments/{id}/move": {
            "post": {
                "summary": "Move a booked appointment to another free slot",
                "description": held,
                "parameters": [_path("id")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref(MoveRequest)}}},
                "responses": responses(200, ref(Appointment), 400, 401, 403, 404, 409, 413, 415, 422, 502, 503, 504),
            }
        },
        "/v1/appointments/{id}/cancel": {
            "post": {
                "summary": "Cancel an appointment (a cancelled one answers as it is)",
                "description": held,
                "parameters": [_path("id")],
                "responses": responses(200, ref(Appointment), 401, 403, 404, 409, 502, 503, 504),
            }
        },
    }
