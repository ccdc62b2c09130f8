"""Library exceptions become gateway errors where they enter: `map_http_errors` around every call."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC
from types import TracebackType

import aiohttp

from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    MalformedAnswer,
)


class map_http_errors:  # lower case: used like the function it replaced, `with map_http_errors(agency):`
    """Raise the most specific AgencyError for an aiohttp / asyncio failure, chained `from` it.

    A class rather than a generator-based context manager: it wraps every outbound call.
    """

    __slots__ = ("agency",)

    def __init__(self, agency: str) -> None:
        self.agency = agency

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:  # never swallows: an error passes unchanged or becomes an AgencyError
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, AgencyError):
            return  # no error, a cancellation, or already the gateway's own
        mapped = _agency_error(self.agency, exc)
        if mapped is not None:
            raise mapped from exc


def _agency_error(agency: str, exc: Exception) -> AgencyError | None:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return AgencyTimeout(f"{agency}: no answer in time", agency=agency)
    if isinstance(exc, aiohttp.ClientResponseError):
        return error_for_status(agency, exc.status, exc.message, retry_after=retry_after_of(exc.headers))
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ContentTypeError):
        return MalformedAnswer(f"{agency}: unreadable answer: {exc}", agency=agency)
    if isinstance(exc, aiohttp.InvalidURL):
        return AgencyRejected(f"{agency}: invalid URL {exc}", agency=agency)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # Unknown CA, wrong host name, or a certificate that is not the pinned one. Retried like any
        # failed connection (the operator may be fixing a pin), but said plainly.
        return AgencyUnavailable(f"{agency}: its TLS certificate was refused: {exc.certificate_error}", agency=agency)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientOSError | ConnectionError):
        return AgencyUnavailable(f"{agency}: cannot connect: {exc}", agency=agency)
    if isinstance(exc, aiohttp.ClientError):
        return AgencyUnavailable(f"{agency}: HTTP client error: {exc}", agency=agency)
    return None


def error_for_status(agency: str, status: int, detail: str = "", *, retry_after: float | None = None) -> AgencyError:
    """5xx, 408 and 429 are worth retrying; other 4xx mean the agency refused the request. `retry_after`
    (from the answer's Retry-After, see `retry_after_of`) rides on the error for the dispatcher."""
    text = f"{agency}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 504):
        return AgencyTimeout(text, agency=agency, status=status, retry_after=retry_after)
    if status == 429 or status >= 500:
        return AgencyUnavailable(text, agency=agency, status=status, retry_after=retry_after)
    return AgencyRejected(text, agency=agency, status=status)


def retry_after_of(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 10.2.3: a number of seconds, or an HTTP date);
    None when there is none or it cannot be read (an agency's odd header must not fail the call)."""
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT all the same
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
