"""Canonical forms and look-up models of the social insurance procedures."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import Address, FormModel, Gender
from contracts.calendar import VN_TZ
from contracts.identifiers import check_personal_id

# Codes in the national format. (uncertain) The BHXH procedure codes below are placeholders to confirm
# against the national procedure database; they are only used as catalogue keys and on the wire.
CHILD_HEALTH_CARD = "1.003015"  # Cấp thẻ BHYT cho trẻ em dưới 6 tuổi
FUNERAL_ALLOWANCE = "1.003028"  # Giải quyết hưởng trợ cấp mai táng


def _today() -> date:
    return datetime.now(VN_TZ).date()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Child(_Strict):
    """In a birth bundle the child's personal id is not known at submission: the birth step provides it."""

    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    gender: Gender
    personal_id: str | None = None

    @model_validator(mode="after")
    def _checks(self) -> Child:
        if self.personal_id is not None:
            check_personal_id(self.personal_id, date_of_birth=self.date_of_birth, gender=self.gender)
        today = _today()
        if self.date_of_birth > today:
            raise ValueError("the date of birth is in the future")
        sixth = _add_years(self.date_of_birth, 6)
        if sixth <= today:
            raise ValueError("the free card for children is for a child under 6")
        return self


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


class ChildHealthCardForm(FormModel):
    """Thẻ BHYT cho trẻ em dưới 6 tuổi: the child and where it lives (the card is issued there)."""

    child: Child
    residence: Address
    healthcare_facility: str | None = Field(
        None, pattern=r"^\d{5}$", description="mã nơi đăng ký khám chữa bệnh ban đầu (5 digits)"
    )


class Beneficiary(_Strict):
    full_name: str = Field(min_length=1, max_length=200)
    personal_id: str
    relationship: str = Field(min_length=1, max_length=50, description="to the deceased, e.g. con, vợ, chồng")

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        check_personal_id(v)
        return v


class BankAccount(_Strict):
    bank_code: str = Field(pattern=r"^\d{6}$", description="the bank's 6-digit BIN, e.g. 970436")
    account_number: str = Field(pattern=r"^[0-9]{6,19}$")
    account_holder: str = Field(min_length=1, max_length=200)


class FuneralAllowanceForm(FormModel):
    """Trợ cấp mai táng. The death certificate number may come from the death registration step."""

    deceased_personal_id: str
    deceased_full_name: str = Field(min_length=1, max_length=200)
    date_of_death: date
    death_certificate_number: str | None = Field(None, min_length=1, max_length=50)
    beneficiary: Beneficiary
    bank_account: BankAccount

    @field_validator("deceased_personal_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        check_personal_id(v)
        return v

    @field_validator("date_of_death")
    @classmethod
    def _past(cls, v: date) -> date:
        if v > _today():
            raise ValueError("the date of death is in the future")
        return v


class InsuranceNumberQuery(_Strict):
    personal_id: str
    full_name: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        check_personal_id(v)
        return v


class InsuranceNumberAnswer(_Strict):
    found: bool
    social_insurance_number: str | None = Field(None, description="mã số BHXH, 10 digits")
    full_name: str | None = None
    date_of_birth: date | None = None
    gender: Gender | None = None
