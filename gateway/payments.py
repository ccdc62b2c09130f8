"""Online payment through the national payment platform: create, the payer's redirect or QR, the callback
with the transaction, and the reconciliation query that finds a payment whose callback was lost.

The wire (JSON, every request and callback HMAC-signed with the shared key, adapters/signing.py):
  POST {url}/api/v1/payments {merchant_code, order_id, amount, currency, description, bills, dossier_code,
       beneficiary, return_url, callback_url}     -> {transaction_id, order_id, pay_url, qr_data, state}
  GET  {url}/api/v1/payments/{order_id}           -> Transaction
  POST {callback_url} Transaction                  (the platform, once paid)
A Transaction: {transaction_id, order_id, state PENDING|PAID|EXPIRED|FAILED, amount, paid_at, bank_ref,
receipt {number, media_type, content_base64}}. The order id is the gateway's payment id: creating twice
creates one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.rest import RestRequest, RestTransport
from adapters.signing import HmacSigner, HmacVerifier
from contracts import Dossier
from contracts.payment import Payment
from gateway.config.model import PaymentSettings
from gateway.errors import AgencyError, MalformedAnswer, StorageUnavailable
from gateway.store.base import Store
from gateway.store.payments import PaidNotice

log = structlog.get_logger("lienthong.payments")
AGENCY = "payment-platform"  # how its calls and failures are named in logs and errors
CALLBACK_PATH = "/v1/payments/callback"


class Created(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transaction_id: str = Field(min_length=1, max_length=100)
    pay_url: str = Field(pattern=r"^https?://", max_length=1000)
    qr_data: str = Field(min_length=1, max_length=1000)


class ReceiptFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: str = Field(min_length=1, max_length=100)
    media_type: str = Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")
    content_base64: str = Field(min_length=1, max_length=2_000_000)

    def content(self) -> bytes:
        return base64.b64decode(self.content_base64, validate=True)


class Transaction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transaction_id: str = Field(min_length=1, max_length=100)
    order_id: str = Field(min_length=1, max_length=100)
    state: Literal["PENDING", "PAID", "EXPIRED", "FAILED"]
    amount: int = Field(ge=0)
    paid_at: datetime | None = None
    bank_ref: str | None = Field(None, max_length=100)
    receipt: ReceiptFile | None = None

    @model_validator(mode="after")
    def _paid_is_complete(self) -> Transaction:
        if self.state == "PAID":
            if self.paid_at is None or self.paid_at.tzinfo is None or not self.bank_ref or self.receipt is None:
                raise ValueError("a PAID transaction has paid_at (with its offset), bank_ref and receipt")
            try:
                self.receipt.content()
            except (binascii.Error, ValueError):
                raise ValueError("the receipt's content is not base64") from None
        return self


class PaymentPlatform:
    """The platform's client on the app's one session, and the verifier of its callbacks."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: PaymentSettings,
        callback_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.callback_url = settings.callback_url or callback_url
        self.transport = RestTransport(
            http,
            settings.url,
            agency=AGENCY,
            timeout=settings.timeout,
            signer=HmacSigner(settings.key_id, settings.secret),
            ssl_context=ssl_context,
        )
        self.verifier = HmacVerifier({settings.key_id: settings.secret})

    async def create(self, payment: Payment, dossier: Dossier, return_url: str | None) -> Created:
        body = {
            "merchant_code": self.settings.merchant_code,
            "order_id": payment.id,
            "amount": payment.amount_vnd,
            "currency": "VND",
            "description": f"Thanh toan ho so {dossier.code}",
            "bills": [b.model_dump() for b in payment.bills],
            "dossier_code": dossier.code,
            "beneficiary": payment.agency,
            "return_url": return_url,
            "callback_url": self.callback_url,
        }
        answer = await self.transport.send(RestRequest("POST", "/api/v1/payments", json=body))
        return _read(Created, answer.json())

    async def query(self, order_id: str) -> Transaction | None:
        """The platform's word on a payment; None when it has no such order (its creation never arrived)."""
        answer = await self.transport.send(
            RestRequest("GET", f"/api/v1/payments/{quote(order_id, safe='')}", ok=(404,))
        )
        if answer.status == 404:
            return None
        return _read(Transaction, answer.json())

    def callback(self, headers: Mapping[str, str], body: bytes) -> Transaction:
        """A callback's transaction; SignatureError or MalformedAnswer when it is not the platform's."""
        self.verifier.verify("POST", CALLBACK_PATH, headers, body)
        try:
            return Transaction.model_validate_json(body)
        except ValidationError as exc:
            raise MalformedAnswer(f"{AGENCY}: the callback does not fit: {exc}", agency=AGENCY) from None


M = TypeVar("M", bound=BaseModel)


def _read(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedAnswer(f"{AGENCY}: the answer does not fit: {exc}", agency=AGENCY) from None


def paid_notice(t: Transaction) -> PaidNotice:
    assert t.state == "PAID" and t.paid_at is not None and t.bank_ref and t.receipt is not None  # checked on reading
    return PaidNotice(
        t.transaction_id, t.paid_at, t.bank_ref, t.receipt.number, t.receipt.media_type, t.receipt.content()
    )


async def settle(store: Store, payment: Payment, t: Transaction, how: str) -> Payment | None:
    """Record what the platform said of a payment: paid (once), failed, or nothing yet."""
    if t.order_id != payment.id or t.amount != payment.amount_vnd:
        log.error(
            "payment_mismatch", payment=payment.id, order=t.order_id, amount=t.amount, expected=payment.amount_vnd
        )
        return None
    if t.state == "PAID":
        recorded, new = await store.payment_paid(payment.id, paid_notice(t), how)
        if new:
            log.info(
                "payment_paid", payment=payment.id, dossier=payment.dossier_code, amount=payment.amount_vnd, by=how
            )
        return recorded
    if t.state in ("EXPIRED", "FAILED"):
        await store.payment_failed(payment.id)
    return None


async def reconcile(store: Store, platform: PaymentPlatform, interval: float, after: float) -> None:
    """Ask the platform about every payment left without news for `after` seconds: a lost callback is
    found here. Runs for as long as the gateway does."""
    while True:
        try:
            for payment in await store.unsettled_payments(time.time() - after):
                try:
                    t = await platform.query(payment.id)
                except AgencyError as exc:
                    log.warning("reconcile_failed", payment=payment.id, error=str(exc))
                    break  # the platform is unwell: the next round asks again
                if t is not None:
                    await settle(store, payment, t, "reconciliation")
        except StorageUnavailable:
            pass  # the store logs the episode; the next round goes on
        except Exception:
            log.exception("reconcile_round_failed")
        await asyncio.sleep(interval)
