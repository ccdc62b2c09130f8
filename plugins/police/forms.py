"""Canonical forms and look-up models of the police procedures."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts import Address, FormModel
from contracts.identifiers import check_personal_id


class Registrant(BaseModel):
    """The person registered when it is not the applicant, e.g. a newborn registered by a parent.

    In a birth bundle the child's personal id is not known at submission: the birth step provides it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    gender: Literal["male", "female"]
    personal_id: str | None = None

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str | None) -> str | None:
        if v is not None:
            check_personal_id(v)
        return v


class ResidenceRegistrationForm(FormModel):
    """Đăng ký thường trú: where the registrant will live and on what legal basis."""

    registrant: Registrant | None = Field(None, description="when the person registered is not the applicant")
    new_address: Address
    legal_basis: Literal["own_house", "relative_house", "rented_house", "other"]
    household_head_id: str | None = Field(None, description="personal id of the household head, if joining")
    relationship_to_head: str | None = Field(None, max_length=50)
    previous_address: Address | None = None

    @field_validator("household_head_id")
    @classmethod
    def _head_id(cls, v: str | None) -> str | None:
        if v is not None:
            check_personal_id(v)
        return v


class ResidenceRemovalForm(FormModel):
    """Xóa đăng ký thường trú: the person leaves the register (here: after a death)."""

    person: Registrant
    reason: Literal["deceased", "moved_abroad", "other"] = "deceased"
    date_of_death: date | None = None
    death_register_number: str | None = Field(None, description="from the death registration step of a bundle")

    @field_validator("person")
    @classmethod
    def _has_id(cls, v: Registrant) -> Registrant:
        if v.personal_id is None:
            raise ValueError("the person removed from the register needs a personal id")
        return v


class IdentityQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    personal_id: str
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date

    @field_validator("personal_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        check_personal_id(v)
        return v


class IdentityAnswer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    found: bool
    match: bool
    vneid_level: int = 0
    mismatched: list[str] = Field(default_factory=list)
