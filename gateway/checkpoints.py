"""Signed checkpoints of the audit log: proof, kept outside the database, of how long the log was and
what its head was.

Every `[audit] checkpoint_interval` seconds (when the log grew) and at shutdown, the gateway signs, with
the audit key (Ed25519), the number of records and the hash of the last one, links the checkpoint to the
one before, keeps it in the store and writes it as a file to `checkpoint_dir`, for the operator to ship
elsewhere (another machine, write-once storage). `lienthong audit verify --checkpoints DIR` checks the
log against those files with the public key only:

- a record edited in place breaks the hash chain;
- a log rewritten with recomputed hashes no longer has the head a checkpoint signed, and its seals fail;
- records cut off the end, or the whole log deleted, leave it shorter than the last checkpoint counted;
- a record appended by someone else carries no seal of the gateway (seals.py).

What it cannot see: records cut off after the last checkpoint that reached the folder (the seals of
what is left still verify), and anything done by someone who holds the private key, since they can sign
as the gateway. Hence a short interval, the folder shipped at once, and the key readable only by the
gateway. At start-up the gateway compares the store with the last checkpoint and refuses to chain new
records onto a log that is shorter, rewritten, or carries records it did not seal; the operator then
restores the store from a backup, or accepts the damage with `lienthong audit acknowledge --reason`,
a signed acknowledgement (a checkpoint of the log as it is, naming what was found) after which new
records chain on and `verify` reports the acknowledged damage instead of failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from gateway.config.model import AuditSettings
from gateway.errors import LienthongError
from gateway.store.audit import GENESIS
from gateway.store.base import AuditCheck, AuditWalk, Store, StoredCheckpoint
from gateway.store.seals import AuditKey, AuditVerifier, private_key, public_key

log = structlog.get_logger("lienthong.audit")

CONTEXT = b"lienthong audit checkpoint v1\n"  # never confused with a seal's signed message
CHECKPOINT, ACKNOWLEDGEMENT = "checkpoint", "acknowledgement"
FILE_PREFIX = "checkpoint-"


class AuditLogTampered(LienthongError):
    """The store's audit log does not match its last signed checkpoint: the gateway will not start."""


@dataclass(frozen=True)
class Checkpoint:
    body: dict[str, Any]
    signature: str

    @property
    def number(self) -> int:
        return int(self.body["number"])

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def head(self) -> str:
        return str(self.body["head"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def at(self) -> str:
        return str(self.body["at"])

    @property
    def sealed_from(self) -> int | None:
        value = self.body.get("sealed_from")
        return int(value) if value is not None else None

    @property
    def label(self) -> str:
        return f"checkpoint #{self.number} ({self.at})"

    def canonical(self) -> bytes:
        return orjson.dumps(self.body, option=orjson.OPT_SORT_KEYS)

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def valid(self, verifier: AuditVerifier) -> bool:
        return verifier.valid(self.signature, CONTEXT + self.canonical())

    def file_bytes(self) -> bytes:
        return orjson.dumps(
            {"checkpoint": self.body, "signature": self.signature}, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
        )

    def stored(self) -> StoredCheckpoint:
        return StoredCheckpoint(
            self.number, self.at, self.kind, self.seq, self.head, self.canonical().decode(), self.signature
        )

    @classmethod
    def from_stored(cls, s: StoredCheckpoint) -> Checkpoint:
        return cls(orjson.loads(s.body), s.signature)

    @classmethod
    def from_file(cls, data: bytes) -> Checkpoint:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("checkpoint"), dict):
            raise ValueError("not a checkpoint file")
        body, signature = doc["checkpoint"], doc.get("signature")
        for name in ("number", "seq", "head", "kind", "at"):
            if name not in body:
                raise ValueError(f"the checkpoint has no {name!r}")
        if not isinstance(signature, str):
            raise ValueError("the checkpoint has no signature")
        return cls(body, signature)

    def summary(self) -> dict[str, Any]:
        return {k: self.body.get(k) for k in ("number", "kind", "seq", "head", "at", "why", "reason", "found")}


def sign(key: AuditKey, body: dict[str, Any]) -> Checkpoint:
    unsigned = Checkpoint(body, "")
    return Checkpoint(body, key.sign(CONTEXT + unsigned.canonical()))


# -- the folder ---------------------------------------------------------------------------------------


def file_name(number: int) -> str:
    return f"{FILE_PREFIX}{number:010d}.json"


def export(folder: Path, cp: Checkpoint) -> None:
    """Write a checkpoint file atomically and durably (blocking: call in a thread). An existing file of
    the same number is never overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name(cp.number)
    if target.exists():
        return
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    with tmp.open("wb") as fh:
        fh.write(cp.file_bytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    finally:
        os.close(fd)


def read_folder(folder: Path) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoint files of a folder, and a sentence for each file that cannot be read (blocking)."""
    found: list[Checkpoint] = []
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.glob(f"{FILE_PREFIX}*.json")):
        try:
            found.append(Checkpoint.from_file(path.read_bytes()))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: unreadable: {exc}")
    return found, problems


