"""The canonical dossier (hồ sơ): what a centre submits and what the gateway returns."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import date
from enum import IntEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, ValidationInfo, WithJsonSchema, model_validator

from contracts import admin_units, identifiers
from contracts.base import TRUSTED as TRUSTED  # re-exported: plugins take it from here
from contracts.base import (
    AgencyEid,
    AwareDatetime,
    CommuneCode,
    DossierCode,
    InputModel,
    MediaType,
    Model,
    ProcedureCode,
    ProvinceCode,
    Sha256Hex,
    ShortText,
    TaxCode,
    trusted,
)
from contracts.identifiers import Gender
from contracts.status import DossierStatus
from contracts.text import BASE64, MULTILINE, control_character

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^(\+84|0)[0-9]{9,10}$")  # [0-9]: the Rust regex engine's \d is Unicode


class Channel(IntEnum):
    """KenhThucHien."""

    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3


class ReturnMethod(IntEnum):
    """HinhThuc of returning the result."""

    IN_PERSON = 0
    POSTAL = 1
    WALLET = 2  # pushed to the applicant's VNeID wallet (electronic result), with their consent


class Address(InputModel):
    province: ProvinceCode
    commune: CommuneCode
    line: str = Field(min_length=1, max_length=300, description="house number, street, hamlet")

    @model_validator(mode="after")
    def _commune_in_province(self, info: ValidationInfo) -> Address:
        if not trusted(info):
            admin_units.check_commune(self.commune, self.province)
        return self


class _Contact(InputModel):
    phone: str | None = Field(default=None, pattern=_PHONE_RE.pattern)
    email: str | None = Field(default=None, max_length=254, pattern=_EMAIL_RE.pattern)


def _kind_required(schema: dict[str, Any]) -> None:
    """`kind` picks the applicant model, so a submission must name it (the default serves Python callers)."""
    schema["required"] = ["kind", *schema.get("required", [])]


class PersonApplicant(_Contact):
    """A citizen (LoaiDoiTuong 1). The personal id must agree with date of birth and gender."""

    model_config = ConfigDict(json_schema_extra=_kind_required)

    kind: Literal["person"] = "person"
    full_name: ShortText
    personal_id: str = Field(
        description="12-digit personal id, or 9 digits for an old identity card",
        json_schema_extra={"pattern": r"^(\d{12}|\d{9})$", "examples": ["079090001234"]},
    )
    date_of_birth: date
    gender: Gender
    address: Address | None = None
    vneid_level: Literal[0, 1, 2] = Field(0, description="VNeID account level; 0 when not verified")

    @model_validator(mode="after")
    def _id_agrees(self, info: ValidationInfo) -> PersonApplicant:
        if not trusted(info):
            identifiers.check_personal_id(self.personal_id, date_of_birth=self.date_of_birth, gender=self.gender)
        return self

    @property
    def id_kind(self) -> identifiers.IdKind:
        return identifiers.id_kind(self.personal_id)


class OrganisationApplicant(_Contact):
    """A business (LoaiDoiTuong 2), a state agency (3) or another organisation (4)."""

    model_config = ConfigDict(json_schema_extra=_kind_required)

    kind: Literal["organisation"] = "organisation"
    name: ShortText
    tax_code: TaxCode
    organisation_type: Literal[2, 3, 4] = 2
    representative: PersonApplicant | None = None
    address: Address | None = None


Applicant = Annotated[PersonApplicant | OrganisationApplicant, Field(discriminator="kind")]


class Jurisdiction(InputModel):
    """Where the case belongs: the parcel's province for land, the residence for police procedures."""

    province: ProvinceCode
    commune: CommuneCode | None = None

    @model_validator(mode="after")
    def _commune_in_province(self, info: ValidationInfo) -> Jurisdiction:
        if self.commune is not None and not trusted(info):
            admin_units.check_commune(self.commune, self.province)
        return self


_MEDIA_TYPE_SCHEMA = {"type": "string", "pattern": "^[a-z]+/[a-z0-9.+-]+$", "maxLength": 100}


