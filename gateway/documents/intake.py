"""The documents of a submission, taken in: each attachment checked against its component's limits and
made a reference to the document store, whichever way it came (inline, uploaded first, or by URL).

Everything that can be refused without storing is checked first, and every problem is reported at once,
with its field path; then URLs are fetched (at intake, unless the operator chose before delivery) and
inline content is stored. If anything fails, or the dossier is then not accepted, what this submission
stored is discarded: a refused submission leaves nothing behind.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from contracts import Attachment, ProcedureSpec
from gateway.config.model import DocumentsSettings
from gateway.documents.base import DocumentStore, StoredDocument
from gateway.documents.fetch import FetchFailed, UrlFetcher, Wanted
from gateway.documents.rules import Limits, content_problem, limits_for
from gateway.errors import FieldError, ValidationFailed
from gateway.store.base import DocumentRef, Store, UploadRecord


@dataclass
class Taken:
    """A submission's documents once taken: the attachments as the dossier keeps them (references, no
    content), the rows naming them, and what this submission stored (to discard if it is not accepted)."""

    attachments: list[dict[str, Any]] = field(default_factory=list)
    refs: list[DocumentRef] = field(default_factory=list)
    stored: list[StoredDocument] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Plan:
    index: int
    attachment: Attachment
    limits: Limits
    upload: UploadRecord | None


class DocumentIntake:
    def __init__(
        self, store: Store, documents: DocumentStore, fetcher: UrlFetcher, settings: DocumentsSettings
    ) -> None:
        self.store = store
        self.documents = documents
        self.fetcher = fetcher
        self.settings = settings

    async def take(
        self, client_id: str, spec: ProcedureSpec | None, attachments: Sequence[Attachment], prefix: str = "attachments"
    ) -> Taken:
        """ValidationFailed (nothing stored) when a document cannot be accepted."""
        named = sorted({a.upload_id for a in attachments if a.upload_id})
        uploads = await self.store.uploads(client_id, named) if named else {}
        plans: list[_Plan] = []
        errors: list[FieldError] = []
        for i, a in enumerate(attachments):
            limits = limits_for(self.settings, spec, a.component_code)
            upload = uploads.get(a.upload_id) if a.upload_id else None
            errors += self._declared(f"{prefix}.{i}", a, limits, upload)
            plans.append(_Plan(i, a, limits, upload))
        if errors:
            raise ValidationFailed("some documents cannot be accepted", errors=errors)
        taken = Taken()
        try:
            for plan in plans:
                await self._take_one(f"{prefix}.{plan.index}", plan, taken)
        except BaseException:
            await self.discard(taken)
            raise
        return taken

    async def discard(self, taken: Taken) -> None:
        for doc in taken.stored:
            await self.documents.discard(doc)
        taken.stored.clear()

    def _declared(self, where: str, a: Attachment, limits: Limits, upload: UploadRecord | None) -> list[FieldError]:
        """What can be judged before storing anything: the upload named, the declared type and size."""
        if a.upload_id is not None:
            if upload is None:
                return [
                    FieldError(
                        f"{where}.upload_id",
                        f"no upload {a.upload_id} of this client: unknown, or expired "
                        f"({self.settings.upload_ttl / 3600:g} hours after it was uploaded)",
                        "unknown_upload",
                    )
                ]
            disagree = [
                k
                for k, declared, actual in (
                    ("sha256", a.sha256, upload.sha256),
                    ("size", a.size, upload.size),
                    ("media_type", a.media_type, upload.media_type),
                )
                if declared is not None and declared != actual
            ]
            if disagree:
                return [
                    FieldError(f"{where}.{k}", f"differs from upload {upload.id}", "upload_mismatch") for k in disagree
                ]
            media_type, size = upload.media_type, upload.size
        else:
            assert a.media_type is not None and a.size is not None  # the contract requires them here
            media_type, size = a.media_type, a.size
        out = []
        if (problem := limits.type_problem(media_type)) is not None:
            out.append(FieldError(f"{where}.media_type", problem, "media_type_not_allowed"))
        if (problem := limits.size_problem(size)) is not None:
            out.append(FieldError(f"{where}.size", problem, "too_large"))
        if a.source == "url" and a.url is not None and not self.fetcher.host_allowed(_host(a.url)):
            out.append(
                FieldError(
                    f"{where}.url",
                    f"documents are not fetched from {_host(a.url) or a.url}: upload it, or ask the operator "
                    "to allow the host",
                    "host_not_allowed",
                )
            )
        return out

    async def _take_one(self, where: str, plan: _Plan, taken: Taken) -> None:
        a, limits = plan.attachment, plan.limits
        source = a.source
        if plan.upload is not None:
            sha, size, media_type = plan.upload.sha256, plan.upload.size, plan.upload.media_type
            # Touched: were the upload to expire right now, the sweep must not take it before our commit.
            if not await self.documents.touch(sha):
                raise ValidationFailed(
                    "an upload's document is gone",
                    errors=[
                        FieldError(f"{where}.upload_id", "the upload's document is no longer stored", "unknown_upload")
                    ],
                )
        else:
            assert a.sha256 is not None and a.size is not None and a.media_type is not None
            sha, size, media_type = a.sha256, a.size, a.media_type
        content = None
        if source == "inline":
            assert a.content_base64 is not None
            raw = base64.b64decode(a.content_base64)
            if (problem := content_problem(media_type, raw[:16])) is not None:
                raise ValidationFailed(
                    "a document is not what it says",
                    errors=[FieldError(f"{where}.content_base64", problem, "not_of_type")],
                )
            if len(raw) <= self.settings.database_max_bytes:
                content = raw  # written with the dossier, in its transaction
            else:
                taken.stored.append(await self.documents.put_bytes(raw, expected={"sha256": sha}))
        elif source == "url" and self.settings.fetch.when == "intake":
            assert a.url is not None
            try:
                doc = await self.fetcher.fetch(Wanted(a.url, sha, size, media_type, limits.max_bytes))
            except FetchFailed as exc:
                raise ValidationFailed(
                    f"the document at {a.url} cannot be fetched as declared",
                    errors=[FieldError(f"{where}.url", exc.message, exc.code)],
                ) from None
            taken.stored.append(doc)
        stored = a.model_dump(mode="json", exclude={"content_base64"})
        stored.update(sha256=sha, size=size, media_type=media_type)
        taken.attachments.append(stored)
        taken.refs.append(DocumentRef(a.component_code, a.name, media_type, size, sha, source, a.url, content))


def _host(url: str) -> str:
    try:
        return URL(url).host or ""
    except ValueError:
        return ""
