"""Online payment of a dossier's fees or financial obligations through the national payment platform."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.base import AwareDatetime, InputModel, Model

PaymentState = Literal["created", "pending", "paid", "failed"]


class Bill(Model):
    """One amount paid: a tax notice (its number), or the procedure's fee (its code)."""

    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    amount_vnd: int = Field(gt=0)


class PaymentRequest(InputModel):
    """What a centre sends to POST /v1/dossiers/{ref}/payments (with an Idempotency-Key header)."""

    return_url: str | None = Field(
        None, pattern=r"^https?://", max_length=500, description="where the platform sends the payer back"
    )


class Receipt(Model):
    """The platform's electronic receipt (biên lai điện tử), kept by the gateway."""

    number: str
    media_type: str
    size: int
    sha256: str


class Payment(Model):
    id: str
    client_id: str
    dossier_id: str
    dossier_code: str
    agency: str
    state: PaymentState
    amount_vnd: int
    bills: list[Bill]
    pay_url: str | None = None
    qr_data: str | None = Field(None, description="the VietQR payload the payer's banking app scans")
    transaction_id: str | None = None
    paid_at: AwareDatetime | None = None
    bank_ref: str | None = None
    receipt: Receipt | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