class Attachment(InputModel):
    """A submitted document (TaiLieuNop), in one of three ways: inline (`content_base64`, for small
    documents), uploaded first (`upload_id` from POST /v1/documents) or by `url` (fetched by the gateway).

    Inline content is checked against its size and sha256 here; uploads and fetched documents are checked
    by the gateway. A `url` beside inline content or an upload only records where the document came from.
    As the gateway returns it, an attachment is a reference: its bytes are in the gateway's document store.
    """

    component_code: str = Field(min_length=1, max_length=50, description="MaThanhPhanHoSo")
    name: ShortText
    # Left out (never null) when upload_id names an upload: the schema publishes the values' own shape.
    media_type: Annotated[MediaType | None, WithJsonSchema(_MEDIA_TYPE_SCHEMA)] = Field(
        None, description="required unless upload_id names an upload"
    )
    size: Annotated[int | None, WithJsonSchema({"type": "integer", "exclusiveMinimum": 0})] = Field(
        default=None, gt=0, description="bytes; required unless upload_id names an upload"
    )
    sha256: Annotated[Sha256Hex | None, WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{64}$"})] = Field(
        default=None, description="required unless upload_id names an upload"
    )
    content_base64: Annotated[str | None, BASE64] = None
    upload_id: str | None = Field(
        default=None, pattern=r"^[0-9a-f-]{36}$", description="the id POST /v1/documents answered"
    )
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    digitised: bool = False
    reused: bool = Field(False, description="reuses data or a document already held electronically (DuocTaiSuDung)")
    replaced_by_result: str | None = Field(
        None, max_length=100, description="code of an earlier result that stands in for this document (MaKetQuaThayThe)"
    )
    from_portal_store: bool = Field(
        False, description="taken from the applicant's document store on the national portal (DuocLayTuKhoDMQG)"
    )

    @model_validator(mode="after")
    def _content_matches(self, info: ValidationInfo) -> Attachment:
        if trusted(info):
            return self  # checked when it was received; re-hashing stored megabytes on every read is waste
        if self.content_base64 is None and self.upload_id is None and self.url is None:
            raise ValueError("an attachment needs inline content_base64, an upload_id or a url")
        if self.content_base64 is not None and self.upload_id is not None:
            raise ValueError("an attachment is either inline (content_base64) or uploaded (upload_id), not both")
        if self.upload_id is None:
            missing = [k for k in ("media_type", "size", "sha256") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"an attachment sent inline or by url declares its {', '.join(missing)}")
        if self.content_base64 is None:
            return self
        try:
            raw = base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content_base64 is not valid base64") from None
        if len(raw) != self.size:
            raise ValueError(f"size says {self.size} bytes but the content has {len(raw)}")
        if hashlib.sha256(raw).hexdigest() != self.sha256:
            raise ValueError("sha256 does not match the content")
        return self

    @property
    def inline_bytes(self) -> int:
        return (self.size or 0) if self.content_base64 is not None else 0

    @property
    def source(self) -> Literal["inline", "upload", "url"]:
        """How the document reached the gateway: inline content first, then an upload, then a url."""
        if self.content_base64 is not None:
            return "inline"
        return "upload" if self.upload_id is not None else "url"


class Fee(InputModel):
    """A fee or charge (DanhSachLePhi); amounts in VND."""

    code: str = Field(min_length=1, max_length=50)
    name: ShortText
    amount: int = Field(ge=0)
    kind: Literal["fee", "charge", "tax"] = "fee"
    paid_online: bool = False
    payment_portal: Literal["national", "local"] = Field(
        "national", description="where it was paid online: the national portal, or a provincial or ministry one"
    )


class WalletConsent(InputModel):
    """The applicant's consent to receive the result in their VNeID wallet (return_method 2)."""

    given_at: AwareDatetime = Field(description="when the applicant consented")
    channel: Literal["counter", "vneid_app", "portal"] = Field(description="where: at the desk, in the app, online")
    reference: str = Field(
        min_length=1, max_length=100, description="the signed form's number, or the app's consent id"
    )


class DossierSubmission(InputModel):
    """What a centre sends to POST /v1/dossiers."""

    procedure_code: ProcedureCode
    channel: Channel = Channel.IN_PERSON
    applicant: Applicant
    jurisdiction: Jurisdiction
    summary: Annotated[str, MULTILINE] = Field(min_length=1, max_length=1000, description="TrichYeuHoSo")
    form: dict[str, Any] = Field(default_factory=dict, description="procedure-specific data")
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)
    fees: list[Fee] = Field(default_factory=list, max_length=20)
    return_method: ReturnMethod = ReturnMethod.IN_PERSON
    wallet_consent: WalletConsent | None = Field(
        None, description="required with return_method 2 (VNeID wallet): the applicant's recorded consent"
    )
    external_ref: str | None = Field(default=None, max_length=100, description="the centre's own reference")
    submitted_at: AwareDatetime | None = Field(
        None, description="when the applicant submitted it online (NgayNopHoSo); absent: when the centre received it"
    )

    @model_validator(mode="after")
    def _wallet_needs_consent_and_a_citizen(self) -> DossierSubmission:
        if self.return_method == ReturnMethod.WALLET:
            if self.wallet_consent is None:
                raise ValueError("return_method 2 (VNeID wallet) needs the applicant's wallet_consent")
            if not isinstance(self.applicant, PersonApplicant):
                raise ValueError("return_method 2 (VNeID wallet): only a citizen has a VNeID wallet")
        return self

    @model_validator(mode="after")
    def _not_submitted_in_the_future(self, info: ValidationInfo) -> DossierSubmission:
        if self.submitted_at is not None and not trusted(info):
            identifiers.check_not_future(self.submitted_at, "submitted_at")
        return self


