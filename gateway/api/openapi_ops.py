"""Completes the OpenAPI document for tools and generated clients: an `operationId` on every operation,
the success schema of every JSON answer, the parameters and headers the handlers read and write
(`?client=`, the admin filters, `X-Correlation-ID`, `Location`, `Idempotent-Replayed`, `Repr-Digest`).
Kept apart from openapi.py (the operations' prose) so the two read separately; checked against a live
gateway by schemathesis (tests/gateway/test_openapi_fuzz.py)."""

from __future__ import annotations

import copy
import re
from typing import Any

from contracts.procedure import ProcedureSpec

JSON = "application/json"
CORRELATION = {
    "name": "X-Correlation-ID",
    "in": "header",
    "schema": {"type": "string", "maxLength": 64},
    "description": "echoed on the answer and sent to agencies with the calls it causes; generated when absent",
}
CORRELATION_OUT = {"schema": {"type": "string"}, "description": "the request's correlation id"}
LOCATION = {"schema": {"type": "string"}, "description": "where the created resource is"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _items(schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return _obj(["items", *more], {"items": {"type": "array", "items": schema}, **more})


NULLABLE_STRING = {"type": ["string", "null"]}
COMPONENTS: dict[str, Any] = {
    "DossierSummary": _obj(
        ["id", "code", "status", "status_label", "due_at", "agency"],
        {
            "id": {"type": "string", "format": "uuid"},
            "code": {"type": "string"},
            "status": {"type": "integer", "minimum": 0, "maximum": 10},
            "status_label": {"type": "string"},
            "due_at": {"type": "string", "format": "date-time"},
            "agency": {"type": "string"},
            "delivery": _obj(
                ["state", "attempts"],
                {"state": {"type": "string"}, "attempts": {"type": "integer"}, "last_error": NULLABLE_STRING},
            ),
        },
    ),
    "Job": _obj(
        ["id", "dossier_id", "agency", "endpoint", "step", "state", "attempts"],
        {
            "id": {"type": "integer"},
            "dossier_id": {"type": "string"},
            "agency": {"type": "string"},
            "endpoint": {"type": "string"},
            "step": {"type": "string"},
            "state": {"type": "string"},
            "attempts": {"type": "integer"},
            "last_error": NULLABLE_STRING,
        },
    ),
    "AuditRecord": _obj(
        ["seq", "at", "client", "action", "outcome", "basis", "hash", "prev_hash"],
        {
            "seq": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "client": {"type": "string"},
            "action": {"type": "string"},
            "outcome": {"type": "string", "enum": ["allowed", "denied"]},
            "basis": {"type": "string"},
            "dossier_id": NULLABLE_STRING,
            "detail": {"type": "object"},
            "prev_hash": {"type": "string"},
            "hash": {"type": "string"},
        },
    ),
    "EndpointState": {
        "type": "object",
        "required": ["agency", "endpoint", "state"],
        "properties": {
            "agency": {"type": "string"},
            "endpoint": {"type": "string"},
            "state": {"type": "string", "enum": ["closed", "open", "half-open", "maintenance", "paused"]},
            "pending": {"type": "integer"},
            "held": {"type": "integer"},
        },
    },
}
BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
# (method, path) -> the success answer's JSON schema, where openapi.py gives none.
SUCCESS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/dossiers"): _items(_ref("DossierSummary")),
    ("get", "/v1/dossiers/{ref}/events"): _obj(
        ["dossier_id", "code", "status", "events"],
        {
            "dossier_id": {"type": "string", "format": "uuid"},
            "code": {"type": "string"},
            "status": {"type": "integer"},
            "events": {"type": "array", "items": _ref("StatusEvent")},
        },
    ),
    ("get", "/v1/procedures"): _items(_ref("ProcedureSpec")),
    ("get", "/v1/procedures/{code}"): _ref("ProcedureWithForm"),
    ("get", "/v1/lookups"): _items(
        _obj(
            ["name", "agency", "input_schema"],
            {
                "name": {"type": "string"},
                "agency": {"type": "string"},
                "description": {"type": "string"},
                "input_schema": {"type": "object"},
            },
        )
    ),
    ("post", "/v1/lookups/{name}"): {"type": "object", "description": "the agency's answer, as its plugin maps it"},
    ("post", "/v1/callbacks/{agency}"): _obj(
        ["received", "applied"], {"received": {"type": "integer"}, "applied": {"type": "integer"}}
    ),
    ("post", "/v1/bundles/{ref}/retry"): _obj(["retried"], {"retried": {"type": "integer"}, "bundle": {}}),
    ("post", "/v1/bundles/{ref}/cancel"): _obj(["cancelled"], {"cancelled": {"type": "integer"}, "bundle": {}}),
    ("get", "/v1/admin/deliveries"): _items(_ref("Job")),
    ("post", "/v1/admin/deliveries/replay"): _obj(["replayed"], {"replayed": {"type": "integer"}}),
    ("get", "/v1/admin/overview"): _obj(
        ["dossiers_by_status", "jobs_by_state", "agencies", "endpoints", "delivered_total", "dead"],
        {
            "dossiers_by_status": {"type": "array", "items": {"type": "object"}},
            "overdue": {"type": "integer"},
            "undeliverable": {"type": "integer"},
            "jobs_by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
            "agencies": {"type": "array", "items": {"type": "object"}},
            "endpoints": {"type": "array", "items": _ref("EndpointState")},
            "delivered_total": {"type": "integer"},
            "dead": {"type": "array", "items": {"type": "object"}},
        },
    ),
    ("post", "/v1/admin/reload"): {
        "type": "object",
        "description": "a reload: `reloaded` and what `changed`; a dry run: `dry_run`, the `changes` and their `lines`",
        "properties": {
            "reloaded": {"type": "boolean"},
            "changed": {"type": "object", "properties": {"diff": {"type": "array", "items": {"type": "string"}}}},
            "dry_run": {"type": "boolean"},
            "would_reload": {"type": "boolean"},
            "restart_needed": {"type": "array", "items": {"type": "string"}},
            "changes": {"type": "array", "items": {"type": "object"}},
            "lines": {"type": "array", "items": {"type": "string"}},
        },
    },
    ("get", "/v1/admin/audit"): _items(_ref("AuditRecord"), next_after={"type": "integer"}),
    ("get", "/v1/admin/audit/verify"): _obj(
        ["ok", "checked", "problems", "head", "sealed"],
        {
            "ok": {"type": "boolean"},
            "checked": {"type": "integer"},
            "first_bad": {"type": ["integer", "null"]},
            "reason": NULLABLE_STRING,
            "problems": {"type": "array", "items": {"type": "string"}},
            "head": _obj(["seq", "hash"], {"seq": {"type": "integer"}, "hash": {"type": "string"}}),
            "sealed": {"type": "boolean"},
            "checkpoint": {"type": ["object", "null"]},
        },
    ),
    ("get", "/v1/admin/agencies"): _items(_ref("EndpointState")),
    ("post", "/v1/admin/agencies/{agency}/pause"): _obj(
        ["paused", "endpoints"],
        {"paused": {"type": "object"}, "endpoints": {"type": "array", "items": _ref("EndpointState")}},
    ),
    ("post", "/v1/admin/agencies/{agency}/resume"): _obj(
        ["resumed", "endpoints"],
        {"resumed": {"type": "integer"}, "endpoints": {"type": "array", "items": _ref("EndpointState")}},
    ),
}
PARAMETERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("get", "/v1/dossiers"): [
        {
            "name": "client",
            "in": "query",
            "schema": {"type": "string"},
            "description": "one client's dossiers (the portal, operators); a centre always sees its own",
        }
    ],
    ("get", "/v1/admin/deliveries"): [
        {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["pending", "leased", "done", "dead"]}},
        {"name": "agency", "in": "query", "schema": {"type": "string"}, "description": "an agency of agencies.toml"},
        {
            "name": "since",
            "in": "query",
            "schema": {"type": "string"},
            "description": "the older spelling of `from`: changed since, ISO 8601 or a duration ago (2h, 1d)",
        },
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 200}},
    ],
    ("post", "/v1/admin/reload"): [
        {
            "name": "dry_run",
            "in": "query",
            "schema": {"type": "boolean", "default": False},
            "description": "only say what a reload would change (nothing is changed)",
        }
    ],
}
# (method, path, status) -> headers of that answer.
HEADERS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("post", "/v1/dossiers", "202"): {"Location": LOCATION},
    ("post", "/v1/dossiers", "200"): {
        "Location": LOCATION,
        "Idempotent-Replayed": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "the answer to an earlier request with the same Idempotency-Key",
        },
    },
    ("post", "/v1/bundles", "202"): {"Location": LOCATION},
    ("post", "/v1/bundles", "200"): {"Location": LOCATION},
    ("post", "/v1/documents", "201"): {"Location": LOCATION},
    ("get", "/v1/dossiers/{ref}/results/{index}", "302"): {"Location": LOCATION},
    ("get", "/v1/dossiers/{ref}/attachments/{index}", "200"): {
        "Repr-Digest": {"schema": {"type": "string"}, "description": "sha-256 of the document (RFC 9530)"}
    },
}
BINARY_ANSWERS = {("get", "/v1/dossiers/{ref}/attachments/{index}"), ("get", "/v1/dossiers/{ref}/results/{index}")}


