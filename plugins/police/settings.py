"""Settings of one police endpoint: the signed REST service."""

from __future__ import annotations

from pydantic import Field

from gateway.connector import EndpointSettings


class PoliceSettings(EndpointSettings):
    """One `[agency.<police>.endpoints.<endpoint>]` table."""

    key_id: str = Field(min_length=1, description="key id the agency issued to this gateway")
    secret: str = Field(min_length=16, description="shared HMAC secret (use ${ENV} in conf)")
    max_answer_bytes: int = Field(1024 * 1024, gt=0)
