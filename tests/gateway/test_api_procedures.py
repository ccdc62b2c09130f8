"""GET /v1/procedures: search by agency kind and by keyword (diacritics ignored); one procedure's form schema."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_api_errors import assert_problem


async def _codes(h: GatewayHarness, query: str) -> list[str]:
    resp = await h.client.get(f"/v1/procedures{query}", headers=h.headers("portal"))
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return [p["code"] for p in body["items"]]


async def test_whole_catalog(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/procedures", headers=harness.headers())
    items = (await resp.json())["items"]
    assert [p["code"] for p in items] == ["1.004194", "1.004203"]
    first = items[0]
    assert first["agency_kind"] == "police"
    assert first["processing_days"] == 7
    assert first["required_components"] == ["TK01"]
    assert "form_schema" not in first and "form_model" not in first


@pytest.mark.parametrize(("agency", "expected"), [("police", ["1.004194", "1.004203"]), ("land", [])])
async def test_search_by_agency(harness: GatewayHarness, agency: str, expected: list[str]) -> None:
    assert await _codes(harness, f"?agency={agency}") == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("thuong tru", ["1.004194"]),
        ("thường trú", ["1.004194"]),
        ("THUONG TRU", ["1.004194"]),
        ("tam tru", ["1.004203"]),
        ("dang ky", ["1.004194", "1.004203"]),
        ("quan ly cu tru", ["1.004194", "1.004203"]),  # the sector
        ("1.004203", ["1.004203"]),
        ("khai sinh", []),
    ],
)
async def test_search_by_keyword_without_diacritics(harness: GatewayHarness, q: str, expected: list[str]) -> None:
    assert await _codes(harness, f"?q={q}") == expected


async def test_agency_and_keyword_combine(harness: GatewayHarness) -> None:
    assert await _codes(harness, "?agency=police&q=tam%20tru") == ["1.004203"]
    assert await _codes(harness, "?agency=land&q=tam%20tru") == []


async def test_one_procedure_has_its_form_schema(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/procedures/1.004203", headers=harness.headers())
    assert resp.status == 200
    spec = await resp.json()
    assert spec["name"] == "Đăng ký tạm trú (temporary residence registration)"
    assert spec["processing_days"] == 3
    schema = spec["form_schema"]
    assert schema["title"] == "ResidenceRegistrationForm"
    assert sorted(schema["required"]) == ["legal_basis", "new_address"]
    assert schema["properties"]["legal_basis"]["enum"] == ["own_house", "relative_house", "rented_house", "other"]
    assert schema["additionalProperties"] is False


async def test_unknown_procedure_is_404(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/procedures/1.000001", headers=harness.headers())
    problem = await assert_problem(resp, 404, "not-found")
    assert problem["detail"] == "procedure 1.000001 is not in the catalog"
