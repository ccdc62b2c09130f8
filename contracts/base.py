"""Shared model configuration and constrained string types used across the contract."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts import admin_units, identifiers


class Model(BaseModel):
    """Edge models: immutable, unknown fields rejected, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time must carry its UTC offset, e.g. 2025-11-22T09:30:00+07:00")
    return value


def _pattern(regex: re.Pattern[str], example: str) -> Any:
    """The check's shape in the JSON Schema, so clients can validate before they send; the validator
    after it still decides, with a message that says what is wrong."""
    return Field(json_schema_extra={"pattern": regex.pattern, "examples": [example]})


def _province_codes(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(admin_units.provinces())


ProcedureCode = Annotated[
    str, _pattern(identifiers.PROCEDURE_CODE_RE, "1.001193"), AfterValidator(identifiers.check_procedure_code)
]
AgencyEid = Annotated[
    str, _pattern(identifiers.AGENCY_EID_RE, "000.00.01.H26"), AfterValidator(identifiers.check_agency_eid)
]
DossierCode = Annotated[
    str,
    _pattern(identifiers.DOSSIER_CODE_RE, "000.00.01.H26-251122-0001"),
    AfterValidator(identifiers.check_dossier_code),
]
ProvinceCode = Annotated[
    str, Field(json_schema_extra=_province_codes), AfterValidator(admin_units.check_province)
]
CommuneCode = Annotated[str, _pattern(admin_units.COMMUNE_RE, "00070"), AfterValidator(admin_units.check_commune)]
TaxCode = Annotated[str, _pattern(identifiers.TAX_CODE_RE, "0100109106"), AfterValidator(identifiers.check_tax_code)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MediaType = Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
