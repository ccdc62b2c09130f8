"""Accepting a dossier: validate (contract, form, catalog rules), route, then one durable transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts import DossierSubmission, ProcedureSpec
from contracts.bundle import BundleSubmission
from contracts.calendar import VN_TZ
from contracts.dossier import ReturnMethod
from gateway.auth import Principal
from gateway.bundles import BundleSpec
from gateway.catalog import Catalog
from gateway.documents.intake import DocumentIntake, Taken
from gateway.errors import FieldError, NoRoute, PayloadTooLarge, ValidationFailed
from gateway.ids import new_id
from gateway.jurisdiction import jurisdiction_errors
from gateway.live import Live
from gateway.rights import check_dossier
from gateway.routing import RouteTable
from gateway.store.base import CreateOutcome, NewBundle, NewBundleStep, NewDossier, Store

# Tags of discriminated unions appear in pydantic's error locations but are not fields of the JSON.
_UNION_TAGS = frozenset({"person", "organisation"})


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = [p for i, p in enumerate(err["loc"]) if not (p in _UNION_TAGS and i > 0)]
        path = ".".join(str(p) for p in (*([prefix] if prefix else []), *loc))
        msg = err["msg"].removeprefix("Value error, ")
        out.append(FieldError(path or "$", msg, err["type"]))
    return out


def requirement_errors(spec: ProcedureSpec, sub: DossierSubmission) -> list[FieldError]:
    """What the procedure asks beyond the contract: its form's fields, the place the case lies (for a
    procedure bound to one) and the documents it requires."""
    errors: list[FieldError] = []
    try:
        spec.form_model.model_validate(sub.form)
    except ValidationError as exc:
        errors.extend(field_errors(exc, "form"))
    else:
        errors.extend(jurisdiction_errors(spec, sub))
    present = {a.component_code for a in sub.attachments}
    for code in spec.required_components:
        if code not in present:
            errors.append(FieldError("attachments", f"document {code!r} is required for this procedure", "missing"))
    return errors


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _step_path(step: str, path: str) -> str:
    """Errors of one step's dossier, told in terms of the bundle submission's fields."""
    for field in ("form", "attachments"):
        if path == field or path.startswith(field + "."):
            return (
                f"{field}s.{step}{path[len(field) :]}" if field == "form" else f"attachments.{step}{path[len(field) :]}"
            )
    return path


class Intake:
    """Reads the catalog, routes and bundles from the live configuration at each use: a reload replaces
    them whole, and one submission's checks, all synchronous, see one of them."""

    def __init__(
        self,
        store: Store,
        live: Live,
        max_inline_bytes: int,
        documents: DocumentIntake | None = None,
        in_progress: int = 256,
    ) -> None:
        self.store = store
        self.live = live
        self.max_inline_bytes = max_inline_bytes
        self.documents = documents
        # Submissions parsed, checked and waiting for their commit at once (`limits.submissions_in_progress`,
        # a few writer batches). The others wait with their body unparsed (a few KiB, where a parsed and
        # checked submission holds more): measured with 1,000 clients submitting together, the same rate and
        # a peak RSS about 16 MiB lower than with no limit.
        self.in_progress = in_progress
        self.slots = asyncio.Semaphore(in_progress)

    @property
    def catalog(self) -> Catalog:
        return self.live.current.catalog

    @property
    def routes(self) -> RouteTable:
        return self.live.current.routes

    @property
    def bundles(self) -> dict[str, BundleSpec]:
        bundles: dict[str, BundleSpec] = self.live.current.config.bundles
        return bundles

    def validate(self, raw: object) -> DossierSubmission:
        try:
            sub = DossierSubmission.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed("the dossier has invalid fields", errors=field_errors(exc)) from None
        spec = self.catalog.get(sub.procedure_code)
        if spec is None:
            raise ValidationFailed(
                f"procedure {sub.procedure_code} is not offered here",
                errors=[FieldError("procedure_code", "not in the procedure catalog", "unknown_procedure")],
            )
        errors = requirement_errors(spec, sub)
        if sub.return_method == ReturnMethod.WALLET and self.live.current.config.gateway.wallet is None:
            errors.append(FieldError("return_method", "this gateway has no VNeID wallet service", "wallet_unavailable"))
        if errors:
            raise ValidationFailed("the dossier does not meet the procedure's requirements", errors=errors)
        inline = sum(a.inline_bytes for a in sub.attachments)
        if inline > self.max_inline_bytes:
            raise PayloadTooLarge(
                f"inline attachments total {inline} bytes; the limit is {self.max_inline_bytes}: "
                "send larger documents by url"
            )
        return sub

    def _new_dossier(
        self, principal: Principal, sub: DossierSubmission, now: datetime, body: bytes, key: str | None
    ) -> NewDossier:
        live = self.live.current  # one configuration for the whole dossier: catalog, routes, calendar
        spec = live.catalog.get(sub.procedure_code)
        assert spec is not None  # validate() checked it
        conf = principal.conf
        # The procedure right first: a client learns nothing of routes for procedures it may not use.
        check_dossier(
            principal.client_id,
            conf.rights,
            conf.province,
            procedure=spec.code,
            agency=None,
            bound=spec.jurisdiction == "province",
            case_province=sub.jurisdiction.province,
        )
        try:
            target = live.routes.resolve(sub.procedure_code, sub.jurisdiction)
        except NoRoute as exc:
            exc.errors = [FieldError("jurisdiction.province", exc.detail, "no_route")]
            raise
        check_dossier(
            principal.client_id,
            conf.rights,
            conf.province,
            procedure=spec.code,
            agency=target.agency,
            bound=spec.jurisdiction == "province",
            case_province=sub.jurisdiction.province,
        )
        unit = principal.conf.unit
        assert unit is not None  # the config requires a unit for the submit scope
        return NewDossier(
            id=new_id(),
            receiving_unit=unit,
            day=now.astimezone(VN_TZ).date(),
            procedure_code=spec.code,
            procedure_name=spec.name,
            client_id=principal.client_id,
            agency=target.agency,
            endpoint=target.endpoint,
            received_at=now,
            due_at=live.calendar.add_working_days(now, spec.processing_days),
            submission=sub.model_dump(mode="json"),
            idempotency_key=key,
            body_hash=body_hash(body),
        )

    async def _with_documents(
        self, principal: Principal, sub: DossierSubmission, new: NewDossier, prefix: str
    ) -> tuple[NewDossier, Taken]:
        """The dossier with its attachments taken in: references in the submission and in its rows."""
        if self.documents is None:
            raise RuntimeError("this intake was built without a document store: it only validates and routes")
        taken = await self.documents.take(
            principal.client_id, self.catalog.get(sub.procedure_code), sub.attachments, prefix
        )
        submission = {**new.submission, "attachments": taken.attachments}
        return dataclasses.replace(new, submission=submission, documents=tuple(taken.refs)), taken

    async def _discard(self, taken: Taken) -> None:
        if self.documents is not None:
            await self.documents.discard(taken)

    async def submit(
        self, principal: Principal, raw: object, body: bytes, idempotency_key: str | None
    ) -> CreateOutcome:
        sub = self.validate(raw)
        new = self._new_dossier(principal, sub, datetime.now(UTC), body, idempotency_key)
        new, taken = await self._with_documents(principal, sub, new, "attachments")
        try:
            return await self.store.create_dossier(new)
        except BaseException:
            await self._discard(taken)
            raise

    async def submit_bundle(
        self, principal: Principal, raw: object, body: bytes, idempotency_key: str | None
    ) -> tuple[uuid.UUID, bool]:
        try:
            sub = BundleSubmission.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed("the bundle has invalid fields", errors=field_errors(exc)) from None
        spec = self.bundles.get(sub.bundle)
        if spec is None:
            raise ValidationFailed(
                f"no bundle {sub.bundle!r}",
                errors=[
                    FieldError(
                        "bundle", f"known bundles: {', '.join(sorted(self.bundles)) or 'none'}", "unknown_bundle"
                    )
                ],
            )
        try:
            steps = spec.choose(sub.steps)
        except ValueError as exc:
            raise ValidationFailed(str(exc), errors=[FieldError("steps", str(exc), "invalid_choice")]) from None
        unknown = set(sub.forms) - {s.id for s in steps}
        if unknown:
            raise ValidationFailed(
                "forms for steps that are not chosen",
                errors=[
                    FieldError(f"forms.{u}", "this step is not part of the submission", "unknown_step") for u in unknown
                ],
            )
        now = datetime.now(UTC)
        errors: list[FieldError] = []
        new_steps: list[NewBundleStep] = []
        subs: list[DossierSubmission] = []
        shared = sub.model_dump(
            mode="json",
            include={"channel", "applicant", "jurisdiction", "return_method", "wallet_consent", "external_ref"},
        )
        for step in steps:
            step_raw = {
                **shared,
                "procedure_code": step.procedure,
                "summary": f"{sub.summary} ({step.title or step.id})"[:1000],
                "form": sub.forms.get(step.id, {}),
                "attachments": [a.model_dump(mode="json") for a in sub.attachments.get(step.id, [])],
            }
            try:
                dsub = self.validate(step_raw)
                new_steps.append(
                    NewBundleStep(step.id, self._new_dossier(principal, dsub, now, body, None), dict(step.inputs))
                )
                subs.append(dsub)
            except ValidationFailed as exc:
                errors.extend(FieldError(_step_path(step.id, e.path), e.message, e.code) for e in exc.errors)
        if errors:
            raise ValidationFailed("some steps of the bundle have invalid fields", errors=errors)
        taken: list[Taken] = []
        try:
            for i, (new_step, dsub) in enumerate(zip(new_steps, subs, strict=True)):
                new, got = await self._with_documents(principal, dsub, new_step.dossier, f"attachments.{new_step.step}")
                taken.append(got)
                new_steps[i] = dataclasses.replace(new_step, dossier=new)
            return await self.store.create_bundle(
                NewBundle(
                    id=new_id(),
                    spec=spec.id,
                    name=spec.name,
                    client_id=principal.client_id,
                    created_at=now,
                    steps=new_steps,
                    idempotency_key=idempotency_key,
                    body_hash=body_hash(body),
                )
            )
        except BaseException:
            for got in taken:
                await self._discard(got)
            raise