# -- keys ---------------------------------------------------------------------------------------------


def _in_conf(base: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else base / p


def load_key(settings: AuditSettings, base: Path) -> AuditKey | None:
    """The configured audit key (blocking: reads the file); None when none is configured."""
    if settings.signing_key:
        return private_key(settings.signing_key.encode())
    if settings.signing_key_file:
        return private_key(_in_conf(base, settings.signing_key_file).read_bytes())
    return None


def load_earlier(settings: AuditSettings, base: Path) -> list[AuditVerifier]:
    """The public keys of audit keys used before a rotation (blocking: reads files)."""
    out = []
    for text in settings.earlier_public_keys:
        path = _in_conf(base, text)
        out.append(public_key(path.read_bytes() if path.exists() else text.encode()))
    return out


def load_public(settings: AuditSettings, base: Path, given: Sequence[str] = ()) -> AuditVerifier | None:
    """The public keys for verifying: `given` (files, or base64 keys; the current one first), else
    `public_key_file` and `earlier_public_keys` (blocking: reads files)."""

    def read(text: str, relative: bool) -> AuditVerifier:
        path = _in_conf(base, text) if relative else Path(text)
        return public_key(path.read_bytes() if path.exists() else text.encode())

    if given:
        keys = [read(g, False) for g in given]
        return keys[0].with_earlier(*keys[1:])
    if settings.public_key_file:
        return read(settings.public_key_file, True).with_earlier(*load_earlier(settings, base))
    return None


# -- checking -----------------------------------------------------------------------------------------


@dataclass
class Chain:
    """The checkpoints whose signatures verify, in order, and what is wrong with the sequence."""

    valid: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    other_keys: int = 0  # checkpoints of another audit key (before a key rotation): not checked
    highest: int = 0  # the highest number of any checkpoint found, whatever its key: the next one follows it

    @property
    def binding(self) -> list[Checkpoint]:
        """The checkpoints the log must match now: from the latest acknowledgement on."""
        acks = [i for i, cp in enumerate(self.valid) if cp.kind == ACKNOWLEDGEMENT]
        return self.valid[acks[-1] :] if acks else list(self.valid)

    @property
    def acknowledgements(self) -> list[Checkpoint]:
        return [cp for cp in self.valid if cp.kind == ACKNOWLEDGEMENT]

    @property
    def last(self) -> Checkpoint | None:
        return self.valid[-1] if self.valid else None


def check_chain(checkpoints: Sequence[Checkpoint], verifier: AuditVerifier) -> Chain:
    chain = Chain(highest=max((cp.number for cp in checkpoints), default=0))
    by_number: dict[int, Checkpoint] = {}
    for cp in checkpoints:
        if cp.body.get("key") not in verifier.key_ids:
            chain.other_keys += 1  # a series signed by an earlier audit key: verify it with that key
            continue
        if not cp.valid(verifier):
            chain.problems.append(f"checkpoint #{cp.number}: its signature does not verify with the audit key")
            continue
        other = by_number.setdefault(cp.number, cp)
        if other.digest() != cp.digest():
            chain.problems.append(f"checkpoint #{cp.number}: two different checkpoints carry this number")
    previous: Checkpoint | None = None
    for number in sorted(by_number):
        cp = by_number[number]
        # The series may begin after #1 (older checkpoints archived, or signed by an earlier key).
        expected = previous.number + 1 if previous is not None else number
        if number != expected:
            gap = f"#{expected}" if number == expected + 1 else f"#{expected} to #{number - 1}"
            chain.problems.append(f"checkpoint(s) {gap} are missing before #{number}")
        elif previous is not None and cp.body.get("prev") != previous.digest():
            chain.problems.append(f"checkpoint #{number} does not follow the checkpoint before it")
        chain.valid.append(cp)
        previous = cp
    return chain


@dataclass
class Verdict:
    ok: bool
    problems: list[str]
    check: AuditCheck
    head: tuple[int, str]
    chain: Chain


async def verify_log(store: Store, verifier: AuditVerifier | None, checkpoints: Sequence[Checkpoint]) -> Verdict:
    """The whole log against its checkpoints and seals: every problem found, in sentences."""
    chain = check_chain(checkpoints, verifier) if verifier is not None else Chain()
    problems = list(chain.problems)
    binding = chain.binding
    head = await store.audit_head()
    ack = binding[0] if binding and binding[0].kind == ACKNOWLEDGEMENT else None
    if ack is not None:
        # Up to its acknowledgement the operator accepted the log as it was: only the chain, and the head
        # the acknowledgement signed, are checked there; everything after it, fully.
        before = await store.verify_audit(AuditWalk(None, {ack.seq: (ack.head, ack.label)} if ack.seq else {}))
        if not before.ok and before.first_bad is not None and before.first_bad <= ack.seq:
            problems.append(f"record {before.first_bad}: {before.reason}")
        walk = AuditWalk(verifier, _expected(binding[1:]), after_seq=ack.seq, after_hash=ack.head, sealed_to=ack.seq)
    else:
        walk = AuditWalk(verifier, _expected(binding))
    check = await store.verify_audit(walk)
    if not check.ok:
        problems.append(f"record {check.first_bad}: {check.reason}")
    top = max(binding, key=lambda cp: cp.seq, default=None)
    if top is not None and head[0] < top.seq:
        if head[0] == 0:
            problems.append(f"the log is empty, but {top.label} counted {top.seq} records: the log was deleted")
        else:
            cut = f"record {top.seq}" if top.seq == head[0] + 1 else f"records {head[0] + 1} to {top.seq}"
            problems.append(f"the log ends at record {head[0]}, but {top.label} counted {top.seq}: {cut} were deleted")
    sealed = next((cp.sealed_from for cp in reversed(binding) if cp.sealed_from is not None), None)
    if ack is None and check.ok and sealed is not None and check.first_sealed != sealed:
        problems.append(f"the seals from record {sealed} on were removed (the checkpoints say the log was sealed)")
    return Verdict(not problems, problems, check, head, chain)


def _expected(checkpoints: Sequence[Checkpoint]) -> dict[int, tuple[str, str]]:
    return {cp.seq: (cp.head, cp.label) for cp in checkpoints if cp.seq > 0}


# -- the gateway's side -------------------------------------------------------------------------------


class Checkpointer:
    """Writes the checkpoints of one store, checks the store against the last one at start-up."""

    def __init__(
        self, store: Store, key: AuditKey, folder: Path, interval: float, earlier: Sequence[AuditVerifier] = ()
    ) -> None:
        self.store, self.key, self.folder, self.interval = store, key, folder, interval
        self.verifier = key.verifier.with_earlier(*earlier)  # keys used before a rotation verify too
        self.last: Checkpoint | None = None
        self.highest = 0  # the highest checkpoint number known, of any key
        self.written = 0
        self._lock = asyncio.Lock()

    async def known(self) -> tuple[Chain, set[int], set[int]]:
        """The checkpoints of the folder and of the store together, checked as one chain; the numbers the
        folder has, and those the store has."""
        from_folder, unreadable = await asyncio.to_thread(read_folder, self.folder)
        from_store = [Checkpoint.from_stored(s) for s in await self.store.audit_checkpoints()]
        seen = {cp.digest(): cp for cp in [*from_folder, *from_store]}
        chain = check_chain(sorted(seen.values(), key=lambda cp: cp.number), self.verifier)
        chain.problems[:0] = unreadable
        return chain, {cp.number for cp in from_folder}, {cp.number for cp in from_store}

    async def findings(self, last: Checkpoint | None) -> list[str]:
        """How the store differs from the last checkpoint: cut short, rewritten, records not sealed."""
        if last is None:
            return []
        seq, _ = await self.store.audit_head()
        if seq < last.seq:
            what = "the log is empty" if seq == 0 else f"the log ends at record {seq}"
            return [f"{what}, but {last.label} counted {last.seq} records: records were deleted"]
        at = await self.store.audit_hash_at(last.seq) if last.seq else GENESIS
        if at != last.head:
            return [f"record {last.seq} is not the one {last.label} signed: the log was rewritten"]
        sealed_to = last.seq if last.sealed_from is not None or last.kind == ACKNOWLEDGEMENT else None
        check = await self.store.verify_audit(
            AuditWalk(self.verifier, after_seq=last.seq, after_hash=last.head, sealed_to=sealed_to)
        )
        return [] if check.ok else [f"record {check.first_bad}: {check.reason}"]

    async def start(self) -> None:
        """Refuse (AuditLogTampered) a store that does not match the last checkpoint; bring the folder and
        the store's table level (a checkpoint one of them lacks is copied to the other)."""
        chain, in_folder, in_store = await self.known()
        for problem in chain.problems:
            log.error("audit_checkpoint_problem", problem=problem)
        last = chain.last
        found = await self.findings(last)
        if found:
            raise AuditLogTampered(
                "the audit log does not match its last signed checkpoint: "
                + "; ".join(found)
                + ". The gateway will not add records to it. Restore the store from a backup taken after "
                "that checkpoint, or, to go on with the log as it is, record the damage with "
                "`lienthong audit acknowledge --reason '...'` (signed with the audit key) and start again."
            )
        self.highest = chain.highest
        for cp in chain.valid:
            if cp.number not in in_store:
                await self.store.add_audit_checkpoint(cp.stored())
            if cp.number not in in_folder:
                await asyncio.to_thread(export, self.folder, cp)
        self.last = last

    async def write(self, kind: str = CHECKPOINT, **extra: Any) -> Checkpoint | None:
        """Sign the log's head now (a plain checkpoint only if the log grew since the last one)."""
        async with self._lock:
            seq, head = await self.store.audit_head()
            last = self.last
            if kind == CHECKPOINT and last is not None and (last.seq, last.head) == (seq, head):
                return None
            sealed_from = last.sealed_from if last is not None else None
            if sealed_from is None:
                sealed_from = await self._first_sealed(seq)
            body = {
                "v": 1,
                "kind": kind,
                "number": max(last.number if last is not None else 0, self.highest) + 1,
                "seq": seq,
                "head": head,
                "at": datetime.now(UTC).isoformat(),
                "prev": last.digest() if last is not None else None,
                "sealed_from": sealed_from,
                "key": self.verifier.key_id,
                **extra,
            }
            cp = sign(self.key, body)
            await self.store.add_audit_checkpoint(cp.stored())
            await asyncio.to_thread(export, self.folder, cp)
            self.last = cp
            self.highest = cp.number
            self.written += 1
            log.info("audit_checkpoint", number=cp.number, seq=seq, head=head, kind=kind, why=extra.get("why"))
            return cp

    async def _first_sealed(self, seq: int) -> int | None:
        if seq == 0:
            return None
        check = await self.store.verify_audit(AuditWalk(self.verifier))
        return check.first_sealed

    async def run(self) -> None:
        """A checkpoint every interval when the log grew; failures are logged and tried at the next."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                # Records written since the last checkpoint that the gateway did not seal: say so now,
                # not at the next start. The checkpoint is written all the same: the seals keep showing them.
                for problem in await self.findings(self.last):
                    log.error("audit_log_tampered", problem=problem)
                await self.write(why="interval")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit_checkpoint_failed")

    async def acknowledge(self, reason: str) -> Checkpoint | None:
        """The operator accepts the log as it is: a signed acknowledgement naming what differs from the
        last checkpoint (None, and nothing written, when nothing does)."""
        chain, _, _ = await self.known()
        self.last, self.highest = chain.last, chain.highest
        found = [*chain.problems, *await self.findings(chain.last)]
        if not found:
            return None
        return await self.write(ACKNOWLEDGEMENT, why="acknowledged", reason=reason, found=found)
