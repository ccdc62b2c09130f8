"""A national portal (DVCQG) simulator speaking the integration protocol (`lienthong simulate portal`).

As OpenCPS talks to the portal (see contracts/portal.py and tests/contracts/fixtures/dvcqg/):
- POST /dvcqg/login {username, password} (header dstcode): {"error_code": 0, "session": ...}. The password
  is SimulatorOptions.secret, the username settings["username"] ("lienthong"); a session lives
  settings["session_ttl"] seconds (600, as OpenCPS keeps it).
- POST /dvcqg/service {session, madonvi, service, isUpdating, data}: DongBoHoSoMC creates (isUpdating
  "False") or updates ("True") dossier records, CapNhatTienDoHoSoMC appends progress records, TraCuuHoSo
  looks a dossier up. Every answer is HTTP 200 with {error_code, message}: 0 takes the call; anything
  else takes nothing of it (all records are checked before any is kept).

Error codes (0 and "3/-3 ... đã tồn tại" are the sources'; the others are this simulator's):
1 invalid data, naming the dossier and the field; 2 no valid session; 3 a created dossier exists already;
4 an updated dossier, or one a progress record is for, does not exist; 5 unknown service or unit;
6 wrong username or password.

Faults: those of every simulator (gateway/sdk/simulation.py); POST /_sim/refuse {"status": 403} answers
every call with that HTTP status, {"error_code": 1, "field": "NgayHenTra"} with that error code (naming
the first record's dossier and the field), {} again takes everything; POST /_sim/sessions {} ends every
session. GET /_sim/view: what the portal holds; GET /_sim/stats: its counters.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from contracts.portal import PortalDossier, PortalProgress
from gateway.sdk.simulation import STATS, SimulatorOptions, new_simulator

log = structlog.get_logger("lienthong.simulator")

LOGIN_PATH = "/dvcqg/login"
SERVICE_PATH = "/dvcqg/service"

OK, INVALID, NO_SESSION, EXISTS, NOT_FOUND, UNKNOWN, BAD_LOGIN = 0, 1, 2, 3, 4, 5, 6


@dataclass
class Refusal:
    status: int | None = None  # an HTTP 4xx for every call
    error_code: int | None = None  # or a 200 with this error code
    message: str = ""
    field: str | None = None


@dataclass
class PortalView:
    username: str
    password: str
    madonvi: str | None
    session_ttl: float
    sessions: dict[str, float] = field(default_factory=dict)  # session -> when it ends (monotonic)
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict)  # MaHoSo -> latest DongBoHoSoMC
    statuses: dict[str, list[str]] = field(default_factory=dict)  # MaHoSo -> TrangThai of each new progress record
    progress: set[bytes] = field(default_factory=set)  # the progress records taken, to tell repeats
    refuse: Refusal = field(default_factory=Refusal)


VIEW = web.AppKey("portal_view", PortalView)


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _answer(code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error_code": code, "message": message, **extra})


def _malformed() -> web.Response:
    return web.Response(status=200, body=b'{"error_code": 0, "mess', content_type="application/json")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        raise _Refused(INVALID, "Dữ liệu gửi lên không phải JSON") from None
    if not isinstance(body, dict):
        raise _Refused(INVALID, "Dữ liệu gửi lên phải là một đối tượng JSON")
    return body


async def _login(request: web.Request) -> web.Response:
    view, stats = request.app[VIEW], request.app[STATS]
    try:
        body = await _json(request)
    except _Refused as exc:
        return _answer(exc.code, exc.message)
    if body.get("username") != view.username or body.get("password") != view.password:
        stats["login_refused"] += 1
        return _answer(BAD_LOGIN, "Sai tên đăng nhập hoặc mật khẩu")
    session = secrets.token_urlsafe(24)
    now = time.monotonic()
    view.sessions = {s: end for s, end in view.sessions.items() if end > now}
    view.sessions[session] = now + view.session_ttl
    stats["logins"] += 1
    return _answer(OK, "Thành công", session=session)


def _records(model: type[BaseModel], data: Any) -> list[Any]:
    """Every record checked before any is kept; the first fault names its dossier and field."""
    if not isinstance(data, list) or not data:
        raise _Refused(INVALID, "Trường data phải là một danh sách hồ sơ")
    out = []
    for i, raw in enumerate(data):
        try:
            out.append(model.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "data"
            code = raw.get("MaHoSo") if isinstance(raw, dict) else None
            raise _Refused(
                INVALID, f"Hồ sơ {code or f'thứ {i + 1}'}: trường {where} không hợp lệ ({err['msg']})"
            ) from None
    return out


def _sync_dossiers(view: PortalView, stats: Counter[str], body: dict[str, Any]) -> web.Response:
    updating = body.get("isUpdating")
    if updating not in ("True", "False"):
        raise _Refused(INVALID, "Trường isUpdating phải là True hoặc False")
    records: list[PortalDossier] = _records(PortalDossier, body.get("data"))
    codes = [r.MaHoSo for r in records]
    if updating == "False":
        taken = [c for c in codes if c in view.dossiers]
        if taken:
            raise _Refused(EXISTS, f"Hồ sơ {', '.join(taken)} đã tồn tại")
    else:
        missing = [c for c in codes if c not in view.dossiers]
        if missing:
            raise _Refused(NOT_FOUND, f"Hồ sơ {', '.join(missing)} không tồn tại")
    for r in records:
        view.dossiers[r.MaHoSo] = r.model_dump()  # the latest record wins, as the portal upserts by MaHoSo
    stats["updates" if updating == "True" else "creates"] += len(records)
    return _answer(OK, "Đồng bộ thành công")


def _sync_progress(view: PortalView, stats: Counter[str], body: dict[str, Any]) -> web.Response:
    records: list[PortalProgress] = _records(PortalProgress, body.get("data"))
    missing = sorted({r.MaHoSo for r in records if r.MaHoSo not in view.dossiers})
    if missing:
        raise _Refused(NOT_FOUND, f"Hồ sơ {', '.join(missing)} không tồn tại")
    for r in records:
        key = orjson.dumps(r.model_dump(), option=orjson.OPT_SORT_KEYS)
        stats["progress_records"] += 1
        if key in view.progress:
            stats["duplicates"] += 1  # the same step again: at least once, never lost
            continue
        view.progress.add(key)
        view.statuses.setdefault(r.MaHoSo, []).append(r.TrangThai)
    return _answer(OK, "Cập nhật tiến độ thành công")


async def _service(request: web.Request) -> web.Response:
    view, stats = request.app[VIEW], request.app[STATS]
    refuse = view.refuse
    if refuse.status is not None:
        stats["refused_http"] += 1
        return web.json_response({"error": "refused (simulated)"}, status=refuse.status)
    try:
        body = await _json(request)
        session = body.get("session")
        if not isinstance(session, str) or view.sessions.get(session, 0.0) <= time.monotonic():
            stats["no_session"] += 1
            raise _Refused(NO_SESSION, "Phiên làm việc (session) không hợp lệ hoặc đã hết hạn")
        if view.madonvi is not None and body.get("madonvi") != view.madonvi:
            raise _Refused(UNKNOWN, f"Đơn vị {body.get('madonvi')!r} không được phép đồng bộ")
        service = body.get("service")
        if refuse.error_code is not None and service != "TraCuuHoSo":
            data = body.get("data")
            first = data[0].get("MaHoSo") if isinstance(data, list) and data and isinstance(data[0], dict) else None
            named = f"Hồ sơ {first}: trường {refuse.field} không hợp lệ" if refuse.field else ""
            raise _Refused(refuse.error_code, refuse.message or named or "Từ chối (mô phỏng)")
        stats["calls"] += 1
        if service == "DongBoHoSoMC":
            return _sync_dossiers(view, stats, body)
        if service == "CapNhatTienDoHoSoMC":
            return _sync_progress(view, stats, body)
        if service == "TraCuuHoSo":
            found = view.dossiers.get(str(body.get("mahoso")))
            return _answer(OK, "Thành công", result=[found] if found else [])
        raise _Refused(UNKNOWN, f"Dịch vụ {service!r} không được hỗ trợ")
    except _Refused as exc:
        stats["refused"] += 1
        log.info("simulated_refusal", error_code=exc.code, message=exc.message[:300])
        return _answer(exc.code, exc.message)


async def _view(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    return web.json_response(
        {"dossiers": view.dossiers, "statuses": view.statuses, "progress_records": len(view.progress)}
    )


async def _refuse(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        status, code = body.get("status"), body.get("error_code")
        if status is not None and not (isinstance(status, int) and 400 <= status < 500):
            raise ValueError("status must be a 4xx or null")
        if code is not None and (not isinstance(code, int) or code == OK):
            raise ValueError("error_code must be a non-zero integer or null")
        field_name = body.get("field")
        refusal = Refusal(status, code, str(body.get("message") or ""), str(field_name) if field_name else None)
    except (ValueError, AttributeError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=422)
    request.app[VIEW].refuse = refusal
    log.info("portal_refuse_changed", status=status, error_code=code)
    return web.json_response({"status": status, "error_code": code})


async def _end_sessions(request: web.Request) -> web.Response:
    ended = len(request.app[VIEW].sessions)
    request.app[VIEW].sessions.clear()
    return web.json_response({"ended": ended})


def create_portal_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed)
    settings = options.settings
    app[VIEW] = PortalView(
        username=str(settings.get("username", "lienthong")),
        password=options.secret,
        madonvi=str(settings["madonvi"]) if settings.get("madonvi") else None,
        session_ttl=float(settings.get("session_ttl", 600.0)),
    )
    app.router.add_post(LOGIN_PATH, _login)
    app.router.add_post(SERVICE_PATH, _service)
    app.router.add_get("/_sim/view", _view)
    app.router.add_post("/_sim/refuse", _refuse)
    app.router.add_post("/_sim/sessions", _end_sessions)
    return app
