"""The social insurance connector: REST calls with an OAuth2 bearer token; HMAC-signed webhooks back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, Field

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
    HmacVerifier,
    InvalidRequest,
    MalformedAnswer,
    RestRequest,
    RestResponse,
    RestTransport,
    SignatureError,
    SubmitReceipt,
    Unauthenticated,
    document_chunks,
)
from plugins.social_insurance import wire
from plugins.social_insurance.forms import InsuranceNumberQuery
from plugins.social_insurance.oauth import ClientCredentials

CLAIM_PATH = "/api/v1/ho-so"
NUMBER_PATH = "/api/v1/tra-cuu/ma-so-bhxh"
LOOKUP = "social-insurance-number"


class SocialInsuranceSettings(EndpointSettings):
    client_id: str = Field(min_length=1, description="OAuth2 client id the agency issued to this gateway")
    client_secret: str = Field(min_length=16, description="OAuth2 client secret (use ${ENV} in conf)")
    token_path: str = Field("/oauth/token", description="the agency's token endpoint, under url")
    scope: str | None = None
    token_refresh_margin: float = Field(30.0, ge=0, description="renew a token this many seconds early ...")
    token_refresh_ratio: float = Field(0.1, ge=0, lt=1, description="... or this share of its life, if less")
    callback_secret: str | None = Field(
        None, min_length=16, description="HMAC key of the agency's webhooks (key id: client_id); default client_secret"
    )
    max_answer_bytes: int = Field(1024 * 1024, gt=0)


class SocialInsuranceConnector(Connector):
    def __init__(self, ctx: ConnectorContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, SocialInsuranceSettings)
        self.settings = settings
        self.api = RestTransport(
            ctx.http,
            settings.url,
            agency=ctx.agency,
            timeout=settings.timeout,
            max_answer_bytes=settings.max_answer_bytes,
            ssl_context=ctx.ssl_context,
        )
        self.tokens = ClientCredentials(
            self.api,
            settings.token_path,
            settings.client_id,
            settings.client_secret,
            scope=settings.scope,
            margin=settings.token_refresh_margin,
            ratio=settings.token_refresh_ratio,
        )
        self.verifier = HmacVerifier({settings.client_id: settings.callback_secret or settings.client_secret})

    async def _send(self, request: RestRequest | Callable[[], RestRequest]) -> RestResponse:
        """Send with a bearer token; a 401 means the agency dropped it: fetch another and try once more.

        The token goes in per request (not through RestTransport's auth hook) so a 401 invalidates the
        token that was refused, never a newer one another delivery fetched meanwhile. A request with a
        streamed body comes as a function making it: the second try needs a fresh stream.
        """
        make = request if callable(request) else (lambda: request)
        first = make()
        token = await self.tokens.token()
        resp = await self.api.send(_with_token(first, token.value, ok=(*first.ok, 401)))
        if resp.status != 401:
            return resp
        self.tokens.invalidate(token)
        token = await self.tokens.token()
        again = make()
        return await self.api.send(_with_token(again, token.value, ok=again.ok))

    async def submit(self, dossier: Dossier, delivery: Delivery) -> SubmitReceipt:
        try:
            payload = wire.submission(dossier, delivery.idempotency_key, self.ctx.callback_url, delivery.inputs)
        except (ValueError, KeyError) as exc:
            raise AgencyRejected(
                f"social insurance: cannot map dossier {dossier.code}: {exc}", agency=self.ctx.agency
            ) from exc
        resp = await self._send(
            lambda: RestRequest(
                "POST",
                CLAIM_PATH,
                headers={"Idempotency-Key": delivery.idempotency_key},
                stream=self._multipart(dossier, payload),
            )
        )
        try:
            return SubmitReceipt(agency_ref=wire.receipt(resp.json()))
        except MalformedAnswer as exc:
            raise MalformedAnswer(exc.message, agency=self.ctx.agency) from exc

    def _multipart(self, dossier: Dossier, claim: dict[str, Any]) -> aiohttp.MultipartWriter:
        """multipart/form-data: the claim (JSON part `hoSo`), then each document as a file part streamed from
        the document store, named as the claim's tepDinhKem declares it."""
        writer = aiohttp.MultipartWriter("form-data")
        writer.append_json(claim).set_content_disposition("form-data", name="hoSo")
        for i, a in enumerate(dossier.submission.attachments):
            part = writer.append(
                document_chunks(self.ctx, a), {"Content-Type": a.media_type or "application/octet-stream"}
            )
            part.set_content_disposition("form-data", name=wire.part_name(i), filename=f"{a.component_code}-{i + 1}")
        return writer

    async def lookup(self, name: str, query: BaseModel) -> BaseModel:
        if name != LOOKUP or not isinstance(query, InsuranceNumberQuery):
            return await super().lookup(name, query)
        resp = await self._send(RestRequest("POST", NUMBER_PATH, json=wire.number_request(query)))
        return wire.number_answer(resp.json())

    async def handle_callback(self, body: bytes, headers: Mapping[str, str]) -> list[AgencyUpdate]:
        try:
            self.verifier.verify("POST", f"/v1/callbacks/{self.ctx.agency}", headers, body)
        except SignatureError as exc:
            raise Unauthenticated(f"social insurance callback signature rejected: {exc}") from None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest("social insurance callback is not JSON") from None
        try:
            return [wire.callback_update(data)]
        except MalformedAnswer as exc:
            raise InvalidRequest(str(exc)) from None

    async def check(self) -> CheckResult:
        """Reachable, and do the credentials still get a token? The second matters more to an operator."""
        reached = await self.api.check()
        if not reached.ok:
            return reached
        try:
            await self.tokens.token()
        except AgencyError as exc:
            return CheckResult(ok=False, detail=f"token: {exc}", latency_ms=reached.latency_ms)
        return reached


def _with_token(request: RestRequest, token: str, *, ok: tuple[int, ...]) -> RestRequest:
    return replace(request, headers={**request.headers, "Authorization": f"Bearer {token}"}, ok=ok)