def operation_id(method: str, path: str) -> str:
    """`get /v1/dossiers/{ref}/events` -> `get_dossiers_by_ref_events`: stable, unique, readable."""
    words = [f"by_{m[1]}" if (m := re.fullmatch(r"\{(\w+)\}", part)) else part for part in path.split("/")[2:]]
    return "_".join([method, *words]).replace("-", "_")


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc["components"]["schemas"]
    spec = ProcedureSpec.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    schemas.update(spec.pop("$defs", {}))
    schemas["ProcedureSpec"] = spec
    with_form = copy.deepcopy(spec)  # closed (additionalProperties false): one more property, not an allOf
    with_form["properties"]["form_schema"] = {"type": "object", "description": "the form's JSON Schema"}
    with_form["required"] = [*with_form.get("required", []), "form_schema"]
    schemas["ProcedureWithForm"] = with_form
    schemas.update(COMPONENTS)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            op.setdefault("operationId", operation_id(method, path))
            params = op.setdefault("parameters", [])
            known = {(p["name"].lower(), p["in"]) for p in params}
            for extra in [*PARAMETERS.get((method, path), []), CORRELATION]:
                if (extra["name"].lower(), extra["in"]) not in known:
                    params.append(extra)
            for status, response in op["responses"].items():
                if status.startswith(("2", "3")):
                    if (method, path) in BINARY_ANSWERS and status == "200":
                        response["content"] = BINARY
                    elif status.startswith("2") and "content" not in response and (method, path) in SUCCESS:
                        response["content"] = {JSON: {"schema": SUCCESS[(method, path)]}}
                headers = response.setdefault("headers", {})
                headers.update(HEADERS.get((method, path, status), {}))
                headers["X-Correlation-ID"] = CORRELATION_OUT
            # A replay (200 after 202) answers the same body as the first answer.
            bodies = [r["content"] for st, r in op["responses"].items() if st.startswith("2") and "content" in r]
            for status, response in op["responses"].items():
                if status.startswith("2") and "content" not in response and bodies:
                    response["content"] = bodies[0]
    return doc
