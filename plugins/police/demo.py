"""Realistic residence registrations for the demo and the benchmark, from the synthetic population."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from contracts.samples import pdf_attachment, person_applicant
from gateway.sdk import RunningSimulator, SimulatorBinding
from plugins.police.population import population
from plugins.police.simulator import KEY_ID


def demo_dossiers(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = population(7)
    out = []
    for i in range(count):
        c = people[i % len(people)]
        out.append(
            {
                "procedure_code": rng.choice(["1.004194", "1.004194", "1.004203"]),
                "channel": rng.choice([1, 2]),
                "applicant": person_applicant(c.full_name, c.personal_id, c.date_of_birth, c.gender, rng),
                "jurisdiction": {"province": c.province, "commune": c.commune},
                "summary": f"Đăng ký cư trú cho công dân {c.full_name}",
                "form": {
                    "new_address": {
                        "province": c.province,
                        "commune": c.commune,
                        "line": f"Số {rng.randint(1, 300)}, ngõ {rng.randint(1, 90)}",
                    },
                    "legal_basis": rng.choice(["own_house", "relative_house", "rented_house"]),
                },
                "attachments": [pdf_attachment("TK01", "Tờ khai thay đổi thông tin cư trú (CT01)", c.full_name)],
            }
        )
    return out


def identity_example() -> dict[str, Any]:
    """An identity check of a citizen the simulator's population holds."""
    person = demo_dossiers(1, 1)[0]["applicant"]
    return {k: person[k] for k in ("personal_id", "full_name", "date_of_birth")}


def bind_endpoint(sim: RunningSimulator, endpoint: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """The signed REST service at the simulator, with the key id it knows the gateway by."""
    return {**configured, "url": sim.url, "secret": sim.secret, "key_id": KEY_ID}


BINDING = SimulatorBinding(endpoint=bind_endpoint)
