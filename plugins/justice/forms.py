"""Canonical forms of the civil status (hộ tịch) procedures."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import Address, FormModel, Gender
from contracts.calendar import VN_TZ
from contracts.identifiers import check_personal_id

BIRTH_REGISTRATION = "1.001193"  # Đăng ký khai sinh
DEATH_REGISTRATION = "1.000656"  # Đăng ký khai tử


def _today() -> date:
    return datetime.now(VN_TZ).date()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Parent(_Strict):
    full_name: str = Field(min_length=1, max_length=200)
    personal_id: str
    date_of_birth: date
    ethnicity: str = Field("Kinh", min_length=1, max_length=50)
    nationality: str = Field("VN", pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2")

    @model_validator(mode="after")
    def _id_agrees(self) -> Parent:
        check_personal_id(self.personal_id, date_of_birth=self.date_of_birth)
        return self


class Newborn(_Strict):
    full_name: str = Field(min_length=1, max_length=200)
    gender: Gender
    date_of_birth: date
    place_of_birth: Address
    ethnicity: str = Field("Kinh", min_length=1, max_length=50)
    nationality: str = Field("VN", pattern=r"^[A-Z]{2}$")
    hometown: str | None = Field(None, max_length=300, description="quê quán")

    @field_validator("date_of_birth")
    @classmethod
    def _past(cls, v: date) -> date:
        if v > _today():
            raise ValueError("the date of birth is in the future")
        return v


class BirthRegistrationForm(FormModel):
    """Đăng ký khai sinh: the child and at least one parent. The child's personal id is issued by the agency."""

    child: Newborn
    mother: Parent | None = None
    father: Parent | None = None
    relationship: Literal["mother", "father", "grandparent", "relative", "other"] = Field(
        description="the applicant's relationship to the child"
    )

    @model_validator(mode="after")
    def _parents(self) -> BirthRegistrationForm:
        parents = [p for p in (self.mother, self.father) if p is not None]
        if not parents:
            raise ValueError("a birth registration names the mother, the father or both")
        if any(p.date_of_birth >= self.child.date_of_birth for p in parents):
            raise ValueError("a parent is born after the child")
        return self


class Deceased(_Strict):
    full_name: str = Field(min_length=1, max_length=200)
    personal_id: str
    date_of_birth: date
    gender: Gender
    date_of_death: date
    place_of_death: Address
    cause: str | None = Field(None, max_length=300)

    @model_validator(mode="after")
    def _checks(self) -> Deceased:
        check_personal_id(self.personal_id, date_of_birth=self.date_of_birth, gender=self.gender)
        if self.date_of_death < self.date_of_birth:
            raise ValueError("the date of death is before the date of birth")
        if self.date_of_death > _today():
            raise ValueError("the date of death is in the future")
        return self


class DeathNotice(_Strict):
    """Giấy báo tử from the hospital or the commune: what proves the death."""

    number: str = Field(min_length=1, max_length=50)
    issued_by: str = Field(min_length=1, max_length=200)
    issued_on: date


class DeathRegistrationForm(FormModel):
    """Đăng ký khai tử."""

    deceased: Deceased
    death_notice: DeathNotice
    relationship: str = Field(min_length=1, max_length=50, description="the applicant's relationship to the deceased")

    @model_validator(mode="after")
    def _notice_after_death(self) -> DeathRegistrationForm:
        if self.death_notice.issued_on < self.deceased.date_of_death:
            raise ValueError("the death notice is dated before the death")
        return self
