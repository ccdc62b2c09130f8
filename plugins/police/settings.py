"""Settings of one police endpoint: the signed REST service, and which procedures it sends as removals."""

from __future__ import annotations

from pydantic import Field, field_validator

from contracts.base import ProcedureCode
from gateway.sdk import EndpointSettings

# Xóa đăng ký thường trú (removal of permanent residence) as this plugin registers it. The code is
# uncertain: the wire operation follows an endpoint's `removal_procedures`, never this constant.
REMOVAL_PROCEDURE = "1.004206"


class PoliceSettings(EndpointSettings):
    """One `[agency.<police>.endpoints.<endpoint>]` table."""

    key_id: str = Field(min_length=1, description="key id the agency issued to this gateway")
    secret: str = Field(min_length=16, description="shared HMAC secret (use ${ENV} in conf)")
    max_answer_bytes: int = Field(1024 * 1024, gt=0)
    removal_procedures: tuple[ProcedureCode, ...] = Field(
        (REMOVAL_PROCEDURE,),
        description="procedure codes sent as a removal of permanent residence (xóa đăng ký thường trú); "
        "the endpoint sends every other procedure as a registration",
    )

    @field_validator("removal_procedures")
    @classmethod
    def _listed_once(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({code for code in v if v.count(code) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice")
        return v
