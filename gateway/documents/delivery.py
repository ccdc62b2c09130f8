"""Before a dossier goes to its agency, every document it names must be in the store.

With `[documents.fetch] when = "delivery"`, documents named by URL are fetched here, just before the
first delivery. A fetch that fails for a passing reason (the host is unreachable, answers 5xx) is
tried again with the delivery's backoff; one that cannot succeed (the content's sha256 or size is not
the declared one, the host is no longer allowed), or keeps failing, becomes a supplement request to the
centre: the dossier goes to status 5 naming the documents, and the centre's answer brings them.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from contracts import Dossier
from gateway.documents.base import DocumentReader
from gateway.documents.fetch import FetchFailed, UrlFetcher, Wanted

log = structlog.get_logger("lienthong.documents")


class DocumentsUnavailable(Exception):
    """Some documents of a dossier cannot be had now. `permanent`: waiting will not bring them."""

    def __init__(self, items: list[str], permanent: bool) -> None:
        super().__init__("; ".join(items))
        self.items = items
        self.permanent = permanent

    @property
    def note(self) -> str:
        return "the gateway could not obtain these documents to deliver the dossier: " + "; ".join(self.items)


class DeliveryDocuments:
    def __init__(self, documents: DocumentReader, fetcher: UrlFetcher, max_bytes: Callable[[str, str], int]) -> None:
        self.documents = documents
        self.fetcher = fetcher
        self.max_bytes = max_bytes  # (procedure code, component code) -> the component's size limit

    async def prepare(self, dossier: Dossier) -> None:
        """Fetch what is not in the store yet; DocumentsUnavailable naming what could not be had."""
        problems: list[tuple[str, FetchFailed]] = []
        for a in dossier.submission.attachments:
            # Only a document named by URL can be missing yet: the others were stored before the 202.
            if a.url is None or a.upload_id is not None or a.content_base64 is not None or a.sha256 is None:
                continue
            if await self.documents.exists(a.sha256):
                continue
            label = f"{a.component_code} ({a.name})"
            if a.size is None or a.media_type is None:
                problems.append((label, FetchFailed("missing", "the document is not in the store", permanent=True)))
                continue
            try:
                await self.fetcher.fetch(
                    Wanted(
                        a.url, a.sha256, a.size, a.media_type, self.max_bytes(dossier.procedure_code, a.component_code)
                    )
                )
            except FetchFailed as exc:
                log.warning("document_fetch_failed", dossier=dossier.code, component=a.component_code, error=exc.code)
                problems.append((label, exc))
        if problems:
            raise DocumentsUnavailable(
                [f"{label}: {exc.message}" for label, exc in problems], permanent=any(e.permanent for _, e in problems)
            )
