"""The procedure catalog entry (thủ tục hành chính) and the form a procedure requires."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import MediaType, Model, ProcedureCode
from contracts.guide import ProcedureGuide

# A path into a procedure's form naming the places the case lies: dotted keys, `[]` after a key whose
# value is a list (every element), e.g. "parcels[].address" or "parcel".
JURISDICTION_PATH = r"^[a-z_][a-z0-9_]*(\[\])?(\.[a-z_][a-z0-9_]*(\[\])?)*$"


class FormModel(BaseModel):
    """Base for a procedure's form: the procedure-specific part of a submission."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class EmptyForm(FormModel):
    pass


class DocumentRule(Model):
    """What a procedure accepts for one document component (thành phần hồ sơ): how large, which types.

    Unset limits fall back to the gateway's `[documents]` settings; the operator's catalog may override both.
    """

    component_code: str = Field(min_length=1, max_length=50, description="MaThanhPhanHoSo")
    name: str = Field("", max_length=300, description="what the document is, for the counter")
    max_bytes: int | None = Field(None, gt=0, description="largest accepted document, in bytes")
    media_types: tuple[MediaType, ...] = Field((), description="accepted media types; empty: the gateway's list")


class ProcedureSpec(Model):
    """A procedure a plugin serves. The operator's catalog in conf/ can override name, days and fees."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    code: ProcedureCode
    name: str = Field(min_length=1, max_length=300)
    sector: str = Field(min_length=1, max_length=100, description="the field (lĩnh vực) it belongs to: TenLinhVuc")
    sector_code: str | None = Field(
        None, max_length=50, description="the field's code in the national procedure database: MaLinhVuc"
    )
    agency_kind: str = Field(min_length=1, description="the plugin's agency kind that handles it")
    processing_days: int = Field(ge=0, le=365, description="working days from receipt to result")
    jurisdiction: Literal["any", "province"] = "any"
    required_components: tuple[str, ...] = ()
    documents: tuple[DocumentRule, ...] = Field((), description="limits per document component")
    jurisdiction_field: str | None = Field(
        None,
        pattern=JURISDICTION_PATH,
        description="where in the form the case lies (objects with province, commune), e.g. parcels[].address: "
        "the dossier's jurisdiction must agree with it, and one dossier lies in one province",
    )
    form_model: type[FormModel] = Field(default=EmptyForm, exclude=True)
    fees_vnd: int = Field(default=0, ge=0)
    portal_databases: tuple[str, ...] = Field(
        (), description="codes of the national databases the procedure consults (DSKetNoiCSDL.MaCSDL)"
    )
    referral: bool = Field(
        False,
        description="complex cases need the agency itself: the centre books the applicant an appointment "
        "with its officer (GET /v1/appointments/slots, POST /v1/appointments)",
    )
    guide: ProcedureGuide | None = Field(None, description="the applicant's guide, from the operator's guides.toml")

    def form_schema(self) -> dict[str, Any]:
        return self.form_model.model_json_schema()

    def document_rule(self, component_code: str) -> DocumentRule | None:
        return next((r for r in self.documents if r.component_code == component_code), None)
