"""JSON and problem+json responses, and reading JSON bodies with clear errors."""

from __future__ import annotations

from typing import Any, overload

import orjson
from aiohttp import web
from pydantic import BaseModel

from gateway.errors import FieldError, InvalidRequest, PayloadTooLarge, ProblemError, UnsupportedMediaType

PROBLEM_JSON = "application/problem+json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = data.model_dump_json().encode() if isinstance(data, BaseModel) else orjson.dumps(data, default=_default)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def problem_response(exc: ProblemError, instance: str | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(exc.to_problem(instance)),
        status=exc.status,
        content_type=PROBLEM_JSON,
        headers=exc.headers,
    )


async def read_json(request: web.Request) -> tuple[Any, bytes]:
    """The parsed body and its bytes (for idempotency hashing)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"send application/json, not {request.content_type or 'no content type'}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"the body exceeds the limit of {request.app._client_max_size} bytes") from exc
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


@overload
def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int: ...
@overload
def query_int(request: web.Request, name: str, default: None, *, low: int, high: int) -> int | None: ...
def query_int(request: web.Request, name: str, default: int | None, *, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high]; a clear 400 naming it otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidRequest(
            f"query parameter {name} must be an integer from {low} to {high}, not {raw!r}",
            errors=[FieldError(f"query.{name}", f"an integer from {low} to {high}")],
        )
    return value
