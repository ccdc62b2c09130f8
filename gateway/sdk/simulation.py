"""Toolkit for agency simulators: fault injection, control endpoints, stats, callbacks with retry.

Every plugin ships a simulator speaking its agency's wire protocol; this module gives them the same
faults (latency, errors, timeouts, downtime with or without Retry-After, malformed answers, refusals) and
the same control surface: GET/POST /_sim/faults, GET /_sim/stats, GET /_sim/calls (when each of the
latest calls came and ended, and how it was answered), GET /health. In its stats a simulator counts
`accepted` (each dossier taken once) and `duplicates` (a dossier delivered again, recognised by its
idempotency key): the demo and the conformance kit read those two. Each simulator also checks the
documents a dossier arrives with (`document_problems`), as its wire carried them: a dossier whose
documents are all there and whole counts as `documents_ok` in its stats, any other is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import ProcedureSpec
from gateway.documents.rules import content_problem
from gateway.tasks import cancel_and_wait

log = structlog.get_logger("lienthong.simulator")


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(0, ge=0)
    answer_delay_ms: int = Field(0, ge=0, description="delay after the work is done: the answer may be lost")
    jitter_ms: int = Field(0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_s: float = Field(30.0, ge=0)
    malformed_rate: float = Field(0.0, ge=0, le=1)
    refuse_rate: float = Field(
        0.0, ge=0, le=1, description="requests refused the way the agency refuses a bad one (a 4xx, a client fault)"
    )
    down: bool = False
    down_mode: Literal["503", "reset"] = "503"
    retry_after: int | None = Field(None, ge=0, description="seconds sent as Retry-After with the 503 while down")


@dataclass
class SimulatorOptions:
    """What every simulator is started with; `settings` holds protocol-specific extras."""

    callback_url: str = ""
    callback_api_key: str = ""
    secret: str = "demo-secret"
    seed: int = 7
    processing_delay: float = 0.2
    faults: Faults = field(default_factory=Faults)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultState:
    """Mutable holder: the app's state is frozen once it runs, the faults change at run time."""

    faults: Faults


@dataclass(frozen=True, slots=True)
class Call:
    """One call a simulator took (its control endpoints and /health aside), in epoch seconds."""

    at: float
    ended: float
    method: str
    path: str
    status: int


FAULTS = web.AppKey("sim_faults", FaultState)
STATS: web.AppKey[Counter[str]] = web.AppKey("sim_stats")
CALLS: web.AppKey[deque[Call]] = web.AppKey("sim_calls")
CALLS_KEPT = 20_000
RNG = web.AppKey("sim_rng", random.Random)
CLIENT = web.AppKey("sim_client", aiohttp.ClientSession)
TASKS = web.AppKey("sim_tasks", set[asyncio.Task[None]])


def refused_json() -> web.Response:
    """A REST agency's refusal: 422 with a reason. Simulators of other protocols give their own."""
    return web.json_response({"error": "refused", "message": "the agency refuses this request (simulated)"}, status=422)


def fault_middleware(malformed: Callable[[], web.Response], refused: Callable[[], web.Response] = refused_json) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/") or request.path == "/health":
            return await handler(request)
        at, status = time.time(), 0  # 0: no answer (the connection was cut, or the call was cancelled)
        try:
            response = await faulty(request, handler)
            status = response.status
            return response
        except web.HTTPException as exc:  # a handler's refusal (401, 400...)
            status = exc.status
            raise
        finally:
            request.app[CALLS].append(Call(at, time.time(), request.method, request.path, status))

    async def faulty(request: web.Request, handler: Handler) -> web.StreamResponse:
        faults, rng, stats = request.app[FAULTS].faults, request.app[RNG], request.app[STATS]
        stats["requests"] += 1
        if faults.down:
            stats["refused_down"] += 1
            if faults.down_mode == "reset" and request.transport is not None:
                request.transport.close()
            headers = {"Retry-After": str(faults.retry_after)} if faults.retry_after is not None else None
            return web.Response(status=503, text="agency system is down for maintenance", headers=headers)
        delay = faults.latency_ms + (rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        roll = rng.random()
        if roll < faults.timeout_rate:
            stats["timeouts"] += 1
            await asyncio.sleep(faults.timeout_s)
            return web.Response(status=504, text="too late")
        if roll < faults.timeout_rate + faults.error_rate:
            stats["errors"] += 1
            return web.Response(status=500, text="internal error")
        if roll < faults.timeout_rate + faults.error_rate + faults.malformed_rate:
            stats["malformed"] += 1
            return malformed()
        if roll < faults.timeout_rate + faults.error_rate + faults.malformed_rate + faults.refuse_rate:
            stats["refused"] += 1
            return refused()
        response = await handler(request)
        if faults.answer_delay_ms:
            await asyncio.sleep(faults.answer_delay_ms / 1000)
        return response

    return middleware


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS].faults.model_dump())


async def _set_faults(request: web.Request) -> web.Response:
    state = request.app[FAULTS]
    try:
        state.faults = Faults.model_validate(state.faults.model_dump() | await request.json())
    except (ValidationError, ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=422)
    log.info("faults_changed", **state.faults.model_dump())
    return web.json_response(state.faults.model_dump())


