"""The transport contract every adapter implements, and a mock transport for tests."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Req = TypeVar("Req")
Resp = TypeVar("Resp")

SECRET_KEYS = ("password", "secret", "token", "key", "authorization")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of a connectivity check: does the agency answer at all, and how fast."""

    ok: bool
    detail: str = ""
    latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def mask_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a transport's configuration that can be printed: secret-looking values hidden."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out[k] = mask_config(v)
        elif any(s in k.lower() for s in SECRET_KEYS) and v:
            out[k] = "***"
        else:
            out[k] = v
    return out


class Transport(ABC, Generic[Req, Resp]):
    """Sends one request to an agency and returns its answer; raises gateway AgencyErrors only."""

    agency: str = ""

    @abstractmethod
    async def send(self, request: Req) -> Resp: ...

    @abstractmethod
    async def check(self) -> CheckResult: ...

    async def aclose(self) -> None:  # most transports borrow the app's session: nothing to close
        return None

    def describe(self) -> dict[str, Any]:
        return {}


class MockTransport(Transport[Req, Resp]):
    """A transport whose answers come from a handler: for plugin unit tests without a network."""

    def __init__(self, handler: Callable[[Req], Awaitable[Resp]], agency: str = "mock") -> None:
        self.handler = handler
        self.agency = agency
        self.requests: list[Req] = []

    async def send(self, request: Req) -> Resp:
        self.requests.append(request)
        return await self.handler(request)

    async def check(self) -> CheckResult:
        return CheckResult(ok=True, detail="mock")
