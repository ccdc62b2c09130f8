"""Canonical form of the land-transfer tax declaration, and the tax look-up models."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import FormModel
from contracts.admin_units import check_commune
from contracts.base import CommuneCode, ProvinceCode, TaxCode
from contracts.identifiers import check_personal_id

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
MAX_VND = 10**15


class Party(BaseModel):
    """A side of the transfer. Since July 2025 an individual's personal id is also their tax code."""

    model_config = _FROZEN

    full_name: str = Field(min_length=1, max_length=200)
    personal_id: str
    tax_code: TaxCode | None = Field(None, description="an older 10-digit personal tax code, if the person has one")

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        check_personal_id(v)
        return v


class Parcel(BaseModel):
    """The land parcel (thửa đất) as the land register knows it."""

    model_config = _FROZEN

    province: ProvinceCode
    commune: CommuneCode
    map_sheet_no: str = Field(min_length=1, max_length=20, description="tờ bản đồ số")
    parcel_no: str = Field(min_length=1, max_length=20, description="thửa đất số")
    area_m2: Decimal = Field(gt=0, le=100_000_000, decimal_places=2)
    address: str = Field(min_length=1, max_length=300)

    @model_validator(mode="after")
    def _commune_in_province(self) -> Parcel:
        check_commune(self.commune, self.province)
        return self


class LandTransferTaxForm(FormModel):
    """Khai nghĩa vụ tài chính khi chuyển nhượng quyền sử dụng đất: who, which parcel, at what price."""

    transferor: Party = Field(description="bên chuyển nhượng: pays the personal income tax")
    transferee: Party = Field(description="bên nhận chuyển nhượng: pays the registration fee")
    parcel: Parcel
    declared_price_vnd: int = Field(gt=0, le=MAX_VND, description="price stated in the transfer contract, VND")
    contract_date: date | None = None
    pit_exemption: Literal["family", "sole_residence"] | None = Field(
        None, description="personal income tax exemption claimed: transfer within the family, or the only home"
    )

    @model_validator(mode="after")
    def _two_people(self) -> LandTransferTaxForm:
        if self.transferor.personal_id == self.transferee.personal_id:
            raise ValueError("the transferor and the transferee are the same person")
        return self


class TaxpayerQuery(BaseModel):
    """Find a taxpayer by tax code (organisations, older personal codes) or by personal id."""

    model_config = _FROZEN

    tax_code: TaxCode | None = None
    personal_id: str | None = None

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str | None) -> str | None:
        if v is not None:
            check_personal_id(v)
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> TaxpayerQuery:
        if (self.tax_code is None) == (self.personal_id is None):
            raise ValueError("give either tax_code or personal_id")
        return self


class TaxpayerAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    found: bool
    tax_code: str | None = None
    personal_id: str | None = None
    name: str | None = None
    kind: Literal["individual", "organisation"] | None = None
    status: Literal["active", "suspended", "closed"] | None = None
    tax_office: str | None = None
    address: str | None = None


class NoticeQuery(BaseModel):
    model_config = _FROZEN

    notice_number: str = Field(min_length=1, max_length=30)


class NoticeAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    found: bool
    notice_number: str
    dossier_code: str | None = None
    kind: Literal["registration_fee", "personal_income_tax"] | None = None
    amount_vnd: int | None = None
    due_date: date | None = None
    status: Literal["paid", "unpaid", "overdue"] | None = None
    paid_date: date | None = None
    receipt_number: str | None = None
