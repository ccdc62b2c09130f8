"""The procedure catalog entry (thủ tục hành chính) and the form a procedure requires."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Model, ProcedureCode


class FormModel(BaseModel):
    """Base for a procedure's form: the procedure-specific part of a submission."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class EmptyForm(FormModel):
    pass


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
    form_model: type[FormModel] = Field(default=EmptyForm, exclude=True)
    fees_vnd: int = Field(default=0, ge=0)
    portal_databases: tuple[str, ...] = Field(
        (), description="codes of the national databases the procedure consults (DSKetNoiCSDL.MaCSDL)"
    )

    def form_schema(self) -> dict[str, Any]:
        return self.form_model.model_json_schema()
