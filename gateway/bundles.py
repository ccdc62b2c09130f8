"""Bundle specifications and the derived state of a bundle from its steps."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts import DossierStatus
from contracts.base import ProcedureCode
from contracts.bundle import BundleAction, BundleState, BundleStepView

_REF = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class BundleStepSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    procedure: ProcedureCode
    title: str = ""
    optional: bool = False
    inputs: dict[str, str] = Field(
        default_factory=dict, description='name -> "step.output" from an earlier step, e.g. birth.child_personal_id'
    )

    @field_validator("inputs")
    @classmethod
    def _refs(cls, v: dict[str, str]) -> dict[str, str]:
        for name, ref in v.items():
            if not _REF.match(ref):
                raise ValueError(f"input {name!r} must name an earlier step's output as step.output, not {ref!r}")
        return v


class BundleSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    step: list[BundleStepSpec] = Field(min_length=2)
    min_steps: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _order(self) -> BundleSpec:
        seen: set[str] = set()
        for s in self.step:
            for ref in s.inputs.values():
                if ref.split(".")[0] not in seen:
                    raise ValueError(f"step {s.id!r} takes {ref!r} from a step that does not come before it")
            if s.id in seen:
                raise ValueError(f"step {s.id!r} is listed twice")
            seen.add(s.id)
        return self

    def choose(self, chosen: list[str] | None) -> list[BundleStepSpec]:
        """The steps to run, in bundle order; ValueError with a readable message for a bad choice."""
        ids = [s.id for s in self.step]
        if chosen is None:
            return list(self.step)
        unknown = [c for c in chosen if c not in ids]
        if unknown:
            raise ValueError(f"unknown steps {unknown}; this bundle has {ids}")
        steps = [s for s in self.step if s.id in chosen]
        missing = [s.id for s in self.step if not s.optional and s.id not in chosen]
        if missing:
            raise ValueError(f"steps {missing} cannot be left out")
        if len(steps) < self.min_steps:
            raise ValueError(f"choose at least {self.min_steps} steps")
        chosen_ids = {s.id for s in steps}
        for s in steps:
            for ref in s.inputs.values():
                if ref.split(".")[0] not in chosen_ids:
                    raise ValueError(f"step {s.id!r} needs {ref!r}: choose step {ref.split('.')[0]!r} too")
        return steps


_DONE = frozenset({DossierStatus.FINISHED, DossierStatus.RETURNED})
_REFUSED = frozenset({DossierStatus.REJECTED, DossierStatus.STOPPED})  # the agency said no: nothing to retry
_OVER = _DONE | _REFUSED | {DossierStatus.WITHDRAWN}


def derive_state(steps: list[BundleStepView]) -> tuple[BundleState, list[BundleAction]]:
    """A bundle's state is never stored: it follows from its steps, and so do the actions it allows.

    `cancel_remaining` cancels the steps not yet with an agency (waiting, or dead-lettered); a step an
    agency holds runs on. `retry` delivers dead-lettered steps again. `supplement` is answered on the
    step's dossier (POST /v1/dossiers/{id}/supplements).
    """
    if all(s.status in _DONE for s in steps):
        return "completed", []
    cancel: list[BundleAction] = ["cancel_remaining"] if any(s.delivery in ("waiting", "dead") for s in steps) else []
    if any(s.delivery == "dead" for s in steps):
        return "action_required", ["retry", *cancel]
    if any(s.status in _REFUSED for s in steps) and cancel:
        return "action_required", cancel
    if any(s.status == DossierStatus.SUPPLEMENT_REQUESTED for s in steps):
        return "supplement_requested", ["supplement", *cancel]
    running = any(s.delivery != "cancelled" and s.status not in _OVER for s in steps)
    if running:
        return "in_progress", cancel
    if any(s.delivery == "cancelled" for s in steps):
        return "cancelled", []
    return "stopped", []
