"""Inter-agency bundles (liên thông): one submission, several agencies in order, and supplements."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from contracts.base import AwareDatetime, InputModel, Model
from contracts.dossier import (
    Applicant,
    Attachment,
    Channel,
    Jurisdiction,
    ResultDocument,
    ReturnMethod,
    SupplementRequest,
    WalletConsent,
)
from contracts.status import DossierStatus
from contracts.text import MULTILINE

StepId = str


class BundleSubmission(InputModel):
    """What a centre sends to POST /v1/bundles. Each chosen step becomes a dossier of its own."""

    bundle: str = Field(min_length=1, max_length=100, description="bundle id from the catalog")
    steps: list[StepId] | None = Field(None, description="steps the applicant chose; default: all")
    channel: Channel = Channel.IN_PERSON
    applicant: Applicant
    jurisdiction: Jurisdiction
    summary: Annotated[str, MULTILINE] = Field(min_length=1, max_length=1000)
    forms: dict[StepId, dict[str, Any]] = Field(default_factory=dict)
    attachments: dict[StepId, list[Attachment]] = Field(default_factory=dict)
    return_method: ReturnMethod = ReturnMethod.IN_PERSON
    wallet_consent: WalletConsent | None = Field(
        None, description="with return_method 2: the applicant's consent; each step's results go to the wallet"
    )
    external_ref: str | None = Field(default=None, max_length=100)


# in_progress: steps run or wait their turn; supplement_requested: an agency waits for documents;
# action_required: a step failed and the centre decides (retry, cancel the rest); completed: every step
# finished; cancelled: the remaining steps were cancelled; stopped: an agency refused the last open step.
BundleState = Literal["in_progress", "supplement_requested", "action_required", "completed", "cancelled", "stopped"]
# waiting: for an earlier step; pending: queued or between retries; dead: delivery given up (retry it).
StepState = Literal["waiting", "pending", "in_flight", "delivered", "dead", "cancelled"]
BundleAction = Literal["retry", "supplement", "cancel_remaining"]


class BundleStepView(Model):
    step: StepId
    procedure_code: str
    dossier_id: UUID
    dossier_code: str
    agency: str
    status: DossierStatus
    delivery: StepState
    attempts: int
    last_error: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    results: list[ResultDocument] = Field(default_factory=list)
    supplement: SupplementRequest | None = Field(None, description="what the agency waits for, while status is 5")


class BundleView(Model):
    id: UUID
    bundle: str
    name: str
    client_id: str
    state: BundleState
    actions: list[BundleAction]
    created_at: AwareDatetime
    steps: list[BundleStepView]


class ResultHandover(InputModel):
    """The centre hands the result to the applicant (status 9 -> 10), wherever the dossier was received."""

    note: Annotated[str, MULTILINE] = Field(
        "", max_length=1000, description="e.g. who collected it, on what identification"
    )


class SupplementAnswer(InputModel):
    """The centre answers a supplement request (status 5) with the documents asked for."""

    note: Annotated[str, MULTILINE] = Field("", max_length=1000)
    attachments: list[Attachment] = Field(min_length=1, max_length=50)