class ResultDocument(Model):
    """A result (DanhSachGiayToKetQua): the certificate, decision or notice."""

    # The gateway checks what an agency sends when it applies the update (`result_errors`), so that a result
    # it keeps is one it can hand out: content that decodes to `size` bytes hashing to `sha256`, or a URL.

    name: ShortText
    component_code: str = Field(min_length=1, max_length=50)
    result_code: str | None = Field(default=None, max_length=100)
    media_type: MediaType = "application/pdf"
    size: int = Field(ge=0)
    sha256: Sha256Hex
    content_base64: str | None = None
    url: str | None = None


_MEDIA_TYPE_RE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
_URL_RE = re.compile(r"^https?://[^\s]+$")


def result_errors(doc: ResultDocument) -> list[tuple[str, str]]:
    """What is wrong with a result document an agency sent, as (field, message); empty when it is sound.

    Checked again here, not only by the model: a plugin may build its updates without validation.
    """
    errors: list[tuple[str, str]] = []
    for name in ("name", "component_code", "result_code"):
        why = control_character(getattr(doc, name) or "")
        if why is not None:
            errors.append((name, why))
    if not _MEDIA_TYPE_RE.match(doc.media_type or "") or len(doc.media_type) > 100:
        errors.append(("media_type", f"{doc.media_type!r} is not a media type such as application/pdf"))
    if doc.content_base64 is None:
        if doc.url is None:
            errors.append(("content_base64", "a result needs its content (content_base64) or a url"))
        elif len(doc.url) > 2000 or not _URL_RE.match(doc.url):
            errors.append(("url", "must be an http:// or https:// URL of at most 2000 characters"))
        return errors
    try:
        raw = base64.b64decode(doc.content_base64, validate=True)
    except (binascii.Error, ValueError):
        return [*errors, ("content_base64", "is not valid base64")]
    if len(raw) != doc.size:
        errors.append(("size", f"says {doc.size} bytes but the content has {len(raw)}"))
    if hashlib.sha256(raw).hexdigest() != doc.sha256:
        errors.append(("sha256", "does not match the content"))
    return errors


class SuppliedDocument(Model):
    """A document the applicant supplied in answer to a supplement request (its content went to the agency)."""

    name: str
    component_code: str = ""
    media_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    url: str | None = None


class SupplementRequest(Model):
    """An agency asks for more documents (status 5): what, and by when (DanhSachHoSoBoSung)."""

    requested_by: str
    items: list[str] = Field(min_length=1)
    note: str = ""
    requested_at: AwareDatetime
    due_at: AwareDatetime = Field(description="the applicant's deadline; 7 working days unless the agency says")
    repeated: bool = Field(
        False, description="not the dossier's first request: the national portal counts the dossier as late"
    )
    answered_at: AwareDatetime | None = None
    answered_by: str | None = Field(None, description="the centre that took the answer")
    documents: list[SuppliedDocument] = Field(default_factory=list, description="what the applicant supplied")
    dossier_due_before: AwareDatetime | None = Field(None, description="the dossier's due date when asked")
    dossier_due_after: AwareDatetime | None = Field(None, description="its due date once answered")


class StatusEvent(Model):
    """One append-only change of a dossier's status."""

    seq: int
    status: DossierStatus
    at: AwareDatetime
    actor: str
    note: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class DeliveryState(Model):
    """Where the delivery of a dossier to its agency stands."""

    # waiting: a bundle step whose earlier steps have not finished; cancelled: never to be delivered.
    state: Literal["waiting", "pending", "in_flight", "delivered", "dead", "cancelled"]
    attempts: int
    last_error: str | None = None
    next_attempt_at: AwareDatetime | None = None


class PortalRefusal(Model):
    """The national portal refused the dossier's record: what it said, for an operator to put right.

    Cleared once the portal takes a push that holds the dossier."""

    at: AwareDatetime
    service: str = Field(description="DongBoHoSoMC or CapNhatTienDoHoSoMC")
    error_code: str
    message: str
    field: str | None = Field(None, description="the record's field the portal named, if it named one")


class Dossier(Model):
    """A dossier as the gateway holds it."""

    id: UUID
    code: DossierCode
    procedure_code: ProcedureCode
    procedure_name: str
    receiving_unit: AgencyEid
    client_id: str
    agency: str
    endpoint: str
    status: DossierStatus
    received_at: AwareDatetime
    due_at: AwareDatetime
    updated_at: AwareDatetime
    agency_ref: str | None = None
    overdue: bool = Field(
        False, description="past its due date, or asked for a supplement more than once (the portal counts it late)"
    )
    submission: DossierSubmission
    delivery: DeliveryState | None = None
    results: list[ResultDocument] = Field(default_factory=list)
    supplements: list[SupplementRequest] = Field(default_factory=list, description="oldest first")
    portal_refusal: PortalRefusal | None = None
