"""Everything a plugin author imports, in one place: hooks, the connector contract and its base
classes, errors, the canonical contract, REST transport and signing, and the toolkit for agency
simulators.

The gateway's core (API, intake, routing, store, dispatcher, portal, configuration) is not part of
this surface: a plugin that imports only from `gateway.sdk` keeps working when the core changes.
Beside it: `gateway.sdk.soap` and `gateway.sdk.files` (SOAP and file exchange), `gateway.sdk.testing`
and `gateway.sdk.samples` (tests and demo data; the pytest plugin is `gateway.sdk.pytest_plugin`),
`gateway.sdk.conformance` and `gateway.sdk.behaviour` (the conformance kits), `gateway.sdk.scaffold`
(`lienthong plugin new`). A dossier's documents are read with `document_bytes` or `document_chunks` (from
the document store the gateway hands connectors in `ConnectorContext.documents`).
"""

from adapters.base import CheckResult, MockTransport, Transport
from adapters.rest import RestRequest, RestResponse, RestTransport, hmac_rest
from adapters.signing import HmacSigner, HmacVerifier, SignatureError, hand_over_nonce
from contracts import (
    Applicant,
    Attachment,
    DocumentRule,
    Dossier,
    DossierStatus,
    DossierSubmission,
    EmptyForm,
    FormModel,
    Jurisdiction,
    OrganisationApplicant,
    PersonApplicant,
    ProcedureSpec,
    ResultDocument,
)
from gateway.connector import (
    AgencyKind,
    AgencyUpdate,
    Connector,
    ConnectorContext,
    Delivery,
    EndpointSettings,
    LookupSpec,
    PollOutcome,
    SubmitReceipt,
)
from gateway.connector_state import ConnectorState, MemoryConnectorState
from gateway.documents.reading import document_bytes, document_chunks
from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    InvalidRequest,
    MalformedAnswer,
    PermanentAgencyError,
    TransientAgencyError,
    Unauthenticated,
    UnsafeAnswer,
)
from gateway.hooks import hookimpl
from gateway.sdk.base import CallbackConnector, FeedPage, PollingConnector
from gateway.sdk.simulation import (
    FAULTS,
    RNG,
    STATS,
    Faults,
    ReceivedDocument,
    SimulatorOptions,
    count_documents,
    document_problems,
    new_simulator,
    post_until_accepted,
    spawn,
)
from gateway.simulated import RunningSimulator, SimulatorBinding

__all__ = [
    "FAULTS",
    "RNG",
    "STATS",
    "AgencyError",
    "AgencyKind",
    "AgencyRejected",
    "AgencyTimeout",
    "AgencyUnavailable",
    "AgencyUpdate",
    "Applicant",
    "Attachment",
    "CallbackConnector",
    "CheckResult",
    "Connector",
    "ConnectorContext",
    "ConnectorState",
    "Delivery",
    "DocumentRule",
    "Dossier",
    "DossierStatus",
    "DossierSubmission",
    "EmptyForm",
    "EndpointSettings",
    "Faults",
    "FeedPage",
    "FormModel",
    "HmacSigner",
    "HmacVerifier",
    "InvalidRequest",
    "Jurisdiction",
    "LookupSpec",
    "MalformedAnswer",
    "MemoryConnectorState",
    "MockTransport",
    "OrganisationApplicant",
    "PermanentAgencyError",
    "PersonApplicant",
    "PollOutcome",
    "PollingConnector",
    "ProcedureSpec",
    "ReceivedDocument",
    "RestRequest",
    "RestResponse",
    "RestTransport",
    "ResultDocument",
    "RunningSimulator",
    "SignatureError",
    "SimulatorBinding",
    "SimulatorOptions",
    "SubmitReceipt",
    "TransientAgencyError",
    "Transport",
    "Unauthenticated",
    "UnsafeAnswer",
    "count_documents",
    "document_bytes",
    "document_chunks",
    "document_problems",
    "hand_over_nonce",
    "hmac_rest",
    "hookimpl",
    "new_simulator",
    "post_until_accepted",
    "spawn",
]
