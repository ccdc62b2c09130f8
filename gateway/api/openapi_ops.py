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
from gateway.kpi import CSV_COLUMNS

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
INT = {"type": "integer"}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
DAY = {"type": "string", "format": "date"}
COMPONENTS |= {
    "KpiLine": _obj(
        list(CSV_COLUMNS),  # the same columns as the CSV report
        {
            "item": {"type": "string", "description": "the centre's unit, agency, procedure or province"},
            "name": {**NULLABLE_STRING, "description": "by centre: the centre's name in clients.toml"},
            **{k: INT for k in ("received", "finished", "on_time", "late", "in_progress", "in_progress_late")},
            **{k: INT for k in ("supplements", "returned", "returned_elsewhere", "with_fees", "paid_online")},
            **{k: NULLABLE_RATE for k in ("on_time_rate", "returned_elsewhere_share", "paid_online_share")},
            "avg_working_days": {"type": ["number", "null"]},
            "p90_working_days": NULLABLE_INT,
        },
    ),
    "Attempt": _obj(
        ["id", "job_id", "dossier_id", "agency", "endpoint", "step", "attempt", "at", "duration_ms", "outcome"],
        {
            "id": INT,
            "job_id": INT,
            "dossier_id": {"type": "string"},
            "agency": {"type": "string"},
            "endpoint": {"type": "string"},
            "step": {"type": "string"},
            "attempt": INT,
            "at": {"type": "string", "format": "date-time"},
            "duration_ms": {"type": "number"},
            "outcome": {"type": "string", "enum": ["delivered", "failed", "dead", "documents-asked", "lease-expired"]},
            "error": NULLABLE_STRING,
            "agency_ref": NULLABLE_STRING,
            "request_body": {**NULLABLE_STRING, "description": "with bodies=true: the request as sent"},
            "response_body": {**NULLABLE_STRING, "description": "with bodies=true: the answer as received"},
        },
    ),
}
BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
JOSE = {
    "application/jose": {"schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"}}
}
HTML = {"text/html": {"schema": {"type": "string"}}}
JWKS = _obj(
    ["keys"],
    {
        "keys": {
            "type": "array",
            "items": _obj(
                ["kty", "crv", "x", "kid"],
                {
                    "kty": {"const": "OKP"},
                    "crv": {"const": "Ed25519"},
                    "x": {"type": "string"},
                    "kid": {"type": "string", "description": "the RFC 7638 thumbprint"},
                    "use": {"const": "sig"},
                },
            ),
        }
    },
)
RECEIPT = _obj(
    [
        "type",
        "title",
        "dossier_code",
        "procedure",
        "receiving_unit",
        "centre",
        "applicant",
        "received_at",
        "due_at",
        "return_method",
        "documents",
        "status_url",
    ],
    {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "dossier_code": {"type": "string"},
        "procedure": _obj(["code", "name"], {"code": {"type": "string"}, "name": {"type": "string"}}),
        "receiving_unit": {"type": "string"},
        "centre": {"type": "string"},
        "applicant": {"type": "string", "description": "the applicant's name"},
        "received_at": {"type": "string", "format": "date-time"},
        "due_at": {"type": "string", "format": "date-time"},
        "return_method": _ref("ReturnMethod"),
        "documents": {
            "type": "array",
            "items": _obj(
                ["component_code", "name", "media_type", "size", "sha256"],
                {
                    "component_code": {"type": "string"},
                    "name": {"type": "string"},
                    "media_type": {"type": "string"},
                    "size": INT,
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                },
            ),
        },
        "status_url": {"type": "string", "description": "the public status page (the QR code's link)"},
    },
)
SERIES = _obj(
    ["by", "bucket", "from", "to", "buckets", "items"],
    {
        "by": {"type": "string", "enum": ["centre", "agency", "procedure", "province"]},
        "bucket": {"type": "string", "enum": ["day", "week", "month"]},
        "from": DAY,
        "to": DAY,
        "buckets": {"type": "array", "items": DAY, "description": "each bucket's first day, in order"},
        "items": {
            "type": "array",
            "items": _obj(
                ["item", "points"],
                {
                    "item": {"type": "string"},
                    "points": {
                        "type": "array",
                        "items": _obj(
                            ["bucket", "received", "finished", "on_time", "on_time_rate"],
                            {
                                "bucket": DAY,
                                "received": INT,
                                "finished": INT,
                                "on_time": INT,
                                "on_time_rate": NULLABLE_RATE,
                            },
                        ),
                    },
                },
            ),
        },
    },
)
LEAGUE = _obj(
    ["from", "to", "previous", "weights", "own", "items"],
    {
        "from": DAY,
        "to": DAY,
        "previous": _obj(["from", "to"], {"from": DAY, "to": DAY}),
        "weights": _obj(
            ["on_time_weight", "volume_weight", "volume", "min_finished"],
            {
                "on_time_weight": {"type": "number"},
                "volume_weight": {"type": "number"},
                "volume": {"type": "string", "enum": ["finished", "received"]},
                "min_finished": INT,
            },
        ),
        "own": {**NULLABLE_STRING, "description": "a centre: its own unit; an operator: null"},
        "items": {
            "type": "array",
            "items": _obj(
                ["rank", "centre", "name", "score", "movement", "previous_rank"],
                {
                    "rank": {**NULLABLE_INT, "description": "null: too few finished to be ranked"},
                    "centre": {"type": "string"},
                    "name": NULLABLE_STRING,
                    "score": {"type": ["number", "null"]},
                    "movement": {**NULLABLE_INT, "description": "places gained since the previous period"},
                    "previous_rank": NULLABLE_INT,
                    "figures": {**_ref("KpiLine"), "description": "an operator: every row's; a centre: its own"},
                },
            ),
        },
    },
)
TIMELINE_EVENT = _obj(
    ["kind", "at", "status", "actor", "note"],
    {
        "kind": {"const": "event"},
        "at": {"type": "string", "format": "date-time"},
        "status": {"type": "integer", "minimum": 0, "maximum": 10},
        "actor": {"type": "string"},
        "note": {"type": "string"},
    },
)
TIMELINE_ATTEMPT = {"allOf": [_ref("Attempt"), _obj(["kind"], {"kind": {"const": "attempt"}})]}
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
            "counted_at": {"type": "string", "format": "date-time", "description": "when the counts above were taken"},
            "counts_age_seconds": {
                "type": "number",
                "description": "their age: a store whose count takes long reuses it for a while",
            },
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
SUCCESS |= {
    ("get", "/v1/dossiers/{ref}/appointment-slots"): _items(
        _ref("Slot"), dossier={"type": "string"}, agency={"type": "string"}
    ),
    ("get", "/v1/appointments"): _items(_ref("Appointment")),
    ("get", "/v1/appointments/events"): _items(_ref("AppointmentEvent"), next_after=INT),
    ("get", "/v1/payments"): _items(_ref("Payment")),
    ("post", "/v1/payments/callback"): _obj(
        ["received", "payment", "state"],
        {
            "received": {"const": True},
            "payment": {"type": "string"},
            "state": {"type": "string", "enum": ["PENDING", "PAID", "EXPIRED", "FAILED"]},
        },
    ),
    ("get", "/v1/public/procedures"): _items(_ref("PublicProcedure")),
    ("get", "/v1/public/procedures/{code}"): _ref("PublicProcedure"),
    ("get", "/v1/dossiers/{ref}/receipt"): RECEIPT,
    ("get", "/v1/verify"): _obj(
        ["valid", "reason", "document_checked", "kid", "signed"],
        {
            "valid": {"type": "boolean"},
            "reason": {**NULLABLE_STRING, "description": "why not valid"},
            "document_checked": {"type": "boolean", "description": "a sha256 was given and checked"},
            "kid": NULLABLE_STRING,
            "signed": {
                "type": ["object", "null"],
                "description": "what was signed: typ, iss, dossier, sha256, size, media_type, issued_at...",
            },
        },
    ),
    ("get", "/v1/verify/keys"): JWKS,
    ("get", "/v1/admin/attempts"): _items(_ref("Attempt"), next_before=NULLABLE_INT),
    ("get", "/v1/admin/dossiers/{ref}/timeline"): _items(
        {"oneOf": [TIMELINE_EVENT, TIMELINE_ATTEMPT]},
        dossier=_obj(
            ["id", "code", "status", "agency"],
            {
                "id": {"type": "string", "format": "uuid"},
                "code": {"type": "string"},
                "status": {"type": "integer", "minimum": 0, "maximum": 10},
                "agency": {"type": "string"},
            },
        ),
    ),
    ("post", "/v1/admin/deliveries/rerun"): {
        "type": "object",
        "required": ["dry_run"],
        "description": "a dry run: how many jobs `matched`; otherwise how many were `rerun`",
        "properties": {"dry_run": {"type": "boolean"}, "matched": INT, "rerun": INT},
    },
    ("get", "/v1/admin/kpis/series"): SERIES,
    ("get", "/v1/kpis/league"): LEAGUE,
}
# (method, path) -> the success answer's media types and schemas, where it is not (only) JSON.
CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/dossiers/{ref}/attachments/{index}"): BINARY,
    ("get", "/v1/dossiers/{ref}/results/{index}"): BINARY,
    ("get", "/v1/payments/{id}/receipt"): BINARY,
    ("get", "/v1/dossiers/{ref}/receipt/signature"): JOSE,
    ("get", "/v1/dossiers/{ref}/results/{index}/signature"): JOSE,
    ("get", "/v1/dossiers/{ref}/receipt/page"): HTML,
    ("get", "/v1/admin/kpis"): {
        JSON: {
            "schema": _items(
                _ref("KpiLine"),
                by={"type": "string", "enum": ["centre", "agency", "procedure", "province"]},
                **{"from": DAY, "to": DAY},
            )
        },
        "text/csv": {"schema": {"type": "string", "description": "with format=csv: the same lines, a header row"}},
    },
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
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "schema": {"type": "string"},
    "description": "the ETag held: 304 without a body when it is still current",
}
LIMIT_1000 = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}
PARAMETERS |= {
    ("get", "/v1/public/procedures"): [IF_NONE_MATCH],
    ("get", "/v1/public/procedures/{code}"): [IF_NONE_MATCH],
    ("get", "/v1/verify/keys"): [IF_NONE_MATCH],
    ("get", "/v1/appointments/events"): [
        {"name": "client", "in": "query", "schema": {"type": "string"}, "description": "operators: one centre's"}
    ],
    ("get", "/v1/admin/attempts"): [LIMIT_1000],
}
CACHED = {
    "ETag": {"required": True, "schema": {"type": "string"}, "description": "a strong tag of the body's hash"},
    "Cache-Control": {"required": True, "schema": {"type": "string", "enum": ["public, max-age=300"]}},
}
NO_STORE = {"Cache-Control": {"required": True, "schema": {"type": "string", "enum": ["no-store"]}}}
REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "the answer to an earlier request with the same Idempotency-Key",
    }
}


