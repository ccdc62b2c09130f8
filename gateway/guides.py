"""The applicant's guide to a procedure as a printable page (A4, Vietnamese), with a QR code that opens the
same page, and the public view of a catalog entry (no key needed)."""

from __future__ import annotations

from html import escape
from typing import Any

from contracts import DocumentRule, ProcedureSpec
from contracts.guide import GuideDocument, GuideFee, ProcedureGuide
from gateway.qr import qr_svg

KIND_LABEL = {
    "original": "Bản chính",
    "certified_copy": "Bản sao có chứng thực",
    "copy": "Bản sao (xuất trình bản chính để đối chiếu)",
    "original_or_certified_copy": "Bản chính hoặc bản sao có chứng thực",
    "electronic": "Bản điện tử",
}
CHANNEL_LABEL = {
    "in_person": "Trực tiếp tại Trung tâm Phục vụ hành chính công hoặc Bộ phận Một cửa cấp xã",
    "online": "Trực tuyến qua Cổng Dịch vụ công quốc gia",
    "post": "Qua dịch vụ bưu chính công ích",
}
JURISDICTION_LABEL = {
    "any": "Nộp tại bất kỳ Trung tâm Phục vụ hành chính công nào, không phụ thuộc địa giới hành chính",
    "province": "Hồ sơ được chuyển đến cơ quan của tỉnh, thành phố nơi có đối tượng của thủ tục",
}


def guide_path(code: str) -> str:
    return f"/guide/{code}"


def public_view(spec: ProcedureSpec, base_url: str) -> dict[str, Any]:
    """What anyone may read about a procedure: the catalog entry without the gateway's internals."""
    out: dict[str, Any] = spec.model_dump(mode="json", exclude={"portal_databases", "jurisdiction_field"})
    out["guide_url"] = base_url + guide_path(spec.code)
    return out


def vnd(amount: int) -> str:
    """50000 -> '50.000 đồng', as amounts are printed in Vietnam."""
    return f"{amount:,}".replace(",", ".") + " đồng"


def _documents(guide: ProcedureGuide | None, rules: tuple[DocumentRule, ...]) -> tuple[GuideDocument, ...]:
    if guide is not None:
        return guide.documents
    return tuple(GuideDocument(name=r.name or r.component_code, component_code=r.component_code) for r in rules)


def _fee_rows(spec: ProcedureSpec) -> list[GuideFee]:
    if spec.guide is not None and spec.guide.fees:
        return list(spec.guide.fees)
    if spec.fees_vnd:
        return [GuideFee(case="Lệ phí", amount_vnd=spec.fees_vnd)]
    return []


def render_page(spec: ProcedureSpec, url: str) -> str:
    """The printable guide; `url` is this page's own address, which the QR code carries."""
    g = spec.guide
    e = escape
    docs = "".join(
        f"<tr><td>{i}</td><td>{e(d.name)}{f'<div class=note>{e(d.note)}</div>' if d.note else ''}</td>"
        f"<td class=n>{d.copies}</td><td>{e(KIND_LABEL[d.kind])}{'' if d.required else ' (nếu có)'}</td></tr>"
        for i, d in enumerate(_documents(g, spec.documents), 1)
    )
    fees = _fee_rows(spec)
    fee_html = (
        "<table><thead><tr><th>Trường hợp</th><th>Mức thu</th></tr></thead><tbody>"
        + "".join(
            f"<tr><td>{e(f.case)}{f'<div class=note>{e(f.note)}</div>' if f.note else ''}</td>"
            f"<td class=n>{e(vnd(f.amount_vnd) if f.amount_vnd is not None else f.rate)}</td></tr>"
            for f in fees
        )
        + "</tbody></table>"
        if fees
        else "<p>Không thu phí, lệ phí.</p>"
    )
    days = f"{spec.processing_days} ngày làm việc kể từ ngày nhận đủ hồ sơ hợp lệ"
    if g is not None and g.processing:
        days += f" ({e(g.processing)})"
    rows = [
        ("Mã thủ tục", e(spec.code)),
        ("Lĩnh vực", e(spec.sector)),
        ("Cơ quan giải quyết", e(g.agency) if g else e(spec.agency_kind)),
        ("Nơi giải quyết", e(g.where) if g else e(JURISDICTION_LABEL[spec.jurisdiction])),
        ("Thời hạn giải quyết", days),
    ]
    if g is not None and g.applicants:
        rows.insert(2, ("Đối tượng thực hiện", e(g.applicants)))
    if g is not None and g.result:
        rows.append(("Kết quả", e(g.result)))
    facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    channels = "".join(f"<li>{e(CHANNEL_LABEL[c])}</li>" for c in (g.channels if g else ("in_person",)))
    basis = "".join(f"<li>{e(b)}</li>" for b in g.legal_basis) if g else ""
    notes = "".join(f"<li>{e(n)}</li>" for n in g.notes) if g else ""
    summary = f"<p class=summary>{e(g.summary)}</p>" if g and g.summary else ""
    qr = qr_svg(url, scale=3, title=f"Mã QR: {url}")
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hướng dẫn thủ tục {e(spec.code)}: {e(spec.name)}</title>
<style>
@page {{ size: A4; margin: 15mm; }}
body {{ font-family: "Noto Serif", "Times New Roman", serif; font-size: 12pt; color: #000; max-width: 180mm;
  margin: 0 auto; padding: 8mm 0; line-height: 1.35; }}
