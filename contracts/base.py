"""Shared model configuration and constrained string types used across the contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from contracts import admin_units, identifiers
from contracts.text import BASE64, MULTILINE, control_character, json_control_characters

# Validation context key for data the gateway itself stored after validating it at intake.
TRUSTED = "trusted_store"


def trusted(info: ValidationInfo) -> bool:
    """Read back from the store (`TRUSTED` in the validation context): checked when it came in. Its
    consistency checks are not run again: they cost the drain a pydantic pass per claimed dossier, and a
    stored record must read even after the rules or the lists behind them (communes merge) have changed."""
    return bool(info.context and info.context.get(TRUSTED))


def _unless_trusted(check: Callable[[str], str]) -> Callable[[str, ValidationInfo], str]:
    def validate(value: str, info: ValidationInfo) -> str:
        return value if trusted(info) else check(value)

    return validate


class Model(BaseModel):
    """Edge models: immutable, unknown fields rejected, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class InputModel(Model):
    """What a centre sends: no control characters in its text either (contracts/text.py).

    Views built from stored data (dossiers, events, portal records) are plain Models: what was stored was
    checked when it came in, and a record must never fail to be read.
    """

    # Found once per class from its fields' types: one check per model, not a validator call per field.
    _text_fields: ClassVar[tuple[tuple[str, bool], ...]] = ()  # (name, multiline) of str and list[str] fields
    _json_fields: ClassVar[tuple[str, ...]] = ()  # free-form objects (a procedure's form)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        text, json = [], []
        for name, info in cls.model_fields.items():
            kinds = _kinds(info.annotation)
            if BASE64 in info.metadata:
                continue  # its own check refuses any character outside the base64 alphabet
            if kinds & {"str"}:
                text.append((name, MULTILINE in info.metadata))
            elif kinds & {"json"}:
                json.append(name)
        cls._text_fields, cls._json_fields = tuple(text), tuple(json)

    @model_validator(mode="after")
    def _no_control_characters(self, info: ValidationInfo) -> Self:
        if trusted(info):
            return self  # read back from the store: checked when it came in, and it must always read
        found: list[tuple[tuple[str | int, ...], str]] = []
        for name, multiline in self._text_fields:
            value = getattr(self, name)
            for loc, text in (
                (((name,), value),) if not isinstance(value, list) else (((name, i), v) for i, v in enumerate(value))
            ):
                if isinstance(text, str) and not text.isprintable():
                    why = control_character(text, multiline=multiline)
                    if why is not None:
                        found.append((loc, why))
        for name in self._json_fields:
            found += json_control_characters(getattr(self, name), (name,))
        if found:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(type=PydanticCustomError("control_character", why), loc=loc, input=None)
                    for loc, why in found
                ],
            )
        return self


def _kinds(annotation: Any) -> set[str]:
    """ "str" for text (str, str | None, list[str]), "json" for free-form values (dict, list of them)."""
    if annotation is str:
        return {"str"}
    origin = get_origin(annotation)
    if origin is dict:
        return {"json"}
    if origin is list:
        return {"str"} if get_args(annotation) == (str,) else set()
    if origin in (Union, UnionType):
        return set().union(*(_kinds(a) for a in get_args(annotation)))
    return set()


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
    str,
    _pattern(identifiers.PROCEDURE_CODE_RE, "1.001193"),
    AfterValidator(_unless_trusted(identifiers.check_procedure_code)),
]
AgencyEid = Annotated[
    str,
    _pattern(identifiers.AGENCY_EID_RE, "000.00.01.H26"),
    AfterValidator(_unless_trusted(identifiers.check_agency_eid)),
]
DossierCode = Annotated[
    str,
    _pattern(identifiers.DOSSIER_CODE_RE, "000.00.01.H26-251122-0001"),
    AfterValidator(_unless_trusted(identifiers.check_dossier_code)),
]
ProvinceCode = Annotated[
    str, Field(json_schema_extra=_province_codes), AfterValidator(_unless_trusted(admin_units.check_province))
]
CommuneCode = Annotated[
    str, _pattern(admin_units.COMMUNE_RE, "00070"), AfterValidator(_unless_trusted(admin_units.check_commune))
]
TaxCode = Annotated[
    str, _pattern(identifiers.TAX_CODE_RE, "0100109106"), AfterValidator(_unless_trusted(identifiers.check_tax_code))
]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MediaType = Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
