"""Every error the gateway raises or maps into, in one place.

    LienthongError
    ├── ProblemError              answered to a caller as RFC 9457 problem+json
    │   ├── InvalidRequest        400  malformed JSON, bad header
    │   ├── ValidationFailed      422  field-level errors with paths
    │   │   └── InvalidResult     422  an agency's result document does not hold what it declares
    │   ├── Unauthenticated       401
    │   ├── Forbidden             403
    │   │   └── WrongAgency       403  an agency reported on a dossier that is not routed to it
    │   ├── NotFound              404
    │   ├── Conflict              409  (idempotency key reused with another body, illegal transition)
    │   ├── RequestTimeout        408  the body came too slowly
    │   ├── PayloadTooLarge       413
    │   ├── NoRoute               422  no agency endpoint serves this procedure / jurisdiction
    │   ├── TooManyRequests       429  a rate limit: wait Retry-After seconds
    │   ├── ServiceUnavailable    503
    │   │   └── StorageUnavailable 503  the store cannot write now (disk full, I/O error, locked): retry later
    │   └── UpstreamFailed        502/504  a synchronous look-up failed at the agency
    ├── ConfigError               configuration is invalid (start-up, `conf check`)
    ├── PluginError               a plugin is broken (start-up)
    └── AgencyError               raised by adapters and connectors while talking to an agency
        ├── TransientAgencyError  retried: timeouts, connection errors, 5xx, 429, garbled answers
        │   ├── AgencyTimeout
        │   ├── AgencyUnavailable
        │   └── MalformedAnswer
        └── PermanentAgencyError  never retried: the agency said no, or the answer is unsafe
            ├── AgencyRejected
            └── UnsafeAnswer      entity expansion, DTD, oversize answer

Only the TransientAgencyError branch is retried; `is_retryable` tests for it by class, except that one
error may say otherwise for itself (`retryable=` when raised): a MalformedAnswer whose answer broke the
agency's own schema is permanent, since the agency will answer the same again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_BASE = "urn:lienthong:problem:"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: a JSON pointer-like dotted path and a readable message."""

    path: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "code": self.code}


class LienthongError(Exception):
    """Root of every error the project raises on purpose."""


class ProblemError(LienthongError):
    slug = "internal-error"
    status = 500
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        body.update(self.extra)
        return body


class InvalidRequest(ProblemError):
    slug, status, title = "invalid-request", 400, "The request could not be read"


class ValidationFailed(ProblemError):
    slug, status, title = "validation-failed", 422, "The request has invalid fields"


class InvalidResult(ValidationFailed):
    slug, title = "invalid-result", "A result document does not hold what it declares"


class Unauthenticated(ProblemError):
    slug, status, title = "unauthenticated", 401, "Missing or unknown credentials"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'ApiKey realm="lienthong"'})


class Forbidden(ProblemError):
    slug, status, title = "forbidden", 403, "Not allowed for this client"


class WrongAgency(Forbidden):
    """An agency (instance, and office endpoint when it has several) reported on a dossier routed elsewhere."""

    slug, title = "wrong-agency", "This agency may not change this dossier"

    def __init__(self, detail: str, *, dossier_id: str, event_id: str | None = None) -> None:
        super().__init__(detail)
        self.dossier_id = dossier_id
        self.event_id = event_id


class NotFound(ProblemError):
    slug, status, title = "not-found", 404, "No such resource"


class MethodNotAllowed(ProblemError):
    slug, status, title = "method-not-allowed", 405, "Method not allowed"


class Conflict(ProblemError):
    slug, status, title = "conflict", 409, "The request conflicts with the current state"


class IdempotencyConflict(Conflict):
    slug, title = "idempotency-key-reused", "Idempotency key already used with another body"


class IllegalTransition(Conflict):
    slug, title = "illegal-transition", "This status change is not allowed"


class RequestTimeout(ProblemError):
    slug, status, title = "request-timeout", 408, "The request took too long to arrive"


class PayloadTooLarge(ProblemError):
    slug, status, title = "payload-too-large", 413, "The request body is too large"


class UnsupportedMediaType(ProblemError):
    slug, status, title = "unsupported-media-type", 415, "Unsupported media type"


class TooManyRequests(ProblemError):
    slug, status, title = "too-many-requests", 429, "Too many attempts: wait before trying again"


class NoRoute(ProblemError):
    slug, status, title = "no-route", 422, "No agency serves this procedure here"


class UpstreamFailed(ProblemError):
    slug, status, title = "upstream-failed", 502, "The agency system did not answer usefully"


class UpstreamTimeout(UpstreamFailed):
    slug, status, title = "upstream-timeout", 504, "The agency system did not answer in time"


class ServiceUnavailable(ProblemError):
    slug, status, title = "unavailable", 503, "The gateway cannot take this request now"


class StorageUnavailable(ServiceUnavailable):
    """The store could not write (or read): nothing of the request was kept; the same request may be sent again."""

    slug, title = "storage-unavailable", "The gateway cannot write to its store now"
    retry_after = 5  # seconds: a full disk or a locked database is rarely cleared sooner

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after)})


class ConfigError(LienthongError):
    """Invalid configuration; `problems` lists every error as (file, key, message)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"{f}: {k}: {m}" if k else f"{f}: {m}" for f, k, m in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(lines))


class PluginError(LienthongError):
    """A plugin cannot be loaded; the message names it."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {reason}")


class AgencyError(LienthongError):
    """Talking to an agency failed. `agency`, `status` (HTTP) and `code` (agency code) when known;
    `retry_after`: the seconds the agency asked us to wait (its Retry-After header), if it said."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        agency: str = "",
        status: int | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.agency = agency
        self.status = status
        self.code = code
        if retryable is not None:  # this one error overrides its class
            self.retryable = retryable
        self.retry_after = retry_after


class TransientAgencyError(AgencyError):
    retryable = True


class AgencyTimeout(TransientAgencyError):
    pass


class AgencyUnavailable(TransientAgencyError):
    pass


class MalformedAnswer(TransientAgencyError):
    pass


class PermanentAgencyError(AgencyError):
    retryable = False


class AgencyRejected(PermanentAgencyError):
    pass


class UnsafeAnswer(PermanentAgencyError):
    pass


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, AgencyError) and exc.retryable
