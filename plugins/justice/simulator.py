"""A simulator of the civil-status system behind the provincial data-sharing platform: envelopes with XML,
HMAC signatures, de-duplication by requestId, results called back when processing is done. Faults injectable.

Business errors come in the envelope as the real platforms send them: 100 (HTTP 401) for a bad signature,
201 when a person named is not in the population register, 500 for invalid data (HTTP 200 both): a
registration whose documents (DanhSachTaiLieu, base64 in the XML) are missing, incomplete or not what
they declare is invalid data, counted as `documents_refused`; the others as `documents_ok`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import Counter
from datetime import date, datetime
from typing import Any

import orjson
from aiohttp import web
from lxml import etree

from adapters.xml import parse_xml
from contracts.calendar import VN_TZ
from contracts.identifiers import BIRTH_PLACE_CODES
from gateway.sdk import (
    RNG,
    STATS,
    HmacSigner,
    HmacVerifier,
    MalformedAnswer,
    ReceivedDocument,
    SignatureError,
    SimulatorOptions,
    UnsafeAnswer,
    count_documents,
    document_problems,
    new_simulator,
    post_until_accepted,
    spawn,
)
from plugins.justice.envelope import reply
from plugins.justice.procedures import by_code
from plugins.police.population import population  # the same synthetic citizens in every agency's register

KEY_ID = "lienthong-gateway"
PROCEDURES = by_code()  # the agency's own rules: required documents and accepted types per procedure
MAX_XML_BYTES = 64 * 1024 * 1024
ENTRIES_PER_BOOK = 200
KINDS = {"HoSoDangKyKhaiSinh": "KHAI_SINH", "HoSoDangKyKhaiTu": "KHAI_TU"}
PATH_KINDS = {"/api/hotich/v1/khai-sinh": "KHAI_SINH", "/api/hotich/v1/khai-tu": "KHAI_TU"}
REQUIRED = {
    "KHAI_SINH": ("MaHoSo", "NoiDangKy/MaTinh", "TreEm/HoTen", "TreEm/GioiTinh", "TreEm/NgaySinh"),
    "KHAI_TU": ("MaHoSo", "NoiDangKy/MaTinh", "NguoiChet/SoDinhDanh", "NguoiChet/NgayChet", "GiayBaoTu/So"),
}

OPTIONS = web.AppKey("options", SimulatorOptions)
VERIFIER = web.AppKey("verifier", HmacVerifier)
ACCEPTED = web.AppKey("accepted", dict[str, dict[str, Any]])
REGISTER = web.AppKey("register", frozenset[str])  # personal ids of the population register
ISSUED = web.AppKey("issued", set[str])  # personal ids given to newborns
ENTRIES: web.AppKey[Counter[tuple[str, int]]] = web.AppKey("entries")  # (kind, year) -> entries written


def _envelope(code: str, message: str, data: str = "", status: int = 200) -> web.Response:
    return web.json_response(reply(code, message, data), status=status)


def _malformed() -> web.Response:
    return _envelope("0", "Tiếp nhận thành công", "<TiepNhan><MaTiepNhan>HT-")


def _xml(root: etree._Element) -> str:
    return etree.tostring(root, encoding="unicode")


def _add(parent: etree._Element, tag: str, value: object) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = str(value)
    return el


def _fill(parent: etree._Element, pairs: list[tuple[str, object]]) -> etree._Element:
    for tag, value in pairs:
        _add(parent, tag, value)
    return parent


async def register(request: web.Request) -> web.Response:
    app, body = request.app, await request.read()
    try:
        app[VERIFIER].verify(request.method, request.path, request.headers, body)
    except SignatureError as exc:
        return _envelope("100", f"Xác thực không thành công: {exc}", status=401)
    try:
        env = orjson.loads(body)
        root = parse_xml(str(env["data"]).encode(), max_bytes=MAX_XML_BYTES)
    except (orjson.JSONDecodeError, KeyError, TypeError, MalformedAnswer, UnsafeAnswer) as exc:
        return _envelope("500", f"Dữ liệu không hợp lệ: {exc}")
    kind = KINDS.get(root.tag)
    if kind is None or kind != PATH_KINDS[request.path]:
        return _envelope("500", f"Dữ liệu không hợp lệ: {root.tag} gửi nhầm dịch vụ")
    problem = _problem(kind, root, env)
    if problem:
        return _envelope("500", f"Dữ liệu không hợp lệ: {problem}")
    documents = document_problems(PROCEDURES.get(root.findtext("MaTTHC") or ""), _documents(root))
    if documents:
        count_documents(app[STATS], documents)
        return _envelope("500", "Dữ liệu không hợp lệ: giấy tờ thiếu hoặc không khớp: " + "; ".join(documents))
    people = [root.findtext(p) for p in ("Me/SoDinhDanh", "Cha/SoDinhDanh", "NguoiChet/SoDinhDanh")]
    unknown = [p for p in people if p and p not in app[REGISTER]]
    if unknown:
        return _envelope("201", f"Không tìm thấy công dân {unknown[0]} trong CSDL quốc gia về dân cư")
    stats, accepted = app[STATS], app[ACCEPTED]
    rid = env["requestId"]
    if rid in accepted:
        stats["duplicates"] += 1
        return _receipt(accepted[rid]["maTiepNhan"])
    ref = f"HT-{len(accepted) + 1:07d}"
    accepted[rid] = {"maTiepNhan": ref, "maHoSo": root.findtext("MaHoSo"), "loaiViec": kind}
    stats["accepted"] += 1
    count_documents(stats, [])
    spawn(app, _finish(app, kind, root, ref, env["callbackUrl"]))
    return _receipt(ref)


def _documents(root: etree._Element) -> list[ReceivedDocument]:
    """DanhSachTaiLieu as it came: a document whose content is not base64 arrives as nothing."""
    out = []
    for doc in root.iterfind("DanhSachTaiLieu/TaiLieu"):
        try:
            content = base64.b64decode(doc.findtext("NoiDung") or "", validate=True)
        except (binascii.Error, ValueError):
            content = b""
        size = doc.findtext("KichThuoc") or ""
        out.append(
            ReceivedDocument.of(
                doc.findtext("MaThanhPhan") or "",
                doc.findtext("TenTaiLieu") or "",
                doc.findtext("LoaiTep") or "",
                int(size) if size.isdigit() else -1,
                doc.findtext("Sha256") or "",
                content,
            )
        )
    return out


def _problem(kind: str, root: etree._Element, env: dict[str, Any]) -> str | None:
    missing = [p for p in REQUIRED[kind] if not (root.findtext(p) or "").strip()]
    missing += [k for k in ("requestId", "callbackUrl") if not env.get(k)]
    if missing:
        return "thiếu " + ", ".join(missing)
    if "0" + str(root.findtext("NoiDangKy/MaTinh")) not in BIRTH_PLACE_CODES:
        return "mã tỉnh nơi đăng ký không hợp lệ"
    for path in ("TreEm/NgaySinh", "NguoiChet/NgayChet"):
        try:
            if root.findtext(path) is not None:
                date.fromisoformat(str(root.findtext(path)))
        except ValueError:
            return f"{path} không phải ngày yyyy-MM-dd"
    if kind == "KHAI_SINH" and root.findtext("TreEm/GioiTinh") not in ("1", "2"):
        return "TreEm/GioiTinh là 1 (nam) hoặc 2 (nữ)"
    return None


def _receipt(ref: str) -> web.Response:
    root = etree.Element("TiepNhan")
    _add(root, "MaTiepNhan", ref)
    _add(root, "TrangThai", "DA_TIEP_NHAN")
    return _envelope("0", "Tiếp nhận thành công", _xml(root))


def new_personal_id(app: web.Application, province: str, born: date, gender: str) -> str:
    """Digits 1-3 the registering province, 4 century and gender, 5-6 the year, 7-12 random and unused."""
    digit4 = (born.year // 100 - 19) * 2 + (1 if gender == "2" else 0)
    while True:
        pid = f"0{province}{digit4}{born.year % 100:02d}{app[RNG].randint(0, 999_999):06d}"
        if pid not in app[ISSUED] and pid not in app[REGISTER]:
            app[ISSUED].add(pid)
            return pid


def _entry(app: web.Application, kind: str) -> tuple[int, str, int]:
    """(number, book, page) of the next entry: numbers restart each year, 200 entries a book, 2 a page."""
    year = datetime.now(VN_TZ).year
    app[ENTRIES][(kind, year)] += 1
    n = app[ENTRIES][(kind, year)]
    return n, f"{(n - 1) // ENTRIES_PER_BOOK + 1:02d}/{year}", ((n - 1) % ENTRIES_PER_BOOK) // 2 + 1


def _certificate(result: etree._Element, name: str, code: str, number: str, text: str) -> None:
    pdf = f"%PDF-1.4 {text}".encode()
    _fill(
        etree.SubElement(result, "GiayTo"),
        [
            ("TenGiayTo", name),
            ("MaThanhPhan", code),
            ("SoGiayTo", number),
            ("LoaiTep", "application/pdf"),
            ("KichThuoc", len(pdf)),
            ("Sha256", hashlib.sha256(pdf).hexdigest()),
            ("NoiDung", base64.b64encode(pdf).decode()),
        ],
    )


def result_xml(app: web.Application, kind: str, request: etree._Element, ref: str) -> etree._Element:
    now = datetime.now(VN_TZ)
    root = _fill(
        etree.Element("KetQuaHoTich"),
        [
            ("MaSuKien", f"{ref}-HT"),
            ("LoaiViec", kind),
            ("MaHoSo", request.findtext("MaHoSo")),
            ("MaTiepNhan", ref),
            ("TrangThai", "HOAN_THANH"),
            ("ThoiGian", now.isoformat(timespec="seconds")),
        ],
    )
    number, book, page = _entry(app, kind)
    _fill(
        etree.SubElement(root, "DangKy"),
        [("So", number), ("Quyen", book), ("Trang", page), ("NgayDangKy", now.date().isoformat())],
    )
    if kind == "KHAI_SINH":
        province = str(request.findtext("NoiDangKy/MaTinh"))
        born = date.fromisoformat(str(request.findtext("TreEm/NgaySinh")))
        gender = str(request.findtext("TreEm/GioiTinh"))
        pid = new_personal_id(app, province, born, gender)
        _fill(
            etree.SubElement(root, "CongDan"),
            [("SoDinhDanh", pid), ("NgaySinh", born.isoformat()), ("GioiTinh", gender), ("MaTinhDangKy", province)],
        )
        _add(root, "GhiChu", "Đã đăng ký khai sinh")
        _certificate(root, "Giấy khai sinh (bản chính)", "KQ_KS", f"{number}/{book}", f"khai sinh {pid}")
    else:
        _add(root, "GhiChu", "Đã đăng ký khai tử")
        _certificate(root, "Trích lục khai tử", "KQ_KT", f"{number}/{book}", f"khai tu {request.findtext('MaHoSo')}")
    return root


async def _finish(app: web.Application, kind: str, request: etree._Element, ref: str, url: str) -> None:
    await asyncio.sleep(app[OPTIONS].processing_delay)
    body = orjson.dumps(reply("0", "Kết quả xử lý", _xml(result_xml(app, kind, request, ref))))
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    headers = {
        "Content-Type": "application/json",
        "X-Api-Key": app[OPTIONS].callback_api_key,
        **HmacSigner(KEY_ID, app[OPTIONS].secret)("POST", path, body),
    }
    await post_until_accepted(app, url, body, headers)


async def list_accepted(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[ACCEPTED].values()))


def _refused() -> web.Response:
    return _envelope("500", "Dữ liệu không hợp lệ: hồ sơ bị từ chối")


def create_simulator(options: SimulatorOptions) -> web.Application:
    app = new_simulator(options, _malformed, _refused)
    app[OPTIONS] = options
    app[VERIFIER] = HmacVerifier({KEY_ID: options.secret})
    app[ACCEPTED] = {}
    app[REGISTER] = frozenset(c.personal_id for c in population(options.seed))
    app[ISSUED] = set()
    app[ENTRIES] = Counter()
    for path in PATH_KINDS:
        app.router.add_post(path, register)
    app.router.add_get("/_sim/accepted", list_accepted)
    return app
