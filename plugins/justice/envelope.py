"""The provincial data-sharing envelope (pure): JSON {status, errorCode, message, data} whose data is XML.

Agencies answer business errors in the envelope, often with HTTP 200, so below HTTP 500 the error code
decides: 100 authentication, 201 not found, 500 invalid data are refusals; any other code is treated as
the agency failing (retried), and so is any HTTP 5xx.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.errors import error_for_status
from gateway.sdk import AgencyError, AgencyRejected, AgencyUnavailable, MalformedAnswer

OK = "0"
REFUSALS = {"100": "authentication refused", "201": "not found", "500": "invalid data"}


def request(request_id: str, service: str, callback_url: str, xml: str) -> dict[str, Any]:
    return {"requestId": request_id, "service": service, "callbackUrl": callback_url, "data": xml}


def reply(code: str, message: str, data: str = "") -> dict[str, Any]:
    return {"status": "success" if code == OK else "error", "errorCode": code, "message": message, "data": data}


def error_for_code(agency: str, code: str, message: str, status: int | None = None) -> AgencyError:
    what = REFUSALS.get(code)
    if what is not None:
        return AgencyRejected(f"{agency}: {what} (error {code}): {message}", agency=agency, status=status, code=code)
    return AgencyUnavailable(f"{agency}: agency error {code}: {message}", agency=agency, status=status, code=code)


def open_answer(status: int, body: bytes, agency: str) -> bytes:
    """The XML inside a successful answer; the mapped AgencyError otherwise."""
    if status >= 500 or status in (408, 429):
        # Transient whatever the envelope says: a code 500 during an outage must not kill the dossier.
        raise error_for_status(agency, status, body[:200].decode("utf-8", "replace"))
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict) or "errorCode" not in envelope:
        if not 200 <= status < 300:
            raise error_for_status(agency, status, body[:200].decode("utf-8", "replace"))
        raise MalformedAnswer(f"{agency}: answer is not a data-sharing envelope: {body[:80]!r}", agency=agency)
    code = str(envelope["errorCode"]).strip()
    if code != OK:
        raise error_for_code(agency, code, str(envelope.get("message") or ""), status)
    if not 200 <= status < 300:
        raise error_for_status(agency, status, str(envelope.get("message") or ""))
    data = envelope.get("data")
    if not isinstance(data, str) or not data.strip():
        raise MalformedAnswer(f"{agency}: envelope carries no XML data", agency=agency)
    return data.encode()
