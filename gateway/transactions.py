"""What the transaction browser keeps of a delivery attempt: its timing, and (with `[dispatcher]
capture_bodies`) what was sent and answered, masked: personal ids keep their first 3 and last 2 digits,
names, birth dates, addresses, phones and e-mails are replaced, document contents are left out."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from contracts import Dossier
from contracts.identifiers import mask_personal_id
from gateway.connector import Delivery, SubmitReceipt
from gateway.logging import PERSONAL_FIELDS
from gateway.store.attempts import AttemptInfo

# Fields whose whole value is personal (the applicant's, a representative's).
HIDDEN = frozenset({"full_name", "date_of_birth", "line", "phone", "email", "name_of_applicant"})
LEFT_OUT = frozenset({"content_base64"})  # bytes of documents: their digest and size stay
MAX_BODY = 64 * 1024
# 9 or 12 digits standing alone: personal ids in free text, as the logs find them.
_ID_IN_TEXT = re.compile(r"(?<!\d)(\d{12}|\d{9})(?!\d)")


def mask(value: Any, key: str = "", names: frozenset[str] = frozenset()) -> Any:
    """`value` with personal data masked; `names` (the applicant's) are masked wherever text quotes them."""
    if key in LEFT_OUT:
        return "(left out)"
    if isinstance(value, dict):
        return {k: mask(v, str(k), names) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key, names) for v in value]
    if isinstance(value, str):
        if key in PERSONAL_FIELDS:
            return mask_personal_id(value)
        if key in HIDDEN:
            return "***"
        for name in names:
            value = value.replace(name, "***")
        return _mask_ids(value)
    return value


def _names(value: Any) -> set[str]:
    """The personal names a submission holds (an applicant's, a representative's), to find them in text."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "full_name" and isinstance(v, str) and len(v) >= 3:
                found.add(v)
            else:
                found |= _names(v)
    elif isinstance(value, list):
        for v in value:
            found |= _names(v)
    return found


def _mask_ids(text: str) -> str:
    return _ID_IN_TEXT.sub(lambda m: mask_personal_id(m.group(1)), text) if len(text) >= 9 else text


def _body(value: Any, names: frozenset[str] = frozenset()) -> str:
    text = orjson.dumps(mask(value, names=names)).decode()
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "…(cut)"


def request_body(dossier: Dossier, delivery: Delivery) -> str:
    sent = {
        "step": delivery.step,
        "idempotency_key": delivery.idempotency_key,
        "attempt": delivery.attempt,
        "inputs": delivery.inputs,
        "dossier": dossier.model_dump(mode="json", exclude={"delivery"}),
    }
    return _body(sent, frozenset(_names(sent["dossier"])))


def answer_body(outcome: SubmitReceipt | BaseException) -> str:
    if isinstance(outcome, BaseException):
        return _body({"error": type(outcome).__name__, "detail": str(outcome)})
    return _body(outcome.model_dump(mode="json"))


class Stopwatch:
    """An attempt's start (wall clock) and duration (monotonic)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self.request: str | None = None

    def info(self, answer: str | None = None) -> AttemptInfo:
        return AttemptInfo(self.started_at, (time.perf_counter() - self._t0) * 1000, self.request, answer)