header {{ display: flex; justify-content: space-between; align-items: flex-start; gap: 8mm;
  border-bottom: 2px solid #000; padding-bottom: 4mm; }}
h1 {{ font-size: 16pt; margin: 0 0 2mm; }} h2 {{ font-size: 13pt; margin: 6mm 0 2mm; }}
.kicker {{ text-transform: uppercase; font-size: 10pt; letter-spacing: .05em; margin: 0 0 2mm; }}
figure {{ margin: 0; text-align: center; font-size: 8pt; width: 45mm; }}
figure svg {{ width: 40mm; height: 40mm; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #555; padding: 1.5mm 2mm;
  vertical-align: top; text-align: left; }} th {{ background: #eee; }} .facts th {{ width: 45mm; }}
.n {{ text-align: right; white-space: nowrap; }} .note {{ font-size: 10pt; color: #333; }}
.url {{ word-break: break-all; }} footer {{ margin-top: 6mm; font-size: 9pt; color: #333; }}
@media print {{ body {{ padding: 0; }} tr {{ break-inside: avoid; }} }}
</style></head>
<body>
<header><div><p class="kicker">Hướng dẫn thực hiện thủ tục hành chính</p>
<h1 id="procedure-name">{e(spec.name)}</h1>{summary}</div>
<figure id="qr">{qr}<figcaption>Quét mã để mở hướng dẫn này trên điện thoại<br>
<span class="url">{e(url)}</span></figcaption></figure></header>
<table class="facts">{facts}</table>
<h2>Thành phần hồ sơ</h2>
<table id="documents"><thead><tr><th>#</th><th>Giấy tờ</th><th>Số lượng</th><th>Loại bản</th></tr></thead>
<tbody>{docs}</tbody></table>
<h2>Phí, lệ phí</h2>
<div id="fees">{fee_html}</div>
<h2>Cách thức thực hiện</h2>
<ul id="channels">{channels}</ul>
{f'<h2>Căn cứ pháp lý</h2><ul id="legal-basis">{basis}</ul>' if basis else ""}
{f"<h2>Lưu ý</h2><ul>{notes}</ul>" if notes else ""}
<footer>Thông tin từ danh mục thủ tục của Trung tâm; bản mới nhất tại địa chỉ trên mã QR.</footer>
</body></html>
"""


def render_index(found: list[ProcedureSpec], agencies: list[tuple[str, str]], q: str, agency: str) -> str:
    """The list of guides an applicant searches (by keyword, by agency), each linking its printable page."""
    e = escape
    options = "".join(
        f'<option value="{e(kind)}"{" selected" if kind == agency else ""}>{e(label)}</option>'
        for kind, label in agencies
    )
    items = "".join(
        f'<li><a href="{e(guide_path(p.code))}">{e(p.name)}</a> <span class="code">{e(p.code)}</span>'
        f'<div class="note">{e(p.guide.agency if p.guide else p.sector)} · {p.processing_days} ngày làm việc</div></li>'
        for p in found
    )
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hướng dẫn thủ tục hành chính</title>
<style>
body {{ font-family: "Noto Serif", "Times New Roman", serif; max-width: 180mm; margin: 0 auto; padding: 6mm; }}
form {{ display: flex; gap: 2mm; flex-wrap: wrap; margin-bottom: 4mm; }} input, select, button {{ font: inherit; }}
li {{ margin: 0 0 3mm; }} .code, .note {{ font-size: 10pt; color: #333; }}
</style></head><body>
<h1>Hướng dẫn thủ tục hành chính</h1>
<form method="get" action="/guide">
<input id="q" name="q" value="{e(q)}" placeholder="Tìm thủ tục (có dấu hoặc không dấu)">
<select id="agency" name="agency"><option value="">Mọi cơ quan</option>{options}</select>
<button id="search" type="submit">Tìm</button></form>
<p id="count">{len(found)} thủ tục</p>
<ol id="results">{items}</ol>
</body></html>
"""
