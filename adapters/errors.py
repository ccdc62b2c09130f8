"""Library exceptions become gateway errors where they enter: `map_http_errors` around every call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from gateway.errors import (
    AgencyError,
    AgencyRejected,
    AgencyTimeout,
    AgencyUnavailable,
    MalformedAnswer,
)


@contextmanager
def map_http_errors(agency: str) -> Iterator[None]:
    """Raise the most specific AgencyError for an aiohttp / asyncio failure, chained `from` it."""
    try:
        yield
    except AgencyError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise AgencyTimeout(f"{agency}: no answer in time", agency=agency) from exc
    except aiohttp.ClientResponseError as exc:
        raise error_for_status(agency, exc.status, exc.message) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ContentTypeError) as exc:
        raise MalformedAnswer(f"{agency}: unreadable answer: {exc}", agency=agency) from exc
    except aiohttp.InvalidURL as exc:
        raise AgencyRejected(f"{agency}: invalid URL {exc}", agency=agency) from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientOSError, ConnectionError) as exc:
        raise AgencyUnavailable(f"{agency}: cannot connect: {exc}", agency=agency) from exc
    except aiohttp.ClientError as exc:
        raise AgencyUnavailable(f"{agency}: HTTP client error: {exc}", agency=agency) from exc


def error_for_status(agency: str, status: int, detail: str = "") -> AgencyError:
    """5xx, 408 and 429 are worth retrying; other 4xx mean the agency refused the request."""
    text = f"{agency}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 504):
        return AgencyTimeout(text, agency=agency, status=status)
    if status == 429 or status >= 500:
        return AgencyUnavailable(text, agency=agency, status=status)
    return AgencyRejected(text, agency=agency, status=status)
