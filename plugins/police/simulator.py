"""A simulator of the police population-data service: same REST wire, signatures checked, faults injectable.

Registration requests are de-duplicated by maYeuCau (the gateway's idempotency key); each accepted
request is answered later by a signed callback to the gateway, as the real service does. A case waiting
for documents can be withdrawn (rut-ho-so) when the centre refuses it at the deadline.

Documents come in base64 in the signed JSON (taiLieu): each is checked whole (declared size, sha256, type)
and against the procedure's required components; a dossier whose documents are not all right is refused
(HTTP 422, maLoi 500) and counted as `documents_refused`, the others as `documents_ok`.

options.settings: supplement_rate (share of requests first asked for a missing document, default 0),
supplement_due_days (the deadline such a request names, default 9 calendar days; null names none).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from contracts.calendar import VN_TZ
from gateway.sdk import (
    RNG,
    STATS,
    HmacSigner,
    HmacVerifier,
    ReceivedDocument,
    SignatureError,
    SimulatorOptions,
    count_documents,
    document_problems,
    new_simulator,
    post_until_accepted,
    spawn,
)
from plugins.police.population import population
from plugins.police.procedures import by_code

KEY_ID = "lienthong-gateway"
PROCEDURES = by_code()  # the agency's own rules: required documents and accepted types per procedure
ACCEPTED = web.AppKey("accepted", dict[str, dict[str, Any]])
REGISTER = web.AppKey("register", dict[str, Any])
OPTIONS = web.AppKey("options", SimulatorOptions)
VERIFIER = web.AppKey("verifier", HmacVerifier)
WAITING = web.AppKey("waiting", dict[str, dict[str, Any]])  # agency ref -> request awaiting a supplement
SUPPLEMENTS = web.AppKey("supplements", dict[str, str])
WITHDRAWN = web.AppKey("withdrawn", dict[str, str])  # request id -> agency ref of a case closed unfinished
DOCUMENTS = web.AppKey("documents", dict[str, list[dict[str, Any]]])  # maHoSo -> the documents it came with


def _malformed() -> web.Response:
    return web.Response(status=200, body=b'{"maTiepNhan": ', content_type="application/json")


def _error(status: int, code: str, text: str) -> web.Response:
    body = orjson.dumps({"maLoi": code, "moTa": text})  # UTF-8 as it is: the gateway shows it to the centre
    return web.Response(body=body, status=status, content_type="application/json")


async def _verified_json(request: web.Request) -> Any:
    body = await request.read()
    try:
        request.app[VERIFIER].verify(request.method, request.path, request.headers, body)
    except SignatureError as exc:
        raise web.HTTPUnauthorized(
            text=orjson.dumps({"maLoi": "100", "moTa": str(exc)}).decode(), content_type="application/json"
        ) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(
            text='{"maLoi": "500", "moTa": "invalid JSON"}', content_type="application/json"
        ) from None


def received_documents(data: dict[str, Any]) -> tuple[list[ReceivedDocument], list[str]]:
    """taiLieu as it came: each document decoded, or why it could not be."""
    docs, problems = [], []
    for i, t in enumerate(data.get("taiLieu") or []):
        try:
            content = base64.b64decode(t["noiDungBase64"], validate=True)
            docs.append(
                ReceivedDocument.of(
                    t["maThanhPhan"], t["tenTaiLieu"], t["loaiTep"], int(t["kichThuoc"]), t["sha256"], content
                )
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            problems.append(f"taiLieu[{i}]: incomplete, or its content is not base64")
    return docs, problems


async def register_residence(request: web.Request) -> web.Response:
    data = await _verified_json(request)
    stats, accepted = request.app[STATS], request.app[ACCEPTED]
    removal = request.path.endswith("/xoa-dang-ky")
    needed = ("maYeuCau", "maHoSo", "soDinhDanh", "hoTen", "urlCallback") + (() if removal else ("diaChiMoi",))
    if removal and data.get("lyDo", "deceased") == "deceased":
        needed += ("ngayMat", "soTrichLucKhaiTu")  # a death is removed on the strength of its extract
    missing = [k for k in needed if not data.get(k)]
    if missing:
        return _error(422, "500", f"missing fields: {', '.join(missing)}")
    if len(data["maYeuCau"]) > 40:
        return _error(422, "500", "maYeuCau longer than 40 characters")
    head = data.get("soDinhDanhChuHo")
    if head and head not in request.app[REGISTER]:
        return _error(422, "201", f"Không tìm thấy chủ hộ {head} trong CSDL quốc gia về dân cư")
    docs, problems = received_documents(data)
    problems += document_problems(PROCEDURES.get(str(data.get("maTTHC"))), docs)
    rid = data["maYeuCau"]
    if problems:
        count_documents(stats, problems)
        return _error(422, "500", "Hồ sơ thiếu hoặc sai giấy tờ: " + "; ".join(problems))
    if rid in accepted:
        stats["duplicates"] += 1
        return web.json_response({"maTiepNhan": accepted[rid]["maTiepNhan"], "trangThai": "DA_TIEP_NHAN"}, status=200)
    count_documents(stats, problems)
    ref = f"CA-{len(accepted) + 1:07d}"
    accepted[rid] = {
        "maTiepNhan": ref,
        "maHoSo": data["maHoSo"],
        "maTTHC": data.get("maTTHC"),
        "soDinhDanh": data["soDinhDanh"],
    }
    request.app[DOCUMENTS][data["maHoSo"]] = [
        {"maThanhPhan": d.component_code, "loaiTep": d.media_type, "kichThuoc": d.size, "sha256": d.sha256}
        for d in docs
    ]
    if removal:
        accepted[rid]["soTrichLucKhaiTu"] = data.get("soTrichLucKhaiTu")
    stats["accepted"] += 1
    spawn(request.app, _finish(request.app, data, ref))
    return web.json_response({"maTiepNhan": ref, "trangThai": "DA_TIEP_NHAN"}, status=202)


async def _callback(app: web.Application, url: str, event: dict[str, Any]) -> None:
    body = orjson.dumps(event)
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    headers = {
        "Content-Type": "application/json",
        "X-Api-Key": app[OPTIONS].callback_api_key,
        **HmacSigner(KEY_ID, app[OPTIONS].secret)("POST", path, body),
    }
    await post_until_accepted(app, url, body, headers)


def _now() -> str:
    return datetime.now(VN_TZ).strftime("%Y%m%d%H%M%S")


async def _finish(app: web.Application, data: dict[str, Any], ref: str) -> None:
    opts = app[OPTIONS]
    await asyncio.sleep(opts.processing_delay)
    if app[RNG].random() < float(opts.settings.get("supplement_rate", 0.0)):
        # Ask for a missing document first; the result waits for the gateway's supplement.
        app[WAITING][ref] = data
        event = {
            "maSuKien": f"{ref}-BS",
            "maHoSo": data["maHoSo"],
            "maTiepNhan": ref,
            "trangThai": "YEU_CAU_BO_SUNG",
            "ghiChu": "Thiếu giấy tờ chứng minh chỗ ở hợp pháp",
            "thoiGian": _now(),
            "yeuCauBoSung": ["Giấy tờ, tài liệu chứng minh chỗ ở hợp pháp"],
        }
        days = opts.settings.get("supplement_due_days", 9)  # None: the request names no deadline
        if days is not None:
            event["hanBoSung"] = (datetime.now(VN_TZ) + timedelta(days=float(days))).strftime("%Y%m%d%H%M%S")
        await _callback(app, data["urlCallback"], event)
        return
    await _complete(app, data, ref)


async def _complete(app: web.Application, data: dict[str, Any], ref: str) -> None:
    pdf = f"%PDF-1.4 xac nhan thong tin cu tru {data['maHoSo']}".encode()
    await _callback(
        app,
        data["urlCallback"],
        {
            "maSuKien": f"{ref}-HT",
            "maHoSo": data["maHoSo"],
            "maTiepNhan": ref,
            "trangThai": "HOAN_THANH",
            "ghiChu": "Đã xóa đăng ký thường trú" if "diaChiMoi" not in data else "Đã đăng ký thường trú",
            "thoiGian": _now(),
            "ketQua": {
                "tenGiayTo": "Thông báo kết quả "
                + ("xóa đăng ký thường trú" if "diaChiMoi" not in data else "đăng ký thường trú"),
                "maThanhPhan": "KQ_CT",
                "soGiayTo": ref,
                "loaiTep": "application/pdf",
                "kichThuoc": len(pdf),
                "sha256": hashlib.sha256(pdf).hexdigest(),
                "noiDungBase64": base64.b64encode(pdf).decode(),
            },
        },
    )


async def receive_supplement(request: web.Request) -> web.Response:
    data = await _verified_json(request)
    stats = request.app[STATS]
    ref = data.get("maTiepNhan")
    if data.get("maYeuCau") in request.app[SUPPLEMENTS]:
        stats["duplicates"] += 1
        return web.json_response({"trangThai": "DA_NHAN_BO_SUNG"})
    original = request.app[WAITING].pop(ref, None) if ref else None
    if original is None:
        return _error(422, "201", f"no dossier {ref} waits for a supplement")
    docs, problems = received_documents(data)
    problems += document_problems(None, docs)
    if not data.get("taiLieu") or problems:
        request.app[WAITING][ref] = original
        return _error(422, "500", "; ".join(problems) or "a supplement carries at least one document")
    request.app[SUPPLEMENTS][data["maYeuCau"]] = ref
    stats["supplements"] += 1
    spawn(request.app, _complete(request.app, original, ref))
    return web.json_response({"trangThai": "DA_NHAN_BO_SUNG"}, status=202)


async def withdraw_dossier(request: web.Request) -> web.Response:
    """The centre refused a dossier this service asked documents for: the case is closed, never finished."""
    data = await _verified_json(request)
    stats, withdrawn = request.app[STATS], request.app[WITHDRAWN]
    if data.get("maYeuCau") in withdrawn:
        stats["duplicates"] += 1
        return web.json_response({"trangThai": "DA_RUT"})
    missing = [k for k in ("maYeuCau", "maHoSo", "maTiepNhan", "lyDo") if not data.get(k)]
    if missing:
        return _error(422, "500", f"missing fields: {', '.join(missing)}")
    if request.app[WAITING].pop(data["maTiepNhan"], None) is None:
        return _error(409, "202", f"hồ sơ {data['maTiepNhan']} không ở trạng thái chờ bổ sung")
    withdrawn[data["maYeuCau"]] = data["maTiepNhan"]
    stats["withdrawals"] += 1
    return web.json_response({"trangThai": "DA_RUT"})


async def verify_identity(request: web.Request) -> web.Response:
    data = await _verified_json(request)
    request.app[STATS]["lookups"] += 1
    person = request.app[REGISTER].get(data.get("soDinhDanh", ""))
    if person is None:
        return web.json_response({"ketQua": "KHONG_TIM_THAY"})
    wrong = []
    if person.full_name.casefold() != str(data.get("hoTen", "")).strip().casefold():
        wrong.append("hoTen")
    if person.date_of_birth.strftime("%Y%m%d") != data.get("ngaySinh"):
        wrong.append("ngaySinh")
    return web.json_response(
        {"ketQua": "KHONG_KHOP" if wrong else "KHOP", "mucDoDinhDanh": 2, "truongKhongKhop": wrong}
    )


async def list_accepted(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[ACCEPTED].values()))


async def list_documents(request: web.Request) -> web.Response:
    """What each accepted dossier (by maHoSo) came with: component, type, size and sha256 of each document."""
    return web.json_response(request.app[DOCUMENTS])


def _refused() -> web.Response:
    return _error(422, "500", "Dữ liệu không hợp lệ: hồ sơ bị từ chối")


def create_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed, _refused)
    app[OPTIONS] = options
    app[ACCEPTED] = {}
    app[REGISTER] = {c.personal_id: c for c in population(options.seed)}
    app[VERIFIER] = HmacVerifier({KEY_ID: options.secret})
    app[WAITING] = {}
    app[SUPPLEMENTS] = {}
    app[WITHDRAWN] = {}
    app[DOCUMENTS] = {}
    app.router.add_post("/api/v1/cu-tru/dang-ky", register_residence)
    app.router.add_post("/api/v1/dan-cu/xac-thuc", verify_identity)
    app.router.add_post("/api/v1/cu-tru/bo-sung", receive_supplement)
    app.router.add_post("/api/v1/cu-tru/xoa-dang-ky", register_residence)
    app.router.add_post("/api/v1/cu-tru/rut-ho-so", withdraw_dossier)
    app.router.add_get("/_sim/accepted", list_accepted)
    app.router.add_get("/_sim/documents", list_documents)
    return app
