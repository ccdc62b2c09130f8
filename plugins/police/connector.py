"""The police connector: signed REST calls to the population-data service; signed callbacks back."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from pydantic import BaseModel

from contracts import Attachment, Dossier
from gateway.sdk import (
    AgencyRejected,
    AgencyUpdate,
    CheckResult,
    Connector,
    ConnectorContext,
    Delivery,
    InvalidRequest,
    MalformedAnswer,
    RestRequest,
    SignatureError,
    SubmitReceipt,
    Unauthenticated,
    document_bytes,
    hmac_rest,
)
from plugins.police import wire
from plugins.police.forms import IdentityQuery
from plugins.police.settings import PoliceSettings

REGISTRATION_PATH = "/api/v1/cu-tru/dang-ky"
IDENTITY_PATH = "/api/v1/dan-cu/xac-thuc"
SUPPLEMENT_PATH = "/api/v1/cu-tru/bo-sung"
REMOVAL_PATH = "/api/v1/cu-tru/xoa-dang-ky"
WITHDRAWAL_PATH = "/api/v1/cu-tru/rut-ho-so"


class PoliceConnector(Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, PoliceSettings)
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

    async def _contents(self, attachments: list[Attachment]) -> dict[str, bytes]:
        """The documents' bytes by sha256: the police API takes them in base64 inside the signed JSON."""
        return {a.sha256: await document_bytes(self.ctx, a) for a in attachments if a.sha256}

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        removal = dossier.procedure_code in self.settings.removal_procedures
        build = wire.removal_request if removal else wire.registration_request
        contents = await self._contents(dossier.submission.attachments)
        try:
            payload = build(dossier, delivery.idempotency_key, self.ctx.callback_url, delivery.inputs, contents)
        except (ValueError, KeyError) as exc:
            raise AgencyRejected(f"police: cannot map dossier {dossier.code}: {exc}", agency=self.ctx.agency) from exc
        path = REMOVAL_PATH if removal else REGISTRATION_PATH
        resp = await self.transport.send(
            RestRequest("POST", path, json=payload, headers={"Idempotency-Key": payload["maYeuCau"]})
        )
        body = resp.json()
        if not isinstance(body, dict) or not body.get("maTiepNhan"):
            raise MalformedAnswer("police: answer has no maTiepNhan", agency=self.ctx.agency)
        return SubmitReceipt(agency_ref=str(body["maTiepNhan"]))

    async def supplement(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        contents = await self._contents(wire.supplement_attachments(delivery.inputs))
        payload = wire.supplement_request(dossier, delivery.idempotency_key, delivery.inputs, contents)
        await self.transport.send(
            RestRequest("POST", SUPPLEMENT_PATH, json=payload, headers={"Idempotency-Key": payload["maYeuCau"]})
        )
        return SubmitReceipt()

    async def withdraw(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        try:
            payload = wire.withdrawal_request(dossier, delivery.idempotency_key, delivery.inputs)
        except ValueError as exc:
            raise AgencyRejected(f"police: cannot withdraw {dossier.code}: {exc}", agency=self.ctx.agency) from exc
        await self.transport.send(
            RestRequest("POST", WITHDRAWAL_PATH, json=payload, headers={"Idempotency-Key": payload["maYeuCau"]})
        )
        return SubmitReceipt()

    async def lookup(self, name: str, query: BaseModel) -> BaseModel:
        if name != "identity-verification" or not isinstance(query, IdentityQuery):
            return await super().lookup(name, query)
        resp = await self.transport.send(RestRequest("POST", IDENTITY_PATH, json=wire.identity_request(query)))
        return wire.identity_answer(resp.json())

    async def handle_callback(self, body: bytes, headers: Mapping[str, str]) -> list[AgencyUpdate]:
        try:
            self.verifier.verify("POST", f"/v1/callbacks/{self.ctx.agency}", headers, body)
        except SignatureError as exc:
            raise Unauthenticated(f"police callback signature rejected: {exc}") from None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("police callback is not JSON") from None
        try:
            return [wire.callback_update(data)]
        except MalformedAnswer as exc:
            raise InvalidRequest(str(exc)) from None

    async def check(self) -> CheckResult:
        return await self.transport.check()
