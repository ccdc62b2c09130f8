"""Lienthong canonical dossier contract, version 1. Pure data and validation: no I/O."""

from contracts.dossier import (
    Address,
    Applicant,
    Attachment,
    Channel,
    DeliveryState,
    Dossier,
    DossierSubmission,
    Fee,
    Jurisdiction,
    OrganisationApplicant,
    PersonApplicant,
    ResultDocument,
    ReturnMethod,
    StatusEvent,
    SupplementRequest,
)
from contracts.identifiers import Gender, IdKind
from contracts.procedure import DocumentRule, EmptyForm, FormModel, ProcedureSpec
from contracts.status import DossierStatus, IllegalTransitionError

CONTRACT_VERSION = "v1"

__all__ = [
    "CONTRACT_VERSION",
    "Address",
    "Applicant",
    "Attachment",
    "Channel",
    "DeliveryState",
    "DocumentRule",
    "Dossier",
    "DossierStatus",
    "DossierSubmission",
    "EmptyForm",
    "Fee",
    "FormModel",
    "Gender",
    "IdKind",
    "IllegalTransitionError",
    "Jurisdiction",
    "OrganisationApplicant",
    "PersonApplicant",
    "ProcedureSpec",
    "ResultDocument",
    "ReturnMethod",
    "StatusEvent",
    "SupplementRequest",
]
