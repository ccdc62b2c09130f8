"""The procedure catalog offered at the counters: plugin procedures with the operator's overrides."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from contracts import DocumentRule, ProcedureSpec
from gateway.config.model import Config, DocumentLimitsConf
from gateway.plugin_manager import Registry


def fold(text: str) -> str:
    """Lower-case without diacritics, so 'khai sinh' finds 'Khai sinh' and 'khai sinh' finds 'Khai sinh'."""
    norm = unicodedata.normalize("NFD", text.lower()).replace("đ", "d")
    return "".join(c for c in norm if unicodedata.category(c) != "Mn")


@dataclass(frozen=True)
class Catalog:
    procedures: dict[str, ProcedureSpec]

    @classmethod
    def build(cls, config: Config, registry: Registry) -> Catalog:
        out: dict[str, ProcedureSpec] = {}
        for entry in config.procedures:
            if not entry.enabled:
                continue
            spec = registry.procedures[entry.code]
            overrides: dict[str, Any] = {
                k: v
                for k, v in (
                    ("name", entry.name),
                    ("processing_days", entry.processing_days),
                    ("fees_vnd", entry.fees_vnd),
                    ("sector_code", entry.sector_code),
                    ("referral", entry.referral),
                    ("portal_databases", None if entry.portal_databases is None else tuple(entry.portal_databases)),
                )
                if v is not None
            }
            if entry.code in config.guides:
                overrides["guide"] = config.guides[entry.code]
            if entry.documents:
                overrides["documents"] = _documents(spec.documents, entry.documents)
            out[spec.code] = spec.model_copy(update=overrides) if overrides else spec
        return cls(out)

    def get(self, code: str) -> ProcedureSpec | None:
        return self.procedures.get(code)

    def search(self, *, agency_kind: str | None = None, q: str | None = None) -> list[ProcedureSpec]:
        """By agency (its kind, e.g. `land`, or words of the deciding agency's name in the guide, e.g. 'cong an')
        and keyword (code, name, sector, the guide's text), with or without diacritics."""
        needle = fold(q) if q else None
        agency = fold(agency_kind) if agency_kind else None
        found = [
            p
            for p in self.procedures.values()
            if (
                agency is None
                or p.agency_kind == agency_kind
                or (p.guide is not None and agency in fold(p.guide.agency))
            )
            and (needle is None or needle in _haystack(p))
        ]
        return sorted(found, key=lambda p: p.code)


def _haystack(p: ProcedureSpec) -> str:
    words = [p.code, p.name, p.sector]
    if p.guide is not None:
        g = p.guide
        words += [g.summary, g.agency, g.where, g.result, *(d.name for d in g.documents)]
    return fold(" ".join(words))


def _documents(rules: tuple[DocumentRule, ...], limits: dict[str, DocumentLimitsConf]) -> tuple[DocumentRule, ...]:
    """The plugin's rules with the operator's limits laid over them; a component only the operator names is added."""
    by_code = {r.component_code: r for r in rules}
    for code, conf in limits.items():
        rule = by_code.get(code) or DocumentRule(component_code=code)
        update = {k: v for k, v in (("max_bytes", conf.max_bytes), ("media_types", conf.media_types)) if v is not None}
        by_code[code] = rule.model_copy(update=update)
    return tuple(by_code.values())
