"""REST/JSON transport over the app's shared aiohttp session: limits, signing, error mapping, one log line."""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import structlog

from adapters.base import CheckResult, Transport
from adapters.errors import error_for_status, map_http_errors, retry_after_of
from adapters.signing import HmacSigner, HmacVerifier
from gateway.errors import MalformedAnswer, UnsafeAnswer

log = structlog.get_logger("lienthong.outbound")

# (method, path with query, body) -> headers to add, e.g. an HMAC signature.
Signer = Callable[[str, str, bytes], Mapping[str, str]]
# Headers that need I/O to produce, e.g. an OAuth2 bearer token from a cache.
AuthProvider = Callable[[], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class RestRequest:
    method: str
    path: str
    json: Any = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    ok: tuple[int, ...] = ()  # non-2xx statuses the caller wants back instead of an error
    # A body streamed as it is sent (e.g. an aiohttp.MultipartWriter whose parts read documents in chunks),
    # with its own Content-Type. Built anew for each attempt: a stream is read once. Never signed.
    stream: aiohttp.payload.Payload | aiohttp.MultipartWriter | None = None


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise MalformedAnswer(f"answer is not JSON: {self.body[:80]!r}") from exc


async def read_limited(resp: aiohttp.ClientResponse, limit: int, agency: str) -> bytes:
    """Read an answer body, refusing one larger than `limit` bytes without buffering it all."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise UnsafeAnswer(f"{agency}: answer of {declared} bytes exceeds {limit}", agency=agency)
    if declared is not None and not resp.headers.get("Content-Encoding"):
        return await resp.read()  # the framing bounds the body to what was declared, within the limit
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise UnsafeAnswer(f"{agency}: answer exceeds {limit} bytes", agency=agency)
        chunks.append(chunk)
    return b"".join(chunks)


class RestTransport(Transport[RestRequest, RestResponse]):
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        agency: str,
        timeout: float = 10.0,
        signer: Signer | None = None,
        auth: AuthProvider | None = None,
        max_answer_bytes: int = 4 * 1024 * 1024,
        health_path: str = "/health",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.agency = agency
        self.timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self.signer = signer
        self.auth = auth
        self.max_answer_bytes = max_answer_bytes
        self.health_path = health_path
        # The endpoint's own CAs, client certificate and pins (gateway.tls), on the app's one session.
        self.ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True

    async def send(self, request: RestRequest) -> RestResponse:
        body = request.body
        headers: dict[str, str] = {"Accept": "application/json", **request.headers}
        if request.json is not None:
            body = orjson.dumps(request.json)
            headers["Content-Type"] = "application/json"
        body = body or b""
        if self.auth is not None:
            headers.update(await self.auth())
        if self.signer is not None:
            if request.stream is not None:
                raise ValueError("a streamed body cannot be signed: the signature covers the whole body")
            headers.update(self.signer(request.method, request.path, body))
        url = self.base_url + request.path
        timeout = aiohttp.ClientTimeout(total=request.timeout) if request.timeout else self._client_timeout
        started = time.perf_counter()
        status = 0
        try:
            with map_http_errors(self.agency):
                data = request.stream if request.stream is not None else (body or None)
                async with self.session.request(
                    request.method, url, data=data, headers=headers, timeout=timeout, ssl=self.ssl
                ) as resp:
                    status = resp.status
                    data = await read_limited(resp, self.max_answer_bytes, self.agency)
                    answer = RestResponse(resp.status, resp.headers, data)  # read-only, case-insensitive
        except Exception as exc:
            log.warning(
                "outbound",
                agency=self.agency,
                method=request.method,
                path=request.path,
                status=status or None,
                ms=round((time.perf_counter() - started) * 1000, 1),
                error=type(exc).__name__,
            )
            raise
        log.info(
            "outbound",
            agency=self.agency,
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if not (200 <= answer.status < 300) and answer.status not in request.ok:
            # The agency's own words, what the centre and the operator see of a refusal: cut, not lost.
            raise error_for_status(
                self.agency,
                answer.status,
                answer.body[:1000].decode("utf-8", "replace"),
                retry_after=retry_after_of(answer.headers),
            )
        return answer

    async def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            resp = await self.send(RestRequest("GET", self.health_path, timeout=3.0))
        except Exception as exc:
            return CheckResult(ok=False, detail=str(exc))
        return CheckResult(ok=True, detail=f"HTTP {resp.status}", latency_ms=(time.perf_counter() - started) * 1000)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "rest",
            "base_url": self.base_url,
            "timeout": self.timeout,
            "signed": self.signer is not None,
        }
        if self.ssl is not True:
            out["tls"] = "the endpoint's own (CAs, client certificate, pins)"
        return out


def hmac_rest(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    agency: str,
    key_id: str,
    secret: str,
    timeout: float = 10.0,
    max_answer_bytes: int = 4 * 1024 * 1024,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[RestTransport, HmacVerifier]:
    """For an agency that shares one HMAC key with the gateway both ways: a transport that signs every
    request with it, and the verifier of the callbacks the agency signs with it."""
    transport = RestTransport(
        session,
        base_url,
        agency=agency,
        timeout=timeout,
        signer=HmacSigner(key_id, secret),
        max_answer_bytes=max_answer_bytes,
        ssl_context=ssl_context,
    )
    return transport, HmacVerifier({key_id: secret})
