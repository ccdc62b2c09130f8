"""Building blocks of realistic submissions (JSON, as a centre sends them) for demos, benchmarks and tests.

Documents are real files of their type, made here without any library: a one-page PDF with its text
(and, for a scanned paper, a grey scanned image the size of one), a greyscale PNG photo or scan, an
e-tax declaration in XML. The same arguments always make the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
import unicodedata
import zlib
from collections.abc import Sequence
from datetime import date
from typing import Any


def ascii_text(text: str) -> str:
    """Vietnamese without its diacritics, for the PDF's standard font: 'Tờ khai' -> 'To khai'."""
    norm = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in norm if unicodedata.category(c) != "Mn").encode("ascii", "replace").decode()


def _texture(width: int, height: int, seed: int) -> bytes:
    """Greyscale pixels of a scanned page: paper white with the grain and ink of a scanner."""
    raw = random.Random(seed).randbytes(width * height)
    table = bytes(255 - (b % 24) if b < 216 else 40 + (b - 216) * 3 for b in range(256))
    return raw.translate(table)


def pdf_bytes(title: str, lines: Sequence[str] = (), *, scan: tuple[int, int] | None = None, seed: int = 0) -> bytes:
    """A well-formed one-page A4 PDF: the title and lines in Helvetica, and with `scan` = (width, height)
    a scanned greyscale image of that many pixels (what makes a scanned paper weigh what it does)."""
    text = [f"BT /F1 14 Tf 56 790 Td ({_pdf_string(title)}) Tj ET"]
    for i, line in enumerate(lines):
        text.append(f"BT /F1 10 Tf 56 {760 - 16 * i} Td ({_pdf_string(line)}) Tj ET")
    resources = "/Font << /F1 4 0 R >>"
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"",  # the page, once the resources are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    if scan is not None:
        width, height = scan
        resources += " /XObject << /Im1 6 0 R >>"
        shown = 480 * height // width  # points: the image 480 wide, under the text
        text.append(f"q 480 0 0 {shown} 56 {700 - 16 * len(lines) - shown} cm /Im1 Do Q")
        image = zlib.compress(_texture(width, height, seed), 6)
        image_obj = (
            (
                f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceGray "
                f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(image)} >>\nstream\n"
            ).encode()
            + image
            + b"\nendstream"
        )
    content = "\n".join(text).encode("latin-1")
    objects[2] = (
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << {resources} >> /Contents 5 0 R >>"
    ).encode()
    objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    if scan is not None:
        objects.append(image_obj)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _pdf_string(text: str) -> str:
    return ascii_text(text).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A greyscale PNG photo or scan of `width` x `height` pixels."""
    pixels = _texture(width, height, seed)
    rows = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def tax_declaration_xml(form: str, title: str, taxpayer: str, personal_id: str, items: dict[str, object]) -> bytes:
    """An e-tax declaration (HSoThueDTu) as the tax authority's forms export it: form code, title, taxpayer,
    and the declared items."""
    body = "".join(f"<{k}>{v}</{k}>" for k, v in items.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<HSoThueDTu xmlns="http://kekhaithue.gdt.gov.vn/TKhaiThue"><HSoKhaiThue><TTinChung>'
        "<TTinDVu><maDVu>ETAX</maDVu><tenDVu>ETAX 1.0</tenDVu></TTinDVu>"
        f"<TTinTKhaiThue><TKhaiThue><maTKhai>{form}</maTKhai><tenTKhai>{title}</tenTKhai>"
        "<moTaBMau>(Ban hành kèm theo Thông tư số 80/2021/TT-BTC)</moTaBMau></TKhaiThue>"
        f"<NNT><mst>{personal_id}</mst><tenNNT>{taxpayer}</tenNNT></NNT></TTinTKhaiThue></TTinChung>"
        f"<CTieuTKhaiChinh>{body}</CTieuTKhaiChinh></HSoKhaiThue></HSoThueDTu>\n"
    ).encode()


def attachment(code: str, name: str, raw: bytes, media_type: str) -> dict[str, Any]:
    """A document sent inline: component code, media type, size, sha256 and content agree."""
    return {
        "component_code": code,
        "name": name,
        "media_type": media_type,
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "content_base64": base64.b64encode(raw).decode(),
    }


def pdf_attachment(code: str, name: str, text: str, *, scan: tuple[int, int] | None = None) -> dict[str, Any]:
    """A filled-in form as a PDF (about a kilobyte), or with `scan` a scanned paper of that many pixels."""
    lines = [text, "Ho so nop tai Trung tam phuc vu hanh chinh cong", "Nguoi khai ky, ghi ro ho ten"]
    seed = int(hashlib.sha256(f"{code}{name}{text}".encode()).hexdigest()[:8], 16)
    return attachment(code, name, pdf_bytes(name, lines, scan=scan, seed=seed), "application/pdf")


def png_attachment(code: str, name: str, width: int, height: int, seed: int) -> dict[str, Any]:
    """A photo or a scan as a PNG."""
    return attachment(code, name, png_bytes(width, height, seed), "image/png")


def person_applicant(
    full_name: str, personal_id: str, date_of_birth: date, gender: str, rng: random.Random
) -> dict[str, Any]:
    """A citizen applying in person or online, identified at VNeID level 2."""
    return {
        "kind": "person",
        "full_name": full_name,
        "personal_id": personal_id,
        "date_of_birth": date_of_birth.isoformat(),
        "gender": gender,
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "vneid_level": 2,
    }
