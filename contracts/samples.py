"""Building blocks of realistic submissions (JSON, as a centre sends them) for demos, benchmarks and tests."""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import date
from typing import Any


def pdf_attachment(code: str, name: str, text: str) -> dict[str, Any]:
    """A small inline PDF as an attachment: component code, media type, size, sha256 and content agree."""
    raw = f"%PDF-1.4\n% {text}\n".encode()
    return {
        "component_code": code,
        "name": name,
        "media_type": "application/pdf",
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "content_base64": base64.b64encode(raw).decode(),
    }


def person_applicant(
    full_name: str, personal_id: str, date_of_birth: date, gender: str, rng: random.Random
) -> dict[str, Any]:
    """A citizen applying in person or online, identified at VNeID level 2."""
    return {
        "kind": "person",
        "full_name": full_name,
        "personal_id": personal_id,
        "date_of_birth": date_of_birth.isoformat(),
        "gender": gender,
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
        "vneid_level": 2,
    }
