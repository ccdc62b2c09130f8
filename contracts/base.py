"""Shared model configuration and constrained string types used across the contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts import admin_units, identifiers


class Model(BaseModel):
    """Edge models: immutable, unknown fields rejected, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time must carry its UTC offset, e.g. 2025-11-22T09:30:00+07:00")
    return value


ProcedureCode = Annotated[str, AfterValidator(identifiers.check_procedure_code)]
AgencyEid = Annotated[str, AfterValidator(identifiers.check_agency_eid)]
DossierCode = Annotated[str, AfterValidator(identifiers.check_dossier_code)]
ProvinceCode = Annotated[str, AfterValidator(admin_units.check_province)]
CommuneCode = Annotated[str, AfterValidator(admin_units.check_commune)]
TaxCode = Annotated[str, AfterValidator(identifiers.check_tax_code)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MediaType = Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
