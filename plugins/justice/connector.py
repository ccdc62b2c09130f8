"""The justice connector: civil status registrations in the data-sharing envelope; results come back
as signed callbacks carrying the same envelope."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from pydantic import Field

from contracts import Dossier
from gateway.sdk import (
    AgencyError,
    AgencyRejected,
    AgencyUpdate,
    CheckResult,
    Connector,
    ConnectorContext,
    Delivery,
    EndpointSettings,
    InvalidRequest,
    RestRequest,
    SignatureError,
    SubmitReceipt,
    Unauthenticated,
    document_bytes,
    hmac_rest,
)
from plugins.justice import envelope, wire
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION

PATHS = {BIRTH_REGISTRATION: "/api/hotich/v1/khai-sinh", DEATH_REGISTRATION: "/api/hotich/v1/khai-tu"}
# Envelope errors often come with a 4xx: let them through so the error code, not the status, decides.
ENVELOPE_STATUSES = (400, 401, 403, 404, 409, 422)


class JusticeSettings(EndpointSettings):
    key_id: str = Field(min_length=1, description="key id the agency issued to this gateway")
    secret: str = Field(min_length=16, description="shared HMAC secret, both directions (use ${ENV} in conf)")
    max_answer_bytes: int = Field(2 * 1024 * 1024, gt=0, description="also caps the XML inside an envelope")


class JusticeConnector(Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, JusticeSettings)
        self.settings = settings
        self.transport, self.verifier = hmac_rest(
            ctx.http,
            settings.url,
            agency=ctx.agency,
            key_id=settings.key_id,
            secret=settings.secret,
            timeout=settings.timeout,
            max_answer_bytes=settings.max_answer_bytes,
            ssl_context=ctx.ssl_context,
        )

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        agency = self.ctx.agency
        # The documents ride in base64 inside the envelope's XML, which the agency signs whole.
        contents = {a.sha256: await document_bytes(self.ctx, a) for a in dossier.submission.attachments if a.sha256}
        try:
            service, xml = wire.request_xml(dossier, contents)
        except (ValueError, KeyError) as exc:
            raise AgencyRejected(f"justice: cannot map dossier {dossier.code}: {exc}", agency=agency) from exc
        payload = envelope.request(delivery.idempotency_key, service, self.ctx.callback_url, xml)
        resp = await self.transport.send(
            RestRequest(
                "POST",
                PATHS[dossier.procedure_code],
                json=payload,
                headers={"Idempotency-Key": delivery.idempotency_key},
                ok=ENVELOPE_STATUSES,
            )
        )
        data = envelope.open_answer(resp.status, resp.body, agency)
        return SubmitReceipt(agency_ref=wire.receipt(data, max_bytes=self.settings.max_answer_bytes, agency=agency))

    async def handle_callback(self, body: bytes, headers: Mapping[str, str]) -> list[AgencyUpdate]:
        try:
            self.verifier.verify("POST", f"/v1/callbacks/{self.ctx.agency}", headers, body)
        except SignatureError as exc:
            raise Unauthenticated(f"justice callback signature rejected: {exc}") from None
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("justice callback is not JSON") from None
        try:
            data = envelope.open_answer(200, body, self.ctx.agency)
            return [wire.result_update(data, max_bytes=self.settings.max_answer_bytes, agency=self.ctx.agency)]
        except AgencyError as exc:  # malformed, unsafe XML, or an error code where a result belongs
            raise InvalidRequest(f"justice callback refused: {exc.message}") from None

    async def check(self) -> CheckResult:
        return await self.transport.check()
