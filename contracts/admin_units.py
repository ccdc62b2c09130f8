"""Administrative units of 2025 (34 provinces, 3,321 communes) from the `vietnam-provinces` data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province, Ward

_PROVINCE_RE = re.compile(r"^\d{2}$")
COMMUNE_RE = re.compile(r"^\d{5}$")


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    province_code: str


@cache
def provinces() -> dict[str, Unit]:
    out: dict[str, Unit] = {}
    for p in Province.iter_all():
        code = f"{p.code.value:02d}"
        out[code] = Unit(code, p.name, code)
    return out


@cache
def communes() -> dict[str, Unit]:
    out: dict[str, Unit] = {}
    for w in Ward.iter_all():
        code = f"{w.code.value:05d}"
        out[code] = Unit(code, w.name, f"{w.province_code.value:02d}")
    return out


def check_province(code: str) -> str:
    if not _PROVINCE_RE.match(code):
        raise ValueError("a province code has 2 digits, e.g. 01 (Hà Nội) or 79 (TP Hồ Chí Minh)")
    if code not in provinces():
        raise ValueError(f"{code} is not a province code of 2025")
    return code


def check_commune(code: str, province: str | None = None) -> str:
    if not COMMUNE_RE.match(code):
        raise ValueError("a commune code has 5 digits, e.g. 00070 (Phường Hoàn Kiếm)")
    unit = communes().get(code)
    if unit is None:
        raise ValueError(f"{code} is not a commune code of 2025")
    if province is not None and unit.province_code != province:
        raise ValueError(f"commune {code} ({unit.name}) is in province {unit.province_code}, not {province}")
    return code
