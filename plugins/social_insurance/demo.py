"""Realistic BHXH claims for the demo and the benchmark: cards for young children, funeral allowances."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from contracts.calendar import VN_TZ
from contracts.samples import pdf_attachment, person_applicant, png_attachment
from gateway.sdk import RunningSimulator, SimulatorBinding
from plugins.police.population import Citizen, population
from plugins.social_insurance.forms import CHILD_HEALTH_CARD, FUNERAL_ALLOWANCE
from plugins.social_insurance.simulator import CLIENT_ID

BANKS = ["970436", "970415", "970418", "970405"]  # Vietcombank, VietinBank, BIDV, Agribank


def child_personal_id(rng: random.Random, province: str, born: date, gender: str) -> str:
    digit4 = (born.year // 100 - 19) * 2 + (1 if gender == "female" else 0)
    return f"0{province}{digit4}{born.year % 100:02d}{rng.randint(0, 999_999):06d}"


def _applicant(c: Citizen, rng: random.Random) -> dict[str, Any]:
    return person_applicant(c.full_name, c.personal_id, c.date_of_birth, c.gender, rng)


def _child_card(parent: Citizen, rng: random.Random, today: date) -> dict[str, Any]:
    born = today - timedelta(days=rng.randint(20, 5 * 365))
    gender = rng.choice(["male", "female"])
    name = parent.full_name.split()[0] + (" Minh " if gender == "male" else " Ngọc ") + rng.choice(["An", "Khôi", "Vy"])
    return {
        "procedure_code": CHILD_HEALTH_CARD,
        "summary": f"Cấp thẻ BHYT cho trẻ em dưới 6 tuổi: {name}",
        "form": {
            "child": {
                "full_name": name,
                "date_of_birth": born.isoformat(),
                "gender": gender,
                "personal_id": child_personal_id(rng, parent.province, born, gender),
            },
            "residence": {"province": parent.province, "commune": parent.commune, "line": f"Số {rng.randint(1, 200)}"},
        },
        "attachments": [pdf_attachment("TK1-TS", "Tờ khai tham gia, điều chỉnh thông tin BHXH, BHYT", name)],
    }


def _funeral(relative: Citizen, deceased: Citizen, rng: random.Random, today: date) -> dict[str, Any]:
    return {
        "procedure_code": FUNERAL_ALLOWANCE,
        "summary": f"Giải quyết trợ cấp mai táng cho thân nhân của {deceased.full_name}",
        "form": {
            "deceased_personal_id": deceased.personal_id,
            "deceased_full_name": deceased.full_name,
            "date_of_death": (today - timedelta(days=rng.randint(3, 60))).isoformat(),
            "death_certificate_number": f"{rng.randint(1, 400)}/TLKT",
            "beneficiary": {
                "full_name": relative.full_name,
                "personal_id": relative.personal_id,
                "relationship": "con",
            },
            "bank_account": {
                "bank_code": rng.choice(BANKS),
                "account_number": f"{rng.randint(10**9, 10**12 - 1)}",
                "account_holder": relative.full_name,
            },
        },
        "attachments": [
            pdf_attachment("09-HSB", "Tờ khai của thân nhân (mẫu 09-HSB)", deceased.full_name),
            # The death extract, photographed by the relative and sent online.
            png_attachment("TLKT", "Trích lục khai tử (bản sao)", 480, 640, seed=rng.randint(0, 2**31)),
        ],
    }


def demo_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = population(7)
    adults = [c for c in people if c.date_of_birth.year <= 1995]
    today = datetime.now(VN_TZ).date()
    out = []
    for i in range(count):
        c = adults[i % len(adults)]
        if rng.random() < 0.7:
            body = _child_card(c, rng, today)
        else:
            body = _funeral(c, adults[(i + 17) % len(adults)], rng, today)
        out.append(
            {
                **body,
                "channel": rng.choice([1, 2]),
                "applicant": _applicant(c, rng),
                "jurisdiction": {"province": c.province, "commune": c.commune},
            }
        )
    return out


def number_example() -> dict[str, Any]:
    """A look-up of a citizen the simulator's register holds."""
    c = population(7)[0]
    return {"personal_id": c.personal_id, "full_name": c.full_name}


def bind_endpoint(sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """OAuth2 client credentials the simulator issues tokens for; its webhooks signed with the same secret."""
    bound = {**configured, "url": sim.url, "client_id": CLIENT_ID, "client_secret": sim.secret}
    bound.pop("callback_secret", None)
    return bound


# Tokens live 30 s in a sandbox run, so a demo sees them renewed.
BINDING = SimulatorBinding(settings=lambda workdir: {"token_ttl": 30}, endpoint=bind_endpoint)
