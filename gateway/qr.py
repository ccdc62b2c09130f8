"""QR codes for printed pages (guides, receipts): an inline SVG made by segno, nothing to fetch."""

from __future__ import annotations

from functools import lru_cache

import segno


@lru_cache(maxsize=4096)  # a page per procedure or dossier, asked for again and again: encode each URL once
def qr_svg(url: str, *, scale: int = 4, title: str = "") -> str:
    """An inline <svg> encoding `url`, sized by its CSS (a viewBox; error correction M survives a smudge)."""
    code = segno.make(url, error="m", micro=False)
    svg: str = code.svg_inline(scale=scale, border=4, title=title or None, dark="#000", light="#fff", omitsize=True)
    return svg
