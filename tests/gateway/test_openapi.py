"""The committed OpenAPI document is fresh, is what the gateway serves, documents every /v1 route, and its
success schemas fit real answers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.api.openapi import OPENAPI_PATH, main, render
from gateway.api.receipts import JOSE
from tests.gateway.conftest import GatewayHarness
from tests.gateway.test_smoke import wait_status


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


def conforms(doc: dict[str, Any], method: str, path: str, status: int, media: str, body: Any) -> None:
    """`body` fits the document's schema of that answer (its `$ref`s resolved in the document)."""
    schema = doc["paths"][path][method]["responses"][str(status)]["content"][media]["schema"]
    validator = Draft202012Validator({"components": doc["components"], "allOf": [schema]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, (method, path, errors[:5])


@pytest.mark.parametrize("gateway_env", [{"LIENTHONG_SIGNING_KEY": base64.b64encode(bytes(range(32))).decode()}])
async def test_answers_with_data_fit_their_schemas(
    harness: GatewayHarness, committed: str, submission: Callable[[int], dict[str, Any]]
) -> None:
    """The answers the fuzz run mostly sees empty, here with a delivered dossier behind them: receipts and
    signatures, the public catalog, KPIs, the league, attempts and the timeline; their media types and
    headers as documented."""
    doc = json.loads(committed)
    resp = await harness.client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
    did, code = (await resp.json())["id"], (await resp.json())["code"]
    assert (await wait_status(harness, did, 9))["status"] == 9
    centre, op = harness.headers(), harness.headers("operator")

    async def check(path: str, url: str, who: dict[str, str], media: str = "application/json") -> Any:
        r = await harness.client.get(url, headers=who)
        assert r.status == 200 and r.content_type == media, (url, r.status, await r.text())
        documented = doc["paths"][path]["get"]["responses"]["200"]
        for name, header in documented["headers"].items():
            assert not header.get("required") or name in r.headers, (url, name)
        if media != "application/json":
            assert media in documented["content"], (url, media)
            return await r.text()
        body = await r.json()
        conforms(doc, "get", path, 200, media, body)
        return body

    receipt = await check("/v1/dossiers/{ref}/receipt", f"/v1/dossiers/{did}/receipt", centre)
    assert receipt["dossier_code"] == code and receipt["documents"]
    jws = await check("/v1/dossiers/{ref}/receipt/signature", f"/v1/dossiers/{did}/receipt/signature", centre, JOSE)
    jose = doc["paths"]["/v1/dossiers/{ref}/receipt/signature"]["get"]["responses"]["200"]["content"][JOSE]
    assert re.fullmatch(jose["schema"]["pattern"], jws)
    await check("/v1/dossiers/{ref}/receipt/page", f"/v1/dossiers/{did}/receipt/page", centre, "text/html")
    verdict = await check("/v1/verify", f"/v1/verify?signature={jws}", {})
    assert verdict["valid"] is True and verdict["signed"]["dossier"] == code
    assert (await check("/v1/verify/keys", "/v1/verify/keys", {}))["keys"]
    catalog = await check("/v1/public/procedures", "/v1/public/procedures", {})
    one = catalog["items"][0]["code"]
    await check("/v1/public/procedures/{code}", f"/v1/public/procedures/{one}", {})
    lines = await check("/v1/admin/kpis", "/v1/admin/kpis", op)
    assert lines["items"] and lines["items"][0]["received"] >= 1
    assert "received" in await check("/v1/admin/kpis", "/v1/admin/kpis?format=csv", op, "text/csv")
    series = await check("/v1/admin/kpis/series", "/v1/admin/kpis/series?bucket=day", op)
    assert series["items"][0]["points"]
    for who in (op, centre):  # an operator sees every row's figures, a centre its own
        league = await check("/v1/kpis/league", "/v1/kpis/league", who)
        assert any("figures" in row for row in league["items"])
    tried = await check("/v1/admin/attempts", f"/v1/admin/attempts?dossier={did}&bodies=true", op)
    assert tried["items"][0]["outcome"] == "delivered" and tried["items"][0]["request_body"]
    timeline = await check("/v1/admin/dossiers/{ref}/timeline", f"/v1/admin/dossiers/{did}/timeline", op)
    assert {i["kind"] for i in timeline["items"]} == {"event", "attempt"}
    for path in ("/v1/appointments", "/v1/appointments/events", "/v1/payments"):
        await check(path, path, centre)
    r = await harness.client.post(
        "/v1/admin/deliveries/rerun", json={"state": "done", "dossier": did, "dry_run": True}, headers=op
    )
    assert r.status == 200
    conforms(doc, "post", "/v1/admin/deliveries/rerun", 200, "application/json", await r.json())
    assert (await r.json())["matched"] == 1
