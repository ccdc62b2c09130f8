"""The intake receipt (giấy tiếp nhận hồ sơ và hẹn trả kết quả) as a signed JSON document and as a printable
page; what a result's signature says; and the public status page a receipt's QR code opens (status only)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from contracts import Dossier, PersonApplicant
from gateway.qr import qr_svg

VN = ZoneInfo("Asia/Ho_Chi_Minh")
RECEIPT_TYPE = "lienthong.receipt/v1"
RECEIPT_TITLE = "Giấy tiếp nhận hồ sơ và hẹn trả kết quả"
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def iso(t: datetime) -> str:
    """As the API writes times (pydantic's JSON): UTC with a Z."""
    return t.isoformat().replace("+00:00", "Z")


def status_path(code: str, token: str) -> str:
    return f"/status/{code}?k={token}"


def first_due(d: Dossier) -> datetime:
    """The due date promised at intake: a supplement moves the dossier's due date, not its receipt's."""
    for s in d.supplements:
        if s.dossier_due_before is not None:
            return s.dossier_due_before
    return d.due_at


def applicant_name(d: Dossier) -> str:
    a = d.submission.applicant
    return a.full_name if isinstance(a, PersonApplicant) else a.name


def receipt_data(d: Dossier, status_url: str) -> dict[str, Any]:
    return {
        "type": RECEIPT_TYPE,
        "title": RECEIPT_TITLE,
        "dossier_code": d.code,
        "procedure": {"code": d.procedure_code, "name": d.procedure_name},
        "receiving_unit": d.receiving_unit,
        "centre": d.client_id,
        "applicant": applicant_name(d),
        "received_at": iso(d.received_at),
        "due_at": iso(first_due(d)),
        "return_method": d.submission.return_method.value,
        "documents": [
            {
                "component_code": a.component_code,
                "name": a.name,
                "media_type": a.media_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in d.submission.attachments
        ],
        "status_url": status_url,
    }


def receipt_bytes(d: Dossier, status_url: str) -> bytes:
    """The receipt as issued: the same bytes every time it is asked for (sorted keys, fixed layout)."""
    return orjson.dumps(receipt_data(d, status_url), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def receipt_metadata(d: Dossier, issuer: str) -> dict[str, Any]:
    """What a receipt's signature says besides its hash: no personal data (a signature is shown to anyone)."""
    return {
        "typ": "receipt",
        "iss": issuer,
        "dossier": d.code,
        "media_type": "application/json",
        "issued_at": iso(d.received_at),
    }


def result_metadata(d: Dossier, index: int, issuer: str, finished_at: datetime | None) -> dict[str, Any]:
    doc = d.results[index]
    return {
        "typ": "result",
        "iss": issuer,
        "dossier": d.code,
        "index": index,
        "name": doc.name,
        "component_code": doc.component_code,
        "result_code": doc.result_code,
        "media_type": doc.media_type,
        "agency": d.agency,
        "issued_at": iso(finished_at or d.updated_at),
    }


def local(t: datetime) -> str:
    return t.astimezone(VN).strftime("%d/%m/%Y %H:%M")


_STYLE = """
@page { size: A4; margin: 15mm; }
body { font-family: "Noto Serif", "Times New Roman", serif; font-size: 12pt; max-width: 180mm; margin: 0 auto;
  padding: 8mm 0; color: #000; line-height: 1.35; }
.nation { text-align: center; font-weight: bold; margin: 0; } .motto { text-align: center; margin: 0 0 6mm; }
h1 { text-align: center; font-size: 15pt; text-transform: uppercase; margin: 4mm 0; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #555; padding: 1.5mm 2mm;
  text-align: left; vertical-align: top; } th { background: #eee; } .facts th { width: 45mm; }
.bottom { display: flex; gap: 8mm; margin-top: 6mm; align-items: flex-start; }
figure { margin: 0; width: 45mm; text-align: center; font-size: 8pt; } figure svg { width: 40mm; height: 40mm; }
.proof { font-size: 9pt; word-break: break-all; } .n { text-align: right; }
@media print { body { padding: 0; } tr { break-inside: avoid; } }
"""


def receipt_page(d: Dossier, status_url: str, receipt_sha256: str, kid: str, verify_url: str) -> str:
    e = escape
    docs = (
        "".join(
            f"<tr><td>{i}</td><td>{e(a.name)}</td><td>{e(a.component_code)}</td></tr>"
            for i, a in enumerate(d.submission.attachments, 1)
        )
        or '<tr><td colspan="3">Không có giấy tờ kèm theo</td></tr>'
    )
    facts = [
        ("Mã hồ sơ", f"<strong id=dossier-code>{e(d.code)}</strong>"),
        ("Thủ tục", f"{e(d.procedure_name)} ({e(d.procedure_code)})"),
        ("Người nộp hồ sơ", e(applicant_name(d))),
        ("Ngày tiếp nhận", local(d.received_at)),
        ("Ngày hẹn trả kết quả", f"<span id=due>{local(first_due(d))}</span>"),
        ("Nơi tiếp nhận", e(d.receiving_unit)),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    qr = qr_svg(status_url, scale=3, title="Tra cứu tình trạng hồ sơ")
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>{RECEIPT_TITLE} {e(d.code)}</title>
<style>{_STYLE}</style></head><body>
<p class="nation">CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</p><p class="motto">Độc lập - Tự do - Hạnh phúc</p>
<h1>{RECEIPT_TITLE}</h1>
<table class="facts">{rows}</table>
<h2>Giấy tờ đã nhận</h2>
<table id="documents"><thead><tr><th>#</th><th>Giấy tờ</th><th>Mã thành phần</th></tr></thead><tbody>{docs}</tbody>
</table>
<div class="bottom"><figure id="qr">{qr}<figcaption>Quét mã để tra cứu tình trạng hồ sơ
(chỉ hiển thị tình trạng, không có thông tin cá nhân)</figcaption></figure>
<div class="proof"><p>Giấy tiếp nhận này được ký số. Bản điện tử (JSON) có mã băm SHA-256
<code id="receipt-sha256">{receipt_sha256}</code>, khóa ký <code>{e(kid)}</code>.</p>
<p>Kiểm tra chữ ký: <code>lienthong verify</code> hoặc {e(verify_url)}</p></div></div>
</body></html>
"""


def status_view(d: Dossier) -> dict[str, Any]:
    """All the public status page shows: nothing that names or identifies the applicant."""
    return {
        "dossier_code": d.code,
        "procedure": d.procedure_name,
        "status": int(d.status),
        "status_label": d.status.label_vi,
        "received_at": iso(d.received_at),
        "due_at": iso(d.due_at),
        "overdue": d.overdue,
        "updated_at": iso(d.updated_at),
        "result_ready": int(d.status) in (9, 10),
    }


def status_page(view: dict[str, Any]) -> str:
    e = escape
    when = {k: local(datetime.fromisoformat(view[k])) for k in ("received_at", "due_at", "updated_at")}
    late = "Quá hạn" if view["overdue"] else "Trong hạn"
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Tình trạng hồ sơ {e(view["dossier_code"])}</title>
<style>{_STYLE}</style></head><body>
<h1>Tình trạng hồ sơ</h1>
<table class="facts">
<tr><th>Mã hồ sơ</th><td id="dossier-code">{e(view["dossier_code"])}</td></tr>
<tr><th>Thủ tục</th><td>{e(view["procedure"])}</td></tr>
<tr><th>Tình trạng</th><td><strong id="status">{e(view["status_label"])}</strong></td></tr>
<tr><th>Ngày tiếp nhận</th><td>{when["received_at"]}</td></tr>
<tr><th>Ngày hẹn trả</th><td>{when["due_at"]} ({late})</td></tr>
<tr><th>Cập nhật lúc</th><td>{when["updated_at"]}</td></tr>
</table>
<p>Trang này chỉ hiển thị tình trạng hồ sơ; thông tin cá nhân không được công khai.</p>
</body></html>
"""
