"""A deterministic synthetic population: the simulator's register and the demo's applicants."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from contracts.admin_units import communes

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quốc"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Mai"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Hùng", "Khoa", "Long", "Nam", "Phúc", "Sơn", "Tuấn", "Việt"]
GIVEN_F = ["Anh", "Chi", "Hà", "Hương", "Lan", "Linh", "Mai", "Ngân", "Oanh", "Phương", "Thảo", "Yến"]
# 2025 province code -> a birth-registration code of the pre-2025 table with the same number.
PROVINCES = ["01", "79", "48", "31", "92", "46", "56", "22", "38", "96"]


@dataclass(frozen=True, slots=True)
class Citizen:
    personal_id: str
    full_name: str
    date_of_birth: date
    gender: str
    province: str
    commune: str


def citizen(rng: random.Random) -> Citizen:
    gender = rng.choice(["male", "female"])
    dob = date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
    province = rng.choice(PROVINCES)
    century = 0 if dob.year < 2000 else 2
    digit4 = century + (1 if gender == "female" else 0)
    pid = f"0{province}{digit4}{dob.year % 100:02d}{rng.randint(0, 999_999):06d}"
    if gender == "male":
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE_M)} {rng.choice(GIVEN_M)}"
    else:
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE_F)} {rng.choice(GIVEN_F)}"
    in_province = [c for c in communes().values() if c.province_code == province]
    commune = rng.choice(in_province).code
    return Citizen(pid, name, dob, gender, province, commune)


def population(seed: int = 7, size: int = 500) -> list[Citizen]:
    rng = random.Random(seed)
    return [citizen(rng) for _ in range(size)]
