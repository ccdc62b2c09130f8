"""Realistic civil status registrations for the demo and the benchmark: births and deaths."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from contracts.calendar import VN_TZ
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.police.demo import pdf_attachment
from plugins.police.population import Citizen, population

GIVEN = {"male": ["Minh Khôi", "Gia Bảo", "Đức Anh", "Hoàng Nam"], "female": ["Ngọc Anh", "Bảo Châu", "Khánh Vy"]}


def _applicant(c: Citizen, rng: random.Random) -> dict[str, Any]:
    return {
        "kind": "person",
        "full_name": c.full_name,
        "personal_id": c.personal_id,
        "date_of_birth": c.date_of_birth.isoformat(),
        "gender": c.gender,
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "vneid_level": 2,
    }


def _parent(c: Citizen) -> dict[str, Any]:
    return {"full_name": c.full_name, "personal_id": c.personal_id, "date_of_birth": c.date_of_birth.isoformat()}


def _place(c: Citizen, rng: random.Random, what: str) -> dict[str, str]:
    return {"province": c.province, "commune": c.commune, "line": f"{what} số {rng.randint(1, 9)}"}


def _birth(mother: Citizen, father: Citizen, rng: random.Random, today: date) -> dict[str, Any]:
    gender = rng.choice(["male", "female"])
    name = f"{father.full_name.split()[0]} {rng.choice(GIVEN[gender])}"
    born = today - timedelta(days=rng.randint(1, 55))  # registered within the 60 days the law allows
    return {
        "procedure_code": BIRTH_REGISTRATION,
        "summary": f"Đăng ký khai sinh cho trẻ {name}",
        "jurisdiction": {"province": mother.province, "commune": mother.commune},
        "form": {
            "child": {
                "full_name": name,
                "gender": gender,
                "date_of_birth": born.isoformat(),
                "place_of_birth": _place(mother, rng, "Bệnh viện đa khoa"),
            },
            "mother": _parent(mother),
            "father": _parent(father),
            "relationship": "mother",
        },
        "attachments": [
            pdf_attachment("TK-KS", "Tờ khai đăng ký khai sinh", name),
            pdf_attachment("GCS", "Giấy chứng sinh", name),
        ],
    }


def _death(relative: Citizen, deceased: Citizen, rng: random.Random, today: date) -> dict[str, Any]:
    died = today - timedelta(days=rng.randint(1, 14))
    return {
        "procedure_code": DEATH_REGISTRATION,
        "summary": f"Đăng ký khai tử cho ông/bà {deceased.full_name}",
        "jurisdiction": {"province": deceased.province, "commune": deceased.commune},
        "form": {
            "deceased": {
                "full_name": deceased.full_name,
                "personal_id": deceased.personal_id,
                "date_of_birth": deceased.date_of_birth.isoformat(),
                "gender": deceased.gender,
                "date_of_death": died.isoformat(),
                "place_of_death": _place(deceased, rng, "Nhà riêng"),
            },
            "death_notice": {
                "number": f"{rng.randint(1, 900)}/GBT",
                "issued_by": "Trạm y tế xã",
                "issued_on": (died + timedelta(days=1)).isoformat(),
            },
            "relationship": "con",
        },
        "attachments": [
            pdf_attachment("TK-KT", "Tờ khai đăng ký khai tử", deceased.full_name),
            pdf_attachment("GBT", "Giấy báo tử", deceased.full_name),
        ],
    }


def demo_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = population(7)
    women = [c for c in people if c.gender == "female" and 1980 <= c.date_of_birth.year <= 2004]
    men = [c for c in people if c.gender == "male" and 1975 <= c.date_of_birth.year <= 2004]
    elders = [c for c in people if c.date_of_birth.year < 1965]
    today = datetime.now(VN_TZ).date()
    out = []
    for i in range(count):
        if rng.random() < 0.6:
            applicant = women[i % len(women)]
            body = _birth(applicant, men[i % len(men)], rng, today)
        else:
            applicant = people[i % len(people)]
            body = _death(applicant, elders[i % len(elders)], rng, today)
        out.append({**body, "channel": rng.choice([1, 2]), "applicant": _applicant(applicant, rng)})
    return out
