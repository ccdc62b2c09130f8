"""Results to the applicant's VNeID wallet: the connector the dispatcher delivers `wallet` jobs with.

When a dossier whose applicant chose the wallet (return_method 2, consent recorded) finishes (9), the
store queues a `wallet` job in the same transaction (store/updates.py), on the reserved agency `vneid`:
it goes through the outbox like any delivery (leases, backoff, breaker, retry budget, dead letters). This
connector pushes the result documents to the wallet service over REST, each request HMAC-signed, with
the job's idempotency key; the wallet's acknowledgement returns the dossier (10), recorded with the
wallet's reference (`returned_via: vneid-wallet`), which the portal record reports (HinhThuc 2).

The wire: POST /v1/wallet/documents {citizen_id, full_name, dossier_code, procedure_code, procedure_name,
consent, documents: [{name, component_code, result_code, media_type, size, sha256, content_base64 | url}]}
-> 201/200 {"wallet_ref", "received_at"}.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import CheckResult
from adapters.rest import RestRequest, RestTransport
from adapters.signing import HmacSigner
from contracts import Dossier, DossierStatus, PersonApplicant
from gateway.config.model import WalletSettings
from gateway.connector import AgencyUpdate, Connector, ConnectorContext, Delivery, EndpointSettings, SubmitReceipt
from gateway.errors import AgencyRejected, MalformedAnswer

AGENCY = "vneid"  # the reserved agency of wallet jobs (no agency of agencies.toml may take this name)
ENDPOINT = "wallet"
STEP = "wallet"
RETURNED_EVENT = "wallet-returned"


class WalletEndpoint(EndpointSettings):
    """The wallet's settings as a connector sees them."""

    key_id: str
    secret: str = Field(repr=False)


class _Ack(BaseModel):
    model_config = ConfigDict(extra="ignore")

    wallet_ref: str = Field(min_length=1, max_length=100)
    received_at: datetime


def endpoint_settings(settings: WalletSettings) -> WalletEndpoint:
    return WalletEndpoint(
        url=settings.url, timeout=settings.timeout, tls=settings.tls, key_id=settings.key_id, secret=settings.secret
    )


class WalletConnector(Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, WalletEndpoint)
        self.transport = RestTransport(
            ctx.http,
            settings.url,
            agency=ctx.agency,
            timeout=settings.timeout,
            signer=HmacSigner(settings.key_id, settings.secret),
            ssl_context=ctx.ssl_context,
        )

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        if delivery.step != STEP:
            raise AgencyRejected(f"the wallet takes results only, not a {delivery.step!r} job", agency=self.ctx.agency)
        sub = dossier.submission
        applicant = sub.applicant
        if not isinstance(applicant, PersonApplicant) or sub.wallet_consent is None:
            why = f"dossier {dossier.code} has no citizen's consent to the wallet"
            raise AgencyRejected(why, agency=self.ctx.agency)
        if not dossier.results:
            raise AgencyRejected(f"dossier {dossier.code} finished without a result document", agency=self.ctx.agency)
        body = {
            "citizen_id": applicant.personal_id,
            "full_name": applicant.full_name,
            "dossier_code": dossier.code,
            "procedure_code": dossier.procedure_code,
            "procedure_name": dossier.procedure_name,
            "consent": sub.wallet_consent.model_dump(mode="json"),
            "documents": [r.model_dump(mode="json", exclude_none=True) for r in dossier.results],
        }
        key = {"Idempotency-Key": delivery.idempotency_key}
        answer = await self.transport.send(RestRequest("POST", "/v1/wallet/documents", json=body, headers=key))
        try:
            ack = _Ack.model_validate(answer.json())
        except ValidationError as exc:
            raise MalformedAnswer(f"{self.ctx.agency}: the wallet's acknowledgement does not fit: {exc}") from None
        returned = AgencyUpdate(
            event_id=RETURNED_EVENT,
            status=DossierStatus.RETURNED,
            note="Kết quả đã được trả vào ví VNeID của công dân",
            at=ack.received_at,
            data={"returned_via": "vneid-wallet", "wallet_ref": ack.wallet_ref},
        )
        return SubmitReceipt(updates=[returned])

    async def check(self) -> CheckResult:
        return await self.transport.check()
