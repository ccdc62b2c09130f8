"""Realistic residence registrations for the demo and the benchmark, from the synthetic population."""

from __future__ import annotations

import base64
import hashlib
import random
from typing import Any

from plugins.police.population import population


def pdf_attachment(code: str, name: str, text: str) -> dict[str, Any]:
    raw = f"%PDF-1.4\n% {text}\n".encode()
    return {
        "component_code": code,
        "name": name,
        "media_type": "application/pdf",
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "content_base64": base64.b64encode(raw).decode(),
    }


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
                "applicant": {
                    "kind": "person",
                    "full_name": c.full_name,
                    "personal_id": c.personal_id,
                    "date_of_birth": c.date_of_birth.isoformat(),
                    "gender": c.gender,
                    "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
                    "vneid_level": 2,
                },
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