def _attachment(description: str) -> dict[str, Any]:
    return {"Content-Disposition": {"required": True, "schema": {"type": "string"}, "description": description}}


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
HEADERS |= {
    **{
        ("get", path, status): CACHED
        for path in ("/v1/public/procedures", "/v1/public/procedures/{code}", "/v1/verify/keys")
        for status in ("200", "304")
    },
    ("get", "/v1/verify", "200"): NO_STORE,
    ("get", "/v1/dossiers/{ref}/receipt", "200"): {
        **_attachment("receipt-{code}.json"),
        "Link": {"required": True, "schema": {"type": "string"}, "description": 'its signature: rel="signature"'},
    },
    ("get", "/v1/dossiers/{ref}/receipt/signature", "200"): _attachment("receipt-{code}.jws"),
    ("get", "/v1/dossiers/{ref}/results/{index}/signature", "200"): _attachment("{code}-{index}.jws"),
    ("get", "/v1/dossiers/{ref}/receipt/page", "200"): {
        **NO_STORE,
        "Content-Security-Policy": {"required": True, "schema": {"type": "string"}},
    },
    ("get", "/v1/payments/{id}/receipt", "200"): {
        **_attachment("bien-lai-{number}"),
        "Digest": {"required": True, "schema": {"type": "string"}, "description": "sha-256 of the receipt"},
    },
    ("get", "/v1/admin/kpis", "200"): {
        "Content-Disposition": {"schema": {"type": "string"}, "description": "with format=csv: the file's name"}
    },
    ("post", "/v1/dossiers/{ref}/appointments", "201"): {"Location": LOCATION},
    ("post", "/v1/dossiers/{ref}/appointments", "200"): {"Location": LOCATION, **REPLAYED},
    ("post", "/v1/dossiers/{ref}/payments", "201"): {"Location": LOCATION},
    ("post", "/v1/dossiers/{ref}/payments", "200"): REPLAYED,
}


