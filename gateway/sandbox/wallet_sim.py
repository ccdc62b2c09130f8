"""A VNeID wallet service simulator: it takes the result documents pushed to a citizen's wallet.

POST /v1/wallet/documents (gateway/wallet.py's wire), with the gateway's HMAC signature (key id
settings["key_id"], "lienthong-gateway"; key SimulatorOptions.secret) and an Idempotency-Key. It checks
the signature (401), the key (400), every field (422: a citizen id of 12 digits, the applicant's consent,
at least one document, each with content whose size and sha256 are the declared ones, or an https URL),
and answers 201 {"wallet_ref", "received_at"}; the same key again answers the same (200), a key reused
for another push is refused (409). Each document is kept with the request's signature, as the wallet
shows the citizen where it came from.

Faults: those of every simulator (gateway/sdk/simulation.py: latency, errors, downtime, malformed
answers). Control: GET /_sim/wallet (what every wallet holds), GET /_sim/wallet/{citizen_id}.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.signing import H_SIGNATURE, HmacVerifier, SignatureError
from gateway.sdk.simulation import STATS, SimulatorOptions, new_simulator

PATH = "/v1/wallet/documents"


class _Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_at: datetime
    channel: Literal["counter", "vneid_app", "portal"]
    reference: str = Field(min_length=1, max_length=100)


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    component_code: str = Field(min_length=1, max_length=50)
    media_type: str = Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_base64: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _whole(self) -> _Document:
        if self.content_base64 is None:
            if self.url is None:
                raise ValueError("a document has its content or a URL")
            return self
        try:
            raw = base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content_base64 is not base64") from None
        if len(raw) != self.size or hashlib.sha256(raw).hexdigest() != self.sha256:
            raise ValueError("the content is not the declared size and sha256")
        return self


class _Push(BaseModel):
    model_config = ConfigDict(extra="forbid")

    citizen_id: str = Field(pattern=r"^[0-9]{12}$")
    full_name: str = Field(min_length=1, max_length=200)
    dossier_code: str = Field(min_length=1, max_length=100)
    procedure_code: str = Field(min_length=1, max_length=50)
    procedure_name: str = Field(min_length=1, max_length=300)
    consent: _Consent
    documents: list[_Document] = Field(min_length=1, max_length=20)


@dataclass
class Wallets:
    held: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # citizen id -> documents
    keys: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key -> (body hash, answer)


WALLETS = web.AppKey("wallets", Wallets)
VERIFIER = web.AppKey("wallet_verifier", HmacVerifier)


def _malformed() -> web.Response:
    return web.Response(status=200, text="{wallet_ref", content_type="application/json")


def _problem(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


async def push(request: web.Request) -> web.Response:
    body = await request.read()
    stats = request.app[STATS]
    try:
        request.app[VERIFIER].verify(request.method, request.path, request.headers, body)
    except SignatureError as exc:
        stats["wallet_unsigned"] += 1
        return _problem(401, "signature", str(exc))
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 200:
        return _problem(400, "idempotency-key", "an Idempotency-Key header of 1 to 200 characters is required")
    wallets, digest = request.app[WALLETS], hashlib.sha256(body).hexdigest()
    if (seen := wallets.keys.get(key)) is not None:
        if seen[0] != digest:
            return _problem(409, "key-reused", "this Idempotency-Key was used for another push")
        stats["wallet_duplicates"] += 1
        return web.json_response(seen[1])
    try:
        req = _Push.model_validate_json(body)
    except ValidationError as exc:
        stats["wallet_refused"] += 1
        return _problem(422, "invalid-push", str(exc))
    ref = f"VNEID-{secrets.token_hex(5).upper()}"
    now = datetime.now(UTC)
    signature = request.headers.get(H_SIGNATURE, "")
    for d in req.documents:
        wallets.held.setdefault(req.citizen_id, []).append(
            d.model_dump(exclude={"content_base64"})
            | {"wallet_ref": ref, "dossier_code": req.dossier_code, "signature": signature, "at": now.isoformat()}
        )
    answer = {"wallet_ref": ref, "received_at": now.isoformat()}
    wallets.keys[key] = (digest, answer)
    stats["wallet_pushes"] += 1
    stats["wallet_documents"] += len(req.documents)
    return web.json_response(answer, status=201)


async def view(request: web.Request) -> web.Response:
    held = request.app[WALLETS].held
    citizen = request.match_info.get("citizen")
    return web.json_response(held.get(citizen, []) if citizen else held)


def create_wallet_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed)
    app[WALLETS] = Wallets()
    app[VERIFIER] = HmacVerifier({str(options.settings.get("key_id", "lienthong-gateway")): options.secret})
    app.router.add_post(PATH, push)
    app.router.add_get("/_sim/wallet", view)
    app.router.add_get("/_sim/wallet/{citizen}", view)
    return app