async def _stats(request: web.Request) -> web.Response:
    stats: Counter[str] = request.app[STATS]
    return web.json_response({k: v for k, v in stats.items()})


async def _calls(request: web.Request) -> web.Response:
    """The latest calls, oldest first: `?since=` (epoch seconds) keeps those that came after it."""
    try:
        since = float(request.query.get("since", "0") or 0)
    except ValueError:
        return web.json_response({"error": "since is epoch seconds"}, status=400)
    return web.json_response([dataclasses.asdict(c) for c in request.app[CALLS] if c.at >= since])


async def _health(request: web.Request) -> web.Response:
    down = request.app[FAULTS].faults.down
    return web.json_response({"status": "down" if down else "ok"}, status=503 if down else 200)


async def _client_ctx(app: web.Application) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[CLIENT] = session
        app[TASKS] = set()
        yield
        work: set[asyncio.Task[None]] = app[TASKS]
        await cancel_and_wait(set(work), what="simulator work")


# Agencies take documents of tens of megabytes: the simulators' bodies may be as large (aiohttp's default is 1 MiB).
MAX_REQUEST_BYTES = 96 * 1024 * 1024


def new_simulator(
    options: SimulatorOptions,
    malformed: Callable[[], web.Response],
    refused: Callable[[], web.Response] = refused_json,
) -> web.Application:
    """An aiohttp app with the fault middleware and the control routes; `malformed()` and `refused()` are
    this agency's broken answer and its refusal, in its own wire format."""
    app = web.Application(middlewares=[fault_middleware(malformed, refused)], client_max_size=MAX_REQUEST_BYTES)
    app[FAULTS] = FaultState(options.faults)
    app[STATS] = Counter()
    app[CALLS] = deque(maxlen=CALLS_KEPT)
    app[RNG] = random.Random(options.seed)
    app.router.add_get("/_sim/faults", _get_faults)
    app.router.add_post("/_sim/faults", _set_faults)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/calls", _calls)
    app.router.add_get("/health", _health)
    app.cleanup_ctx.append(_client_ctx)
    return app


def spawn(app: web.Application, coro: Any) -> None:
    """Run background work (an asynchronous answer) owned by the simulator app."""
    task: asyncio.Task[None] = asyncio.create_task(coro)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def post_until_accepted(
    app: web.Application, url: str, body: bytes, headers: Mapping[str, str], *, max_wait: float = 600.0
) -> bool:
    """POST a callback, retrying with backoff while the gateway is down (it may be restarting)."""
    delay, waited = 0.2, 0.0
    while waited <= max_wait:
        try:
            async with app[CLIENT].post(url, data=body, headers=dict(headers)) as resp:
                if resp.status < 500 and resp.status != 429:
                    app[STATS]["callbacks_ok" if resp.status < 300 else "callbacks_refused"] += 1
                    if resp.status >= 300:
                        log.warning("callback_refused", status=resp.status, body=(await resp.text())[:300])
                    return resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            pass
        app[STATS]["callback_retries"] += 1
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 5.0)
    return False


def json_dumps(data: Any) -> bytes:
    return orjson.dumps(data)


@dataclass(frozen=True, slots=True)
class ReceivedDocument:
    """A document as an agency received it: what its sender declared, and what actually came."""

    component_code: str
    name: str
    media_type: str
    size: int  # declared
    sha256: str  # declared
    received_size: int
    received_sha256: str
    head: bytes = b""  # its first bytes, to see that it is the type it says

    @classmethod
    def of(
        cls, component_code: str, name: str, media_type: str, size: int, sha256: str, content: bytes
    ) -> ReceivedDocument:
        return cls(
            component_code,
            name,
            media_type,
            size,
            sha256,
            len(content),
            hashlib.sha256(content).hexdigest(),
            content[:16],
        )


def document_problems(spec: ProcedureSpec | None, documents: Iterable[ReceivedDocument]) -> list[str]:
    """What is wrong with a dossier's documents as received, by the procedure's rules: every required
    component present, each document whole (the declared size and sha256), of an accepted type and
    starting as that type does. Empty when all is well."""
    docs = list(documents)
    problems = []
    for d in docs:
        label = f"{d.component_code} ({d.name})"
        if d.received_size != d.size:
            problems.append(f"{label}: declared {d.size} bytes, received {d.received_size}")
        elif d.received_sha256 != d.sha256.lower():
            problems.append(f"{label}: the content's sha256 is not the declared one")
        rule = spec.document_rule(d.component_code) if spec is not None else None
        if rule is not None and rule.media_types and d.media_type not in rule.media_types:
            problems.append(f"{label}: {d.media_type} is not accepted ({', '.join(rule.media_types)})")
        elif (wrong := content_problem(d.media_type, d.head)) is not None:
            problems.append(f"{label}: {wrong}")
    present = {d.component_code for d in docs}
    for code in spec.required_components if spec is not None else ():
        if code not in present:
            problems.append(f"{code}: required by procedure {spec.code if spec else ''} and missing")
    return problems


def count_documents(stats: Counter[str], problems: list[str]) -> None:
    """One dossier taken: counted as `documents_ok`, or as `documents_refused` with its problems logged."""
    if problems:
        stats["documents_refused"] += 1
        log.warning("documents_refused", problems=problems)
    else:
        stats["documents_ok"] += 1