def operation_id(method: str, path: str) -> str:
    """`get /v1/dossiers/{ref}/events` -> `get_dossiers_by_ref_events`: stable, unique, readable."""
    words = [f"by_{m[1]}" if (m := re.fullmatch(r"\{(\w+)\}", part)) else part for part in path.split("/")[2:]]
    return "_".join([method, *words]).replace("-", "_")


def _public(spec: dict[str, Any]) -> dict[str, Any]:
    """The catalog entry anyone may read (gateway.guides.public_view): without the gateway's internals, with
    the address of its printable guide."""
    out = copy.deepcopy(spec)
    internal = ("portal_databases", "jurisdiction_field")
    out["properties"] = {k: v for k, v in out["properties"].items() if k not in internal}
    out["properties"]["guide_url"] = {"type": "string", "description": "the printable guide with its QR code"}
    out["required"] = [*(k for k in out.get("required", []) if k not in internal), "guide_url"]
    return out


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc["components"]["schemas"]
    spec = ProcedureSpec.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    schemas.update(spec.pop("$defs", {}))
    schemas["ProcedureSpec"] = spec
    with_form = copy.deepcopy(spec)  # closed (additionalProperties false): one more property, not an allOf
    with_form["properties"]["form_schema"] = {"type": "object", "description": "the form's JSON Schema"}
    with_form["required"] = [*with_form.get("required", []), "form_schema"]
    schemas["ProcedureWithForm"] = with_form
    schemas["PublicProcedure"] = _public(spec)
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
                    if (method, path) in CONTENT and status == "200":
                        response["content"] = CONTENT[(method, path)]
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
