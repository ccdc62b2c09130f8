"""Where a case lies, from its form: the rule for procedures bound to a place (land by its parcels).

A procedure names the form field that decides it (`ProcedureSpec.jurisdiction_field`, e.g.
"parcels[].address"): every object found there (with `province`, and `commune` when known) is a place
the case lies in. They must all be in one province, and the dossier's declared jurisdiction must be that
province (and, when it names a commune, one of theirs). Routing then follows the declared jurisdiction,
which is the parcels': a dossier goes to the office of the province where its land lies, whatever centre
received it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts import DossierSubmission, ProcedureSpec
from contracts.admin_units import provinces
from gateway.errors import FieldError


def places(form: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(field path in the submission, object) for each object at `path` in the form."""

    def walk(value: Any, parts: list[str], where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if not parts:
            if isinstance(value, Mapping):
                yield where, value
            return
        key, many = parts[0].removesuffix("[]"), parts[0].endswith("[]")
        if not isinstance(value, Mapping) or value.get(key) is None:
            return
        inner = value[key]
        if many:
            for i, item in enumerate(inner if isinstance(inner, list) else []):
                yield from walk(item, parts[1:], f"{where}.{key}.{i}")
        else:
            yield from walk(inner, parts[1:], f"{where}.{key}")

    yield from walk(form, path.split("."), "form")


def _name(code: str) -> str:
    unit = provinces().get(code)
    return f"{code} ({unit.name})" if unit else code


def jurisdiction_errors(spec: ProcedureSpec, sub: DossierSubmission) -> list[FieldError]:
    if spec.jurisdiction_field is None:
        return []
    found = [(where, p) for where, p in places(sub.form, spec.jurisdiction_field) if p.get("province")]
    if not found:
        return []  # e.g. a bundle's later step, whose places an earlier step of the same jurisdiction had
    first_where, first = found[0]
    province = str(first["province"])
    elsewhere = [(w, p) for w, p in found if str(p["province"]) != province]
    if elsewhere:
        where, other = elsewhere[0]
        return [
            FieldError(
                f"{where}.province",
                f"lies in province {_name(str(other['province']))} while {first_where} lies in "
                f"{_name(province)}: one dossier per province",
                "places_in_two_provinces",
            )
        ]
    declared = sub.jurisdiction
    if declared.province != province:
        return [
            FieldError(
                "jurisdiction.province",
                f"the case lies in province {_name(province)} ({first_where}), not in {_name(declared.province)}",
                "jurisdiction_disagrees",
            )
        ]
    communes = {str(p["commune"]) for _, p in found if p.get("commune")}
    if declared.commune is not None and communes and declared.commune not in communes:
        return [
            FieldError(
                "jurisdiction.commune",
                f"commune {declared.commune} is not where the case lies ({', '.join(sorted(communes))})",
                "jurisdiction_disagrees",
            )
        ]
    return []
