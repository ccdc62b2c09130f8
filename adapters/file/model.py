"""What the file exchange sends, reports and lets a handler raise; the sha256 sidecar format."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.errors import PermanentAgencyError

SIDECAR_MAX_BYTES = 1024
# `<64 hex>  <name>` as written by sha256sum (`*` marks binary mode); the name is optional.
_SIDECAR = re.compile(rb"\s*([0-9a-fA-F]{64})(?:\s+\*?(\S+))?\s*")


class AnswerRejected(PermanentAgencyError):
    """Raised by a poll handler: this answer must not be applied; it is quarantined with `reason`."""

    reason = "rejected"


class DuplicateAnswer(AnswerRejected):
    reason = "duplicate"


class UnknownCorrelation(AnswerRejected):
    reason = "unknown-correlation"


@dataclass(frozen=True, slots=True)
class OutboundFile:
    correlation_id: str
    body: bytes
    prefix: str | None = None  # overrides the exchange's default file prefix


@dataclass(frozen=True, slots=True)
class SentFile:
    folder: str
    name: str
    sha256: str
    size: int


@dataclass(slots=True)
class PollReport:
    processed: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # name -> reason
    waiting: list[str] = field(default_factory=list)  # sidecar not there yet
    failed: list[str] = field(default_factory=list)  # handler error: left in the inbox for next poll
    refused: list[str] = field(default_factory=list)  # names we will not touch at all (`a/b`, NUL)
    ignored: list[str] = field(default_factory=list)  # not ours: wrong suffix, uploads in progress


def sidecar_text(name: str, digest: str) -> bytes:
    return f"{digest}  {name}\n".encode()


def parse_sidecar(raw: bytes, name: str) -> str | None:
    """The lower-case hex digest in a sidecar for `name`, or None if it is not one."""
    m = _SIDECAR.fullmatch(raw)
    if m is None or (m.group(2) is not None and m.group(2) != name.encode()):
        return None
    return m.group(1).decode().lower()
