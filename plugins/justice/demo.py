"""Realistic civil status registrations for the demo and the benchmark: births and deaths."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from contracts.calendar import VN_TZ
from contracts.samples import pdf_attachment, person_applicant, png_attachment
from gateway.sdk import RunningSimulator, SimulatorBinding
from plugins.justice.forms import BIRTH_REGISTRATION, DEATH_REGISTRATION
from plugins.justice.simulator import KEY_ID
from plugins.police.population import Citizen, population

GIVEN = {"male": ["Minh Khôi", "Gia Bảo", "Đức Anh", "Hoàng Nam"], "female": ["Ngọc Anh", "Bảo Châu", "Khánh Vy"]}


def _applicant(c: Citizen, rng: random.Random) -> dict[str, Any]:
    return person_applicant(c.full_name, c.personal_id, c.date_of_birth, c.gender, rng)


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
            # The hospital's birth certificate, scanned at the counter.
            pdf_attachment("GCS", "Giấy chứng sinh", f"{name}, sinh ngày {born:%d/%m/%Y}", scan=(360, 480)),
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
            png_attachment("GBT", "Giấy báo tử", 420, 560, seed=rng.randint(0, 2**31)),  # photographed at the counter
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


def birth_bundle(birth: dict[str, Any], home_line: str = "Số 12, ngõ 4") -> dict[str, Any]:
    """A birth registration as the `birth-residence-health-card` bundle: the child's personal id comes
    from the birth step, so the residence and health-card forms name the child without it."""
    child = birth["form"]["child"]
    newborn = {k: child[k] for k in ("full_name", "date_of_birth", "gender")}
    home = {**child["place_of_birth"], "line": home_line}
    return {
        "bundle": "birth-residence-health-card",
        "applicant": birth["applicant"],
        "jurisdiction": birth["jurisdiction"],
        "summary": f"Liên thông khai sinh, thường trú, BHYT cho trẻ {child['full_name']}",
        "forms": {
            "birth": birth["form"],
            "residence": {
                "registrant": newborn,
                "new_address": home,
                "legal_basis": "relative_house",
                "household_head_id": birth["form"]["mother"]["personal_id"],
                "relationship_to_head": "con",
            },
            "health_card": {"child": newborn, "residence": home},
        },
        "attachments": {
            "birth": birth["attachments"],
            "residence": [pdf_attachment("TK01", "Tờ khai thay đổi thông tin cư trú (CT01)", child["full_name"])],
        },
    }


def death_bundle(
    death: dict[str, Any], steps: list[str] | None = None, account_number: str = "0011004455667"
) -> dict[str, Any]:
    """A death registration as the `death-residence-funeral` bundle: the removal of the deceased's permanent
    residence and the funeral allowance for the relative who declares it; or only the chosen `steps`."""
    applicant, deceased = death["applicant"], death["form"]["deceased"]
    forms = {
        "death": death["form"],
        "residence_removal": {
            "person": {k: deceased[k] for k in ("full_name", "date_of_birth", "gender", "personal_id")},
            "reason": "deceased",
            "date_of_death": deceased["date_of_death"],
        },
        "funeral": {
            "deceased_personal_id": deceased["personal_id"],
            "deceased_full_name": deceased["full_name"],
            "date_of_death": deceased["date_of_death"],
            "beneficiary": {
                "full_name": applicant["full_name"],
                "personal_id": applicant["personal_id"],
                "relationship": "con",
            },
            "bank_account": {
                "bank_code": "970436",
                "account_number": account_number,
                "account_holder": applicant["full_name"],
            },
        },
    }
    body: dict[str, Any] = {
        "bundle": "death-residence-funeral",
        "applicant": applicant,
        "jurisdiction": death["jurisdiction"],
        "summary": f"Liên thông khai tử, xóa đăng ký thường trú, trợ cấp mai táng: {deceased['full_name']}",
        "forms": forms if steps is None else {k: v for k, v in forms.items() if k in steps},
        "attachments": {"death": death["attachments"]},
    }
    if steps is not None:
        body["steps"] = steps
    return body


def demo_bundles(seed: int, count: int) -> list[dict[str, Any]]:
    """Birth and death bundles (POST /v1/bundles); every other death leaves the residence step out."""
    singles = demo_dossiers(seed, 4 * count + 8)
    births = [d for d in singles if d["procedure_code"] == BIRTH_REGISTRATION]
    deaths = [d for d in singles if d["procedure_code"] == DEATH_REGISTRATION]
    out = []
    for i in range(count):
        if i % 3 == 1 and deaths:
            steps = None if i % 2 else ["death", "funeral"]
            out.append(death_bundle(deaths.pop(0), steps, account_number=f"00110044{i:05d}"))
        else:
            out.append(birth_bundle(births.pop(0), home_line=f"Số {12 + i}, ngõ 4"))
    return out


def bind_endpoint(sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """The civil-status service at the simulator, with the key id it knows the gateway by."""
    return {**configured, "url": sim.url, "secret": sim.secret, "key_id": KEY_ID}


BINDING = SimulatorBinding(endpoint=bind_endpoint)
