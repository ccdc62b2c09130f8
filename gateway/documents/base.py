"""The document store: submitted documents by their sha256, streamed in and out, never whole in memory.

    DocumentReader        what connectors read documents through (ConnectorContext.documents)
    └── DocumentStore     what the gateway writes them with: put (streamed, hashed, checked), discard, sweep

Documents are content-addressed: the same bytes are stored once however many dossiers name them, and a
name (the sha256) never changes meaning. Dossiers and uploads keep references in the database; a
document neither names is deleted by the sweep once it is older than the grace period.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CHUNK = 256 * 1024
# Digest algorithms a caller may ask a put to check, by hashlib name (RFC 9530 names them sha-256, sha-512).
ALGORITHMS = frozenset({"sha256", "sha512"})
# (sha256s) -> those a dossier or an upload still names.
Referenced = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What a put left in the store. `created`: this put wrote the file (it was not there before)."""

    sha256: str
    size: int
    created: bool
    mtime_ns: int  # the file's mtime as this put left it: discard() removes only a file nobody touched since


class DocumentError(Exception):
    """A document was refused; nothing of it was stored."""


class DocumentTooLarge(DocumentError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the document exceeds {limit} bytes")
        self.limit = limit


class DigestMismatch(DocumentError):
    def __init__(self, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(f"{algorithm} of the content is {actual}, not {expected} as declared")
        self.algorithm, self.expected, self.actual = algorithm, expected, actual


class DocumentMissing(LookupError):
    """No document with this sha256 in the store."""


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class DocumentReader(ABC):
    """Reading documents by sha256. Every method runs its file I/O off the event loop."""

    @abstractmethod
    async def read(self, sha256: str) -> bytes:
        """The whole document: for wires that carry it inline (base64 in JSON or XML). DocumentMissing."""

    @abstractmethod
    def chunks(self, sha256: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The document piece by piece, for wires that stream (multipart, file responses). DocumentMissing."""

    @abstractmethod
    async def exists(self, sha256: str) -> bool: ...

    def local_path(self, sha256: str) -> Path | None:
        """The document's file, when the store is a local folder (for sendfile); None otherwise."""
        return None


class DocumentStore(DocumentReader):
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def put(
        self, chunks: AsyncIterable[bytes], *, max_bytes: int, expected: Mapping[str, str] | None = None
    ) -> StoredDocument:
        """Store a document as it arrives; returns once it is durable.

        `expected` maps digest algorithms (ALGORITHMS) to the hex digests the sender declared. Raises
        DocumentTooLarge past `max_bytes` and DigestMismatch for a digest that disagrees: nothing is kept.
        """

    async def put_bytes(
        self, data: bytes, *, max_bytes: int | None = None, expected: Mapping[str, str] | None = None
    ) -> StoredDocument:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put(one(), max_bytes=len(data) if max_bytes is None else max_bytes, expected=expected)

    @abstractmethod
    async def touch(self, sha256: str) -> bool:
        """A stored document about to be named by a new row (an upload a dossier names): marked as stored
        now, so the sweep leaves it alone until that row is committed. False if it is not there."""

    @abstractmethod
    async def discard(self, document: StoredDocument) -> None:
        """Undo a put whose dossier was not accepted: removes the file if that put created it and nothing
        has stored the same document since (a later put of it would have touched it)."""

    @abstractmethod
    async def sweep(self, referenced: Referenced, *, older_than: float, shards: int | None = None) -> int:
        """Delete documents last stored more than `older_than` seconds ago that `referenced` says nobody
        names any more; walks `shards` of the store per call (all when None). Returns how many went."""


class Hashes:
    """sha256 always, and whichever other algorithms a caller asked to check."""

    def __init__(self, expected: Mapping[str, str] | None) -> None:
        unknown = set(expected or {}) - ALGORITHMS
        if unknown:
            raise ValueError(f"unsupported digest algorithms {sorted(unknown)}")
        self.expected = dict(expected or {})
        self.hashes = {"sha256": hashlib.sha256()} | {a: hashlib.new(a) for a in self.expected if a != "sha256"}

    def update(self, data: bytes) -> None:
        for h in self.hashes.values():
            h.update(data)

    def check(self) -> str:
        """The sha256; DigestMismatch for the first expected digest that disagrees."""
        for algorithm, want in self.expected.items():
            got = self.hashes[algorithm].hexdigest()
            if got != want.lower():
                raise DigestMismatch(algorithm, want.lower(), got)
        return self.hashes["sha256"].hexdigest()
