"""A deterministic synthetic taxpayer register: the simulator's records and the demo's people.

Individuals are keyed by their 12-digit personal id, which is also their tax code since July 2025;
organisations have 10-digit tax codes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from contracts.admin_units import communes, provinces

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"]
MIDDLE = {"male": ["Văn", "Hữu", "Đức", "Quang", "Minh"], "female": ["Thị", "Ngọc", "Thu", "Kim", "Bích"]}
GIVEN = {
    "male": ["Bảo", "Cường", "Duy", "Hải", "Hiếu", "Khánh", "Lâm", "Nghĩa", "Quân", "Thắng", "Trung", "Vinh"],
    "female": ["Diệp", "Giang", "Hạnh", "Hoa", "Huyền", "Loan", "My", "Nhung", "Quyên", "Trang", "Uyên", "Vân"],
}
BUSINESSES = ["Bất động sản", "Đầu tư xây dựng", "Thương mại dịch vụ", "Địa ốc", "Phát triển nhà"]
# Provinces of the demo centres and a few others; their codes are also birth-registration codes.
PROVINCES = ["01", "79", "48", "31", "92", "46"]


@dataclass(frozen=True, slots=True)
class Person:
    personal_id: str
    full_name: str
    date_of_birth: date
    gender: str
    province: str
    commune: str


@dataclass(frozen=True, slots=True)
class Taxpayer:
    tax_code: str
    name: str
    kind: str  # INDIVIDUAL | ORGANISATION
    province: str
    personal_id: str | None = None
    status: str = "ACTIVE"  # ACTIVE | SUSPENDED | CLOSED
    address: str | None = None


def _person(rng: random.Random) -> Person:
    gender = rng.choice(["male", "female"])
    dob = date(rng.randint(1945, 2004), rng.randint(1, 12), rng.randint(1, 28))
    province = rng.choice(PROVINCES)
    digit4 = (0 if dob.year < 2000 else 2) + (1 if gender == "female" else 0)
    pid = f"0{province}{digit4}{dob.year % 100:02d}{rng.randint(0, 999_999):06d}"
    name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"
    commune = rng.choice([c for c in communes().values() if c.province_code == province]).code
    return Person(pid, name, dob, gender, province, commune)


def people(seed: int = 7, size: int = 300) -> list[Person]:
    rng = random.Random(seed)
    return [_person(rng) for _ in range(size)]


def office_name(province: str) -> str:
    unit = provinces().get(province)
    return f"Thuế {unit.name if unit else 'tỉnh ' + province}"


def taxpayers(seed: int = 7) -> list[Taxpayer]:
    """Every person of `people(seed)`, one in forty suspended, and forty organisations."""
    rng = random.Random(seed * 31 + 1)
    out = [
        Taxpayer(
            tax_code=p.personal_id,
            personal_id=p.personal_id,
            name=p.full_name,
            kind="INDIVIDUAL",
            province=p.province,
            status="SUSPENDED" if i % 40 == 39 else "ACTIVE",
            address=f"{communes()[p.commune].name}, {provinces()[p.province].name}",
        )
        for i, p in enumerate(people(seed))
    ]
    for i in range(40):
        province = rng.choice(PROVINCES)
        out.append(
            Taxpayer(
                tax_code=f"0{rng.randint(100_000_000, 999_999_999)}",
                name=f"Công ty TNHH {rng.choice(BUSINESSES)} {rng.choice(GIVEN['male'])} {i + 1}",
                kind="ORGANISATION",
                province=province,
                status="CLOSED" if i % 10 == 9 else "ACTIVE",
                address=f"Số {rng.randint(1, 400)}, {provinces()[province].name}",
            )
        )
    return out
