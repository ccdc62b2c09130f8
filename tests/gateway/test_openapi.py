"""The committed OpenAPI document is fresh, is what the gateway serves, and documents every /v1 route."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gateway.api.openapi import OPENAPI_PATH, main, render
from tests.gateway.conftest import GatewayHarness


@pytest.fixture(scope="module")
def committed() -> str:
    return OPENAPI_PATH.read_text(encoding="utf-8")


def test_committed_document_is_fresh(committed: str) -> None:
    assert committed == render(), "gateway/api/openapi.json is stale: run python -m gateway.api.openapi"


def test_check_mode(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["openapi", "--check"])
    assert main() == 0
    assert capsys.readouterr().err == ""


def test_document_basics(committed: str) -> None:
    doc = json.loads(committed)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    problem = doc["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]
    submit = doc["paths"]["/v1/dossiers"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DossierSubmission"
    }
    assert {"202", "200", "409", "413", "415", "422"} <= set(submit["responses"])
    assert submit["responses"]["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


async def test_served_document_equals_the_committed_one(harness: GatewayHarness, committed: str) -> None:
    resp = await harness.client.get("/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    served: dict[str, Any] = await resp.json()
    assert served == json.loads(committed)


async def test_every_v1_route_is_documented(harness: GatewayHarness, committed: str) -> None:
    documented = {(path, method.upper()) for path, ops in json.loads(committed)["paths"].items() for method in ops}
    served = set()
    for route in harness.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/v1/") and path != "/v1/openapi.json" and route.method != "HEAD":
            served.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), route.method))
    assert served - documented == set()
    assert documented - served == set()


def test_every_operation_has_an_id_a_success_schema_and_the_correlation_header(committed: str) -> None:
    doc = json.loads(committed)
    ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
            assert successes, (method, path)
            for status, response in successes.items():
                assert response.get("content"), f"{method} {path} {status} has no schema"
                assert "X-Correlation-ID" in response["headers"]
            assert any(p["name"] == "X-Correlation-ID" for p in op["parameters"])
    assert len(ids) == len(set(ids))
    submit = doc["paths"]["/v1/dossiers"]["post"]["responses"]
    assert "Idempotent-Replayed" in submit["200"]["headers"] and "Location" in submit["202"]["headers"]
    assert "Location" in doc["paths"]["/v1/dossiers/{ref}/results/{index}"]["get"]["responses"]["302"]["headers"]
    listing = doc["paths"]["/v1/dossiers"]["get"]["parameters"]
    assert any(p["name"] == "client" for p in listing)
    assert {p["name"] for p in doc["paths"]["/v1/admin/deliveries"]["get"]["parameters"]} >= {
        "state",
        "agency",
        "since",
        "limit",
    }
