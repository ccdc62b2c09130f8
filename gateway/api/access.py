"""Who may open a dossier, and the audit record of every time somebody did (or tried).

A centre opens the dossiers it received. Since July 2025 an applicant may also come back to any other
centre, to collect the result or bring the documents an agency asked for: that centre opens the
dossier by presenting the applicant's own identifier (personal id, or tax code for an organisation) in
the `X-Applicant-Id` header. Portal and operator clients with `read` see every dossier. Each opening
is written to the hash-chained audit log before the data leaves; a refused one is written too.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

from aiohttp import web

from contracts import Dossier, PersonApplicant
from contracts.identifiers import DOSSIER_CODE_RE
from gateway.api.keys import PRINCIPAL, STORE
from gateway.auth import Principal
from gateway.config.model import Scope
from gateway.errors import NotFound, TooManyRequests
from gateway.store.base import AuditEntry

APPLICANT_HEADER = "X-Applicant-Id"


class ProofGuard:
    """Counts each centre's wrong applicant ids; past `failures` within `window` seconds, the centre waits
    before it may present another one. A personal id is guessable, given a dossier code and a birth year,
    in far fewer tries than its 12 digits suggest; the audit log shows who tried, this slows them down."""

    def __init__(self, failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.window, self.clock = failures, window, clock
        self._wrong: dict[str, deque[float]] = {}

    def wait_for(self, client_id: str) -> float:
        """Seconds before `client_id` may try again; 0 when it may now."""
        wrong = self._recent(client_id)
        if wrong is None or len(wrong) < self.failures:
            return 0.0
        return max(0.0, wrong[0] + self.window - self.clock())

    def failed(self, client_id: str) -> None:
        self._wrong.setdefault(client_id, deque()).append(self.clock())

    def _recent(self, client_id: str) -> deque[float] | None:
        wrong = self._wrong.get(client_id)
        if wrong is not None:
            horizon = self.clock() - self.window
            while wrong and wrong[0] <= horizon:
                wrong.popleft()
        return wrong


PROOF_GUARD = web.AppKey("proof_guard", ProofGuard)


def applicant_id(d: Dossier) -> str:
    a = d.submission.applicant
    return a.personal_id if isinstance(a, PersonApplicant) else str(a.tax_code)


def _basis(p: Principal, d: Dossier, proof: str | None) -> tuple[bool, str]:
    if p.conf.kind != "centre":
        return True, "all-dossiers"
    if d.client_id == p.client_id:
        return True, "own"
    if not proof:
        return False, "no-proof"
    if hmac.compare_digest(proof.strip().encode(), applicant_id(d).encode()):
        return True, "applicant-proof"
    return False, "wrong-proof"


async def open_dossier(request: web.Request, action: str, scope: Scope = "read") -> Dossier:
    """The dossier named by the path, if this client may open it for `action`; audited either way.

    A refusal answers as a missing dossier would, and takes the same path: the same read, an audit
    record written before the answer (a missing one is audited too), a wrong applicant id counted for
    the lock-out whether the dossier exists or not, and a locked-out centre told to wait for both. Its
    existence is not the caller's to learn.
    """
    p = request[PRINCIPAL]
    p.require(scope)
    ref = request.match_info["ref"]
    d = await request.app[STORE].get_dossier(ref)
    proof = request.headers.get(APPLICANT_HEADER)
    guard = request.app[PROOF_GUARD]
    dossier_id = str(d.id) if d is not None else None
    detail = {} if d is not None else ref_record(ref)
    own = d is not None and (p.conf.kind != "centre" or d.client_id == p.client_id)
    if proof and not own and (wait := guard.wait_for(p.client_id)) > 0:
        await audit(request, action, allowed=False, basis="too-many-wrong-proofs", dossier_id=dossier_id, detail=detail)
        raise TooManyRequests(
            f"too many wrong applicant ids from client {p.client_id!r}; try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    if d is None:
        allowed, basis = False, "wrong-proof" if proof else "not-found"
    else:
        allowed, basis = _basis(p, d, proof)
    await audit(request, action, allowed=allowed, basis=basis, dossier_id=dossier_id, detail=detail)
    if not allowed:
        if basis == "wrong-proof":
            guard.failed(p.client_id)
        raise NotFound(f"no dossier {ref} for client {p.client_id!r}")
    assert d is not None
    return d


def ref_record(ref: str) -> dict[str, str]:
    """What the audit log keeps of a reference that named nothing: the reference itself when it has the
    shape of a dossier code or an id, else only its hash (a path may hold anything, a personal id too)."""
    if DOSSIER_CODE_RE.fullmatch(ref):
        return {"ref": ref}
    try:
        return {"ref": str(UUID(ref))}
    except ValueError:
        return {"ref_sha256": hashlib.sha256(ref.encode("utf-8", "replace")).hexdigest()[:32]}


async def audit(
    request: web.Request,
    action: str,
    *,
    allowed: bool = True,
    basis: str,
    dossier_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write one access record and wait for its commit: no data leaves without its record."""
    await request.app[STORE].audit([entry_of(request, action, allowed, basis, dossier_id, detail)])


def audit_later(
    request: web.Request, action: str, *, basis: str, detail: Mapping[str, Any] | None = None
) -> Awaitable[None]:
    """`audit` started now and awaited once the caller needs it (before any data leaves)."""
    return request.app[STORE].audit_later([entry_of(request, action, True, basis, None, detail)])


def entry_of(
    request: web.Request,
    action: str,
    allowed: bool,
    basis: str,
    dossier_id: str | None,
    detail: Mapping[str, Any] | None,
) -> AuditEntry:
    return AuditEntry(
        client_id=request[PRINCIPAL].client_id,
        action=action,
        outcome="allowed" if allowed else "denied",
        basis=basis,
        dossier_id=dossier_id,
        detail=dict(detail or {}),
    )
