"""What a plugin implements: an agency kind with its settings model and a connector.

Hooks are synchronous and return these objects; the async work lives in Connector methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.base import CheckResult
from contracts import Dossier, DossierStatus, ResultDocument
from contracts.appointment import AppointmentMode, BookedSlot, Slot
from gateway.connector_state import ConnectorState, MemoryConnectorState
from gateway.errors import AgencyRejected, NotFound
from gateway.simulated import SimulatorBinding
from gateway.tls import OutboundTLS

if TYPE_CHECKING:
    import ssl

    import aiohttp
    from aiohttp import web

    from gateway.documents.base import DocumentReader


class EndpointSettings(BaseModel):
    """Base of every plugin's endpoint settings (one `[agency.<name>.endpoints.<endpoint>]` table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="base URL, folder or sftp:// address of the agency endpoint")
    timeout: float = Field(10.0, gt=0, le=300)
    tls: OutboundTLS | None = Field(
        None, description="for an https:// url: the CAs trusted, a client certificate, pinned certificates"
    )

    @model_validator(mode="after")
    def _tls_needs_https(self) -> EndpointSettings:
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError("tls settings need an https:// url")
        return self


class AgencyUpdate(BaseModel):
    """A status change reported by an agency, in canonical terms. `event_id` de-duplicates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
    dossier_id: UUID | None = None
    dossier_code: str | None = None
    status: DossierStatus
    note: str = ""
    at: datetime | None = None
    agency_ref: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    results: list[ResultDocument] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(
        default_factory=dict,
        description="values later steps of a bundle may use, e.g. the child's new personal id",
    )


class SubmitReceipt(BaseModel):
    """The agency took the dossier: its reference, and any status it reported at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_ref: str | None = None
    updates: list[AgencyUpdate] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver a job. The idempotency key is the same on every attempt.

    `inputs` holds what earlier steps of a bundle produced, under the names the bundle declares
    (e.g. {"child_personal_id": "079325000123"}); empty for a dossier outside a bundle.
    """

    idempotency_key: str
    attempt: int
    step: str = "submit"
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What the dispatcher made of the updates one `poll()` returned, by event id.

    `applied`: in the store now (or there already). `refused`: can never apply, with a short reason
    ("unknown-dossier", "illegal-transition"). An update in neither failed for a passing reason (the
    store was busy): the connector must hand it over again on a later poll.
    """

    applied: frozenset[str] = frozenset()
    refused: Mapping[str, str] = field(default_factory=dict)

    def settled(self, event_id: str) -> bool:
        return event_id in self.applied or event_id in self.refused


@dataclass(frozen=True, slots=True)
class LookupSpec:
    """A synchronous look-up a connector answers, e.g. identity verification.

    `example()` gives a query (JSON) the kind's simulator knows: the demo asks it, and the behavioural
    conformance kit checks the answer against `output_model`.
    """

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    example: Callable[[], dict[str, Any]] | None = None


@dataclass(frozen=True)
class ConnectorContext:
    agency: str  # the configured agency instance, e.g. "police"
    endpoint: str  # the endpoint name within it
    settings: EndpointSettings
    http: aiohttp.ClientSession  # the app's one session: never open another
    callback_url: str  # where this agency posts its callbacks
    # What the connector keeps across restarts (a polling cursor): the store's, in the gateway.
    state: ConnectorState = field(default_factory=MemoryConnectorState)
    # Built from `settings.tls` (CAs, client certificate, pins): pass it to every transport of
    # the endpoint. None: the default verification of https:// URLs.
    ssl_context: ssl.SSLContext | None = None
    # The dossiers' documents by sha256 (gateway.sdk.document_bytes / document_chunks read them through it).
    documents: DocumentReader | None = None


class Connector(ABC):
    """Talks to one agency endpoint. Raise gateway.errors.AgencyError subclasses only."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:  # noqa: B027 - optional: load WSDLs, warm tokens (never block the loop)
        """Prepare before the first call."""

    @abstractmethod
    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        """Deliver a dossier; the same `delivery.idempotency_key` must not create it twice."""

    async def supplement(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        """Forward the applicant's answer to a supplement request; `delivery.inputs` holds the answer."""
        raise AgencyRejected(f"agency {self.ctx.agency!r} does not take supplements through the gateway")

    async def withdraw(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        """Tell the agency the dossier was refused at the centre (the documents it asked for did not come in
        time), so it closes its case; `delivery.inputs` holds `reason`, `supplement_due_at` and `items`.
        An agency whose protocol has no such message is told nothing: it closes the case on its own deadline.
        """
        return SubmitReceipt()

    async def lookup(self, name: str, query: BaseModel) -> BaseModel:
        raise NotFound(f"agency {self.ctx.agency!r} has no look-up {name!r}")

    # -- appointments for referred dossiers (gateway.sdk.appointments.AppointmentsAtDesk implements them) --

    async def appointment_slots(self, dossier: Dossier, since: date, days: int) -> list[Slot]:
        """Free slots of the agency's officers for this dossier, from `since` for `days` days."""
        raise NotFound(f"agency {self.ctx.agency!r} takes no appointments")

    async def book_appointment(self, dossier: Dossier, slot_id: str, mode: AppointmentMode, key: str) -> BookedSlot:
        """Book a slot; the same `key` must not book twice."""
        raise NotFound(f"agency {self.ctx.agency!r} takes no appointments")

    async def move_appointment(self, agency_ref: str, slot_id: str, key: str) -> BookedSlot:
        raise NotFound(f"agency {self.ctx.agency!r} takes no appointments")

    async def cancel_appointment(self, agency_ref: str, key: str) -> None:
        raise NotFound(f"agency {self.ctx.agency!r} takes no appointments")

    async def handle_callback(self, body: bytes, headers: Mapping[str, str]) -> list[AgencyUpdate]:
        raise NotFound(f"agency {self.ctx.agency!r} takes no callbacks")

    async def poll(self) -> list[AgencyUpdate]:
        """News from an agency that never calls back, oldest first. Whatever `acknowledge` has not
        settled yet must come back on a later poll: nothing may be dropped before the store has it."""
        return []

    async def acknowledge(self, outcome: PollOutcome) -> None:  # noqa: B027 - optional
        """Called after each poll with what became of its updates; move cursors and files here."""

    @abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional
        """Release what start() took."""


SimulatorFactory = Callable[..., "web.Application"]
# (seed, count) -> realistic submissions (JSON) for the demo and the benchmark.
DemoDossiers = Callable[[int, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class AgencyKind:
    """An agency type a plugin provides, registered by `register_agency_kinds`."""

    name: str
    title: str
    protocol: str  # rest | soap | file
    settings_model: type[EndpointSettings]
    connector: Callable[[ConnectorContext], Connector]
    lookups: tuple[LookupSpec, ...] = ()
    simulator: SimulatorFactory | None = None
    polls: bool = False  # the dispatcher calls connector.poll() for agencies without callbacks
    demo_dossiers: DemoDossiers | None = None
    demo_bundles: DemoDossiers | None = None  # (seed, count) -> bundle submissions led by this kind's step
    # How the demo, the benchmark and the conformance kit run the simulator and point an endpoint at it;
    # None: the default binding (gateway/simulated.py).
    binding: SimulatorBinding | None = None
