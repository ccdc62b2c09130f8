"""A simulator of the BHXH REST service: OAuth2 token endpoint, bearer tokens that expire, claims de-duplicated
by maGiaoDich (the gateway's idempotency key) and answered later by HMAC-signed webhooks. Faults injectable.

A claim comes as JSON, or as multipart/form-data: the claim in the part `hoSo`, then one file part per
document its `tepDinhKem` declares (part name, component, type, size, sha256). Each part is read in
chunks and hashed as it arrives, checked against its declaration and the procedure's rules; a claim whose
documents are not all there and whole is refused (HTTP 422) and counted as `documents_refused`, the
others as `documents_ok`.

options.secret is both the OAuth2 client secret and the webhook signing key. options.settings:
token_ttl (seconds, default 3600), client_id (default "lienthong-gateway"), funeral_allowance_vnd.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import orjson
from aiohttp import BodyPartReader, web

from contracts.calendar import VN_TZ
from gateway.sdk import (
    STATS,
    HmacSigner,
    ReceivedDocument,
    SimulatorOptions,
    count_documents,
    document_problems,
    new_simulator,
    post_until_accepted,
    spawn,
)
from plugins.police.population import population  # the same synthetic citizens in every agency's register
from plugins.social_insurance.procedures import by_code

CLIENT_ID = "lienthong-gateway"
PROCEDURES = by_code()  # the agency's own rules: accepted documents per procedure
# 10 x the base salary of 2,340,000 VND (from 1 July 2024); an operator's figure, not the law's text.
FUNERAL_ALLOWANCE_VND = 23_400_000
REQUIRED = {
    "CAP_THE_BHYT_TE": ("soDinhDanh", "hoTen", "ngaySinh", "maTinhCuTru", "maXaCuTru"),
    "TRO_CAP_MAI_TANG": ("soDinhDanhNguoiChet", "ngayChet", "soTrichLucKhaiTu", "nguoiHuong", "taiKhoan"),
}


@dataclass
class Member:
    """One insured person of the register."""

    number: str
    full_name: str
    date_of_birth: str  # yyyyMMdd
    gender: int


OPTIONS = web.AppKey("options", SimulatorOptions)
TOKENS = web.AppKey("tokens", dict[str, float])  # access token -> expiry on the monotonic clock
ACCEPTED = web.AppKey("accepted", dict[str, dict[str, Any]])
REGISTER = web.AppKey("register", dict[str, Member])
DOCUMENTS = web.AppKey("documents", dict[str, list[dict[str, Any]]])  # maHoSo -> the documents it came with


def insurance_number(personal_id: str) -> str:
    """A stable 10-digit mã số BHXH: the province of the personal id and 8 digits derived from it."""
    return personal_id[1:3] + f"{int(hashlib.sha256(personal_id.encode()).hexdigest()[:12], 16) % 10**8:08d}"


def _malformed() -> web.Response:
    return web.Response(status=200, body=b'{"maTiepNhan": ', content_type="application/json")


def _error(status: int, code: str, text: str, **headers: str) -> web.Response:
    body = orjson.dumps({"maLoi": code, "moTa": text})  # UTF-8 as it is: the gateway shows it to the centre
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _client_id(app: web.Application) -> str:
    return str(app[OPTIONS].settings.get("client_id", CLIENT_ID))


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (unquote_plus(user), unquote_plus(password)) if sep else None


async def issue_token(request: web.Request) -> web.Response:
    app = request.app
    given = _basic_credentials(request.headers.get("Authorization", ""))
    expected = (_client_id(app), app[OPTIONS].secret)
    if given is None or not all(hmac.compare_digest(a, b) for a, b in zip(given, expected, strict=True)):
        app[STATS]["tokens_denied"] += 1
        return web.json_response({"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": "Basic"})
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return web.json_response({"error": "unsupported_grant_type"}, status=400)
    ttl = float(app[OPTIONS].settings.get("token_ttl", 3600))
    now = time.monotonic()
    tokens = app[TOKENS]
    for stale in [t for t, exp in tokens.items() if exp <= now]:
        del tokens[stale]
    token = secrets.token_urlsafe(24)
    tokens[token] = now + ttl
    app[STATS]["tokens_issued"] += 1
    lifetime: float | int = int(ttl) if ttl.is_integer() else ttl
    return web.json_response(
        {"access_token": token, "token_type": "Bearer", "expires_in": lifetime},
        headers={"Cache-Control": "no-store"},
    )


def _authorize(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    expiry = request.app[TOKENS].get(header[7:]) if header.startswith("Bearer ") else None
    if expiry is None or expiry <= time.monotonic():
        request.app[STATS]["tokens_refused"] += 1
        raise web.HTTPUnauthorized(
            text=orjson.dumps({"maLoi": "401", "moTa": "access token missing, expired or revoked"}).decode(),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


async def _authorized_json(request: web.Request) -> Any:
    _authorize(request)
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(
            text='{"maLoi": "400", "moTa": "invalid JSON"}', content_type="application/json"
        ) from None


async def _multipart_claim(request: web.Request) -> tuple[Any, list[ReceivedDocument], list[str]]:
    """The claim of the `hoSo` part and the file parts after it, each hashed as it streams in."""
    reader = await request.multipart()
    first = await reader.next()
    if not isinstance(first, BodyPartReader) or first.name != "hoSo":
        return None, [], ["the first part is the claim, named hoSo"]
    try:
        data = orjson.loads(await first.read())
    except orjson.JSONDecodeError:
        return None, [], ["the hoSo part is not JSON"]
    declared = {d.get("tenPhan"): d for d in data.get("tepDinhKem") or [] if isinstance(d, dict)}
    docs: list[ReceivedDocument] = []
    problems: list[str] = []
    while (part := await reader.next()) is not None:
        d = declared.pop(part.name, None) if isinstance(part, BodyPartReader) else None
        if d is None or not isinstance(part, BodyPartReader):
            problems.append(f"part {getattr(part, 'name', '?')} is not declared in tepDinhKem")
            continue
        digest, size, head = hashlib.sha256(), 0, b""
        while chunk := await part.read_chunk():
            digest.update(chunk)
            size += len(chunk)
            head = (head + chunk)[:16] if len(head) < 16 else head
        if part.headers.get("Content-Type") != d.get("loaiTep"):
            problems.append(f"part {part.name} is {part.headers.get('Content-Type')}, declared {d.get('loaiTep')}")
        code, name, media_type = str(d.get("maThanhPhan")), str(d.get("tenTaiLieu")), str(d.get("loaiTep"))
        declared_size = int(d.get("kichThuoc") or -1)
        docs.append(
            ReceivedDocument(
                code, name, media_type, declared_size, str(d.get("sha256")), size, digest.hexdigest(), head
            )
        )
    problems += [
        f"{d.get('maThanhPhan')} ({name}): declared in tepDinhKem but not sent" for name, d in declared.items()
    ]
    return data, docs, problems


async def submit_claim(request: web.Request) -> web.Response:
    if request.content_type == "multipart/form-data":
        _authorize(request)
        data, docs, problems = await _multipart_claim(request)
    else:
        data, docs, problems = await _authorized_json(request), [], []
    stats, accepted = request.app[STATS], request.app[ACCEPTED]
    if not isinstance(data, dict):
        return _error(422, "422", "a claim is a JSON object")
    problems += document_problems(PROCEDURES.get(str(data.get("maThuTuc"))), docs)
    if problems:
        count_documents(stats, problems)
        return _error(422, "422", "Hồ sơ đính kèm không hợp lệ: " + "; ".join(problems))
    missing = [k for k in ("maGiaoDich", "maHoSo", "loaiHoSo", "duLieu", "urlCallback") if not data.get(k)]
    required = REQUIRED.get(str(data.get("loaiHoSo")))
    if required is None and not missing:
        return _error(422, "422", f"unknown loaiHoSo {data.get('loaiHoSo')!r}")
    if not missing and isinstance(data["duLieu"], dict):
        missing = [f"duLieu.{k}" for k in required or () if not data["duLieu"].get(k)]
    if missing:
        return _error(422, "422", f"missing fields: {', '.join(missing)}")
    tx = data["maGiaoDich"]
    if tx in accepted:
        stats["duplicates"] += 1
        return web.json_response({"maTiepNhan": accepted[tx]["maTiepNhan"], "trangThai": "DA_TIEP_NHAN"})
    ref = f"BHXH-{len(accepted) + 1:07d}"
    accepted[tx] = {"maTiepNhan": ref, "maHoSo": data["maHoSo"], "loaiHoSo": data["loaiHoSo"]}
    stats["accepted"] += 1
    count_documents(stats, [])
    request.app[DOCUMENTS][data["maHoSo"]] = [
        {"maThanhPhan": d.component_code, "loaiTep": d.media_type, "kichThuoc": d.received_size,
         "sha256": d.received_sha256}
        for d in docs
    ]  # fmt: skip
    spawn(request.app, _finish(request.app, data, ref))
    return web.json_response({"maTiepNhan": ref, "trangThai": "DA_TIEP_NHAN"}, status=202)


async def lookup_number(request: web.Request) -> web.Response:
    data = await _authorized_json(request)
    request.app[STATS]["lookups"] += 1
    member = request.app[REGISTER].get(str(data.get("soDinhDanh", ""))) if isinstance(data, dict) else None
    if member is None:
        return web.json_response({"timThay": False})
    return web.json_response(
        {
            "timThay": True,
            "maSoBHXH": member.number,
            "hoTen": member.full_name,
            "ngaySinh": member.date_of_birth,
            "gioiTinh": member.gender,
        }
    )


async def revoke_tokens(request: web.Request) -> web.Response:
    """Control: the agency forgets every token it issued (a restart, a key rotation)."""
    revoked = len(request.app[TOKENS])
    request.app[TOKENS].clear()
    request.app[STATS]["tokens_revoked"] += revoked
    return web.json_response({"revoked": revoked})


async def list_accepted(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[ACCEPTED].values()))


async def list_documents(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENTS])


def _now() -> str:
    return datetime.now(VN_TZ).strftime("%Y%m%d%H%M%S")


def _document(name: str, code: str, number: str, text: str) -> dict[str, Any]:
    pdf = f"%PDF-1.4 {text}".encode()
    return {
        "tenGiayTo": name,
        "maThanhPhan": code,
        "soGiayTo": number,
        "loaiTep": "application/pdf",
        "kichThuoc": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "noiDungBase64": base64.b64encode(pdf).decode(),
    }


def _card_event(app: web.Application, data: dict[str, Any], ref: str) -> dict[str, Any]:
    child = data["duLieu"]
    pid = child["soDinhDanh"]
    member = app[REGISTER].get(pid)
    if member is None:
        member = Member(insurance_number(pid), child["hoTen"], child["ngaySinh"], int(child.get("gioiTinh", 1)))
        app[REGISTER][pid] = member
    born = datetime.strptime(child["ngaySinh"], "%Y%m%d").date()
    # Free cover lasts until the child is 72 months old (29 February counts as the 28th).
    until = born.replace(year=born.year + 6, day=min(born.day, 28 if born.month == 2 else 31)) - timedelta(1)
    card = "TE1" + child["maTinhCuTru"] + member.number  # object TE (child under 6), benefit level 1
    return {
        "trangThai": "HOAN_THANH",
        "ghiChu": "Đã cấp thẻ BHYT",
        "ketQua": _document("Thẻ bảo hiểm y tế", "KQ_BHYT", card, f"the BHYT {card} {data['maHoSo']}"),
        "theBHYT": {
            "maThe": card,
            "maSoBHXH": member.number,
            "giaTriTu": child["ngaySinh"],
            "giaTriDen": until.strftime("%Y%m%d"),
            "noiKCB": child.get("maNoiKCB"),
        },
    }


def _funeral_event(app: web.Application, data: dict[str, Any], ref: str) -> dict[str, Any]:
    claim = data["duLieu"]
    if claim["soDinhDanhNguoiChet"] not in app[REGISTER]:
        return {"trangThai": "TU_CHOI", "ghiChu": "Không tìm thấy quá trình tham gia BHXH của người đã mất"}
    amount = int(app[OPTIONS].settings.get("funeral_allowance_vnd", FUNERAL_ALLOWANCE_VND))
    return {
        "trangThai": "HOAN_THANH",
        "ghiChu": "Đã giải quyết trợ cấp mai táng",
        "ketQua": _document(
            "Quyết định hưởng trợ cấp mai táng", "KQ_MT", f"{ref}/QĐ-BHXH", f"tro cap mai tang {data['maHoSo']}"
        ),
        "chiTra": {"soTien": amount, "ngayChiTra": datetime.now(VN_TZ).strftime("%Y%m%d")},
    }


async def _finish(app: web.Application, data: dict[str, Any], ref: str) -> None:
    await asyncio.sleep(app[OPTIONS].processing_delay)
    build = _card_event if data["loaiHoSo"] == "CAP_THE_BHYT_TE" else _funeral_event
    event = {"maSuKien": f"{ref}-KQ", "maHoSo": data["maHoSo"], "maTiepNhan": ref, "thoiGian": _now()}
    await _callback(app, data["urlCallback"], event | build(app, data, ref))


async def _callback(app: web.Application, url: str, event: dict[str, Any]) -> None:
    body = orjson.dumps(event)
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    headers = {
        "Content-Type": "application/json",
        "X-Api-Key": app[OPTIONS].callback_api_key,
        **HmacSigner(_client_id(app), app[OPTIONS].secret)("POST", path, body),
    }
    await post_until_accepted(app, url, body, headers)


def _refused() -> web.Response:
    return _error(422, "HS_KHONG_HOP_LE", "Hồ sơ không hợp lệ")


def create_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed, _refused)
    app[OPTIONS] = options
    app[TOKENS] = {}
    app[ACCEPTED] = {}
    app[DOCUMENTS] = {}
    app[REGISTER] = {
        c.personal_id: Member(
            insurance_number(c.personal_id), c.full_name, c.date_of_birth.strftime("%Y%m%d"), int(c.gender == "male")
        )
        for c in population(options.seed)
    }
    app.router.add_post("/oauth/token", issue_token)
    app.router.add_post("/api/v1/ho-so", submit_claim)
    app.router.add_post("/api/v1/tra-cuu/ma-so-bhxh", lookup_number)
    app.router.add_post("/_sim/revoke-tokens", revoke_tokens)
    app.router.add_get("/_sim/accepted", list_accepted)
    app.router.add_get("/_sim/documents", list_documents)
    return app
