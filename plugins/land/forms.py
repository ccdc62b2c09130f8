"""Canonical forms of the land procedures: parcels, the parties of a transfer, the declared price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import Address, FormModel
from contracts.identifiers import check_personal_id, check_tax_code

# Map sheet and parcel numbers are short codes in practice ("12", "45a", "3/2"); kept as text.
_SHORT_CODE = r"^[0-9A-Za-z][0-9A-Za-z./-]{0,19}$"

Phase = Literal["full", "declaration", "registration"]


class Parcel(BaseModel):
    """A land parcel (thửa đất) as the cadastral map names it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    map_sheet: str = Field(pattern=_SHORT_CODE, description="số tờ bản đồ")
    parcel_no: str = Field(pattern=_SHORT_CODE, description="số thửa")
    area_m2: Decimal = Field(gt=0, le=100_000_000, decimal_places=2)
    address: Address
    land_use: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="mục đích sử dụng, e.g. ODT, ONT, CLN")
    certificate_serial: str | None = Field(None, max_length=200, description="số phát hành of the current GCN")


class Party(BaseModel):
    """A transferor or transferee: a person by personal id, or an organisation by tax code."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=1, max_length=200)
    personal_id: str | None = None
    tax_code: str | None = None

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str | None) -> str | None:
        if v is not None:
            check_personal_id(v)
        return v

    @field_validator("tax_code")
    @classmethod
    def _tax(cls, v: str | None) -> str | None:
        return None if v is None else check_tax_code(v)

    @model_validator(mode="after")
    def _one_id(self) -> Party:
        if (self.personal_id is None) == (self.tax_code is None):
            raise ValueError("a party has a personal_id or a tax_code")
        return self


class LandTransferForm(FormModel):
    """Đăng ký biến động: chuyển nhượng quyền sử dụng đất.

    `phase` tells the land office which part it does: in the land-transfer bundle the first step is the
    declaration (the office checks the dossier and sends the cadastral data to tax) and the last is the
    registration (parcels and the office's number come from the first step, tax receipts from the tax step);
    `full` is the whole procedure at the office, obligations settled with it.
    """

    phase: Phase = "full"
    parcels: list[Parcel] = Field(default_factory=list, max_length=50)
    transferors: list[Party] = Field(default_factory=list, max_length=10, description="bên chuyển nhượng")
    transferees: list[Party] = Field(default_factory=list, max_length=10, description="bên nhận chuyển nhượng")
    declared_price_vnd: int | None = Field(None, ge=0, le=10**15, description="giá ghi trên hợp đồng")
    contract_no: str | None = Field(None, max_length=100, description="số hợp đồng công chứng")

    @model_validator(mode="after")
    def _phase_fields(self) -> LandTransferForm:
        if self.phase == "registration":
            return self  # the declaration step provides the rest
        missing = [
            name
            for name, value in (
                ("parcels", self.parcels),
                ("transferors", self.transferors),
                ("transferees", self.transferees),
                ("declared_price_vnd", self.declared_price_vnd is not None),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"a transfer {self.phase} needs {', '.join(missing)}")
        return self


class FirstCertificateForm(FormModel):
    """Đăng ký đất đai, cấp Giấy chứng nhận lần đầu: the parcels and how the land was acquired."""

    parcels: list[Parcel] = Field(min_length=1, max_length=50)
    origin: Literal["allocated", "leased", "recognised", "inherited", "other"] = Field(
        "recognised", description="nguồn gốc sử dụng đất"
    )
    in_use_since: int | None = Field(None, ge=1900, le=2100, description="năm bắt đầu sử dụng")
