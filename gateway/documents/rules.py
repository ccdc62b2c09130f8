"""What a document must be to be accepted for a procedure's component: size, media type, and a first look
at its bytes, so that a file declared as a PDF is one.

Limits come from the procedure's DocumentRule (the plugin's, with the operator's catalog over it), and
from the gateway's `[documents]` settings where the rule says nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from contracts import ProcedureSpec
from gateway.config.model import DocumentsSettings
from gateway.documents.base import DocumentError

# The first bytes of the types whose signature is unambiguous; other types are taken as declared.
MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}
SNIFF_BYTES = 8


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    media_types: tuple[str, ...]
    component: str | None = None  # the component the limits are for; None: the gateway's defaults

    def where(self) -> str:
        return f"component {self.component}" if self.component else "this gateway"

    def size_problem(self, size: int) -> str | None:
        if size > self.max_bytes:
            return f"{size} bytes is more than the {self.max_bytes} accepted for {self.where()}"
        return None

    def type_problem(self, media_type: str) -> str | None:
        if media_type not in self.media_types:
            return f"{media_type} is not accepted for {self.where()}; accepted: {', '.join(self.media_types)}"
        return None


def limits_for(settings: DocumentsSettings, spec: ProcedureSpec | None, component: str | None) -> Limits:
    rule = spec.document_rule(component) if spec is not None and component else None
    if rule is None:
        return Limits(settings.max_bytes, tuple(settings.media_types), component if spec is not None else None)
    return Limits(rule.max_bytes or settings.max_bytes, rule.media_types or tuple(settings.media_types), component)


def content_problem(media_type: str, head: bytes) -> str | None:
    """Whether the first bytes fit the declared type (None when they do, or the type has no signature)."""
    magic = MAGIC.get(media_type)
    if magic is None or any(head.startswith(m) for m in magic):
        return None
    return f"the content does not start as a {media_type} file does"


class NotOfType(DocumentError):
    pass


async def sniffed(chunks: AsyncIterable[bytes], media_type: str) -> AsyncIterator[bytes]:
    """The chunks as they come, refused (NotOfType) when the first bytes do not fit `media_type`."""
    head = b""
    checked = media_type not in MAGIC
    async for chunk in chunks:
        if not checked:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                checked = True
                if (problem := content_problem(media_type, head)) is not None:
                    raise NotOfType(problem)
        yield chunk
    if not checked and (problem := content_problem(media_type, head)) is not None:
        raise NotOfType(problem)
