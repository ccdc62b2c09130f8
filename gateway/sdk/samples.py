"""Building blocks of realistic demo submissions for plugin authors: applicants with valid personal ids
and small PDF attachments whose size and digest agree (the contract checks both)."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from contracts.samples import pdf_attachment, person_applicant

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ"]
GIVEN = {"male": ["Văn An", "Đức Bình", "Minh Khoa", "Quốc Việt"], "female": ["Thị Lan", "Ngọc Mai", "Thu Hà"]}


def sample_person(rng: random.Random, birth_province: str = "001") -> dict[str, Any]:
    """A citizen (JSON, as a centre sends it) whose 12-digit personal id agrees with birth year and gender."""
    gender = rng.choice(["male", "female"])
    born = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
    century_gender = (0 if born.year < 2000 else 2) + (gender == "female")
    personal_id = f"{birth_province}{century_gender}{born.year % 100:02d}{rng.randint(0, 999_999):06d}"
    name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN[gender])}"
    return person_applicant(name, personal_id, born, gender, rng)


def sample_pdf(component_code: str, name: str, text: str) -> dict[str, Any]:
    """A small inline PDF attachment for `component_code` (the procedure's document code)."""
    return pdf_attachment(component_code, name, text)
