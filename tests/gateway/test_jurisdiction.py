"""Where a case lies, from its form (ProcedureSpec.jurisdiction_field): the general rule any plugin's
procedure bound to a place uses, checked here on the land and tax procedures and on a made-up one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts import DossierSubmission, FormModel, ProcedureSpec
from gateway.intake import requirement_errors
from gateway.jurisdiction import jurisdiction_errors, places
from plugins.land.demo import demo_dossiers as land_dossiers
from plugins.land.procedures import by_code as land_procedures
from plugins.tax.demo import demo_dossiers as tax_dossiers
from plugins.tax.procedures import by_code as tax_procedures


def test_places_walks_lists_and_objects() -> None:
    form = {"parcels": [{"address": {"province": "01"}}, {"address": {"province": "79"}}], "parcel": {"province": "48"}}
    assert list(places(form, "parcels[].address")) == [
        ("form.parcels.0.address", {"province": "01"}),
        ("form.parcels.1.address", {"province": "79"}),
    ]
    assert list(places(form, "parcel")) == [("form.parcel", {"province": "48"})]
    assert list(places(form, "missing[].address")) == []
    assert list(places({"parcels": "not a list"}, "parcels[].address")) == []


def land(**jurisdiction: str) -> tuple[ProcedureSpec, DossierSubmission]:
    body = land_dossiers(5, 1)[0]
    province = body["form"]["parcels"][0]["address"]["province"]
    commune = body["form"]["parcels"][0]["address"]["commune"]
    body["jurisdiction"] = {"province": province, "commune": commune} | jurisdiction
    sub = DossierSubmission.model_validate(body)
    return land_procedures()[sub.procedure_code], sub


def test_a_land_dossier_whose_parcels_agree() -> None:
    spec, sub = land()
    assert spec.jurisdiction_field == "parcels[].address"
    assert jurisdiction_errors(spec, sub) == [] and requirement_errors(spec, sub) == []


def test_the_province_declared_must_be_the_parcels() -> None:
    spec, sub = land(province="31", commune="11311")
    [error] = jurisdiction_errors(spec, sub)
    assert (error.path, error.code) == ("jurisdiction.province", "jurisdiction_disagrees")
    assert error.message.endswith("not in 31 (Thành phố Hải Phòng)")


def test_without_a_commune_declared_the_province_is_enough() -> None:
    spec, sub = land()
    body = sub.model_dump(mode="json")
    body["jurisdiction"].pop("commune")
    assert jurisdiction_errors(spec, DossierSubmission.model_validate(body)) == []


def test_a_tax_declaration_lies_where_its_parcel_does() -> None:
    body = tax_dossiers(3, 1)[0]
    spec = tax_procedures()[body["procedure_code"]]
    assert spec.jurisdiction_field == "parcel"
    assert jurisdiction_errors(spec, DossierSubmission.model_validate(body)) == []
    other = "79" if body["form"]["parcel"]["province"] != "79" else "01"
    body["jurisdiction"] = {"province": other}
    [error] = jurisdiction_errors(spec, DossierSubmission.model_validate(body))
    assert error.path == "jurisdiction.province"


class Site(FormModel):
    sites: list[dict[str, Any]]


@pytest.mark.parametrize(
    ("sites", "expected"),
    [
        ([{"where": {"province": "01"}}, {"where": {"province": "01"}}], []),
        (
            [{"where": {"province": "01"}}, {"where": {"province": "48"}}],
            [("form.sites.1.where.province", "places_in_two_provinces")],
        ),
        ([{"other": 1}], []),  # nothing to go by: the declared jurisdiction stands
    ],
)  # fmt: skip
def test_any_plugin_can_bind_a_procedure_to_a_form_field(sites: list[dict[str, Any]], expected: list[Any]) -> None:
    spec = ProcedureSpec(
        code="1.999001",
        name="Cấp phép xây dựng",
        sector="Xây dựng",
        agency_kind="construction",
        processing_days=15,
        form_model=Site,
        jurisdiction_field="sites[].where",
    )
    sub = DossierSubmission.model_validate(
        {
            "procedure_code": "1.999001",
            "applicant": land_dossiers(5, 1)[0]["applicant"],
            "jurisdiction": {"province": "01"},
            "summary": "Giấy phép xây dựng",
            "form": {"sites": sites},
        }
    )
    assert [(e.path, e.code) for e in jurisdiction_errors(spec, sub)] == expected


def test_a_path_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="jurisdiction_field"):
        ProcedureSpec(
            code="1.999001", name="x", sector="x", agency_kind="x", processing_days=1, jurisdiction_field="a..b"
        )
