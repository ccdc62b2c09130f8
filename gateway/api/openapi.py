"""The OpenAPI 3.1 document, built from the contract models; kept in the repo (openapi.json) and tested fresh."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts import Dossier, DossierSubmission, StatusEvent
from contracts.bundle import BundleSubmission, BundleView, ResultHandover, SupplementAnswer
from contracts.portal import PortalDossier, PortalProgress
from gateway import __version__
from gateway.api import openapi_services

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
PROBLEM = {"$ref": "#/components/schemas/Problem"}
BY = {
    "name": "by",
    "in": "query",
    "schema": {"type": "string", "enum": ["centre", "agency", "procedure", "province"], "default": "centre"},
    "description": "what the figures are per",
}


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details; `type` is stable, `errors` lists invalid fields.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "examples": ["urn:lienthong:problem:validation-failed"]},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "message": {"type": "string"},
                        "code": {"type": "string"},
                    },
                },
            },
        },
    }


def _query_strings(*params: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}, "description": d} for n, d in params]


def _responses(ok: int, schema: dict[str, Any] | None, *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {str(ok): {"description": "OK"}}
    if schema is not None:
        out[str(ok)]["content"] = {"application/json": {"schema": schema}}
    for code in errors:
        out[str(code)] = _problem()
    return out


def _problem() -> dict[str, Any]:
    return {"description": "problem", "content": {"application/problem+json": {"schema": PROBLEM}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _problem_schema()}
    models: tuple[type[BaseModel], ...] = (
        DossierSubmission,
        Dossier,
        StatusEvent,
        BundleSubmission,
        BundleView,
        SupplementAnswer,
        ResultHandover,
        PortalDossier,
        PortalProgress,
        *openapi_services.SCHEMAS,
    )
    for model in models:
        s = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(s.pop("$defs", {}))
        schemas[model.__name__] = s
    accepted = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("id", "code", "due_at", "agency")}
        | {"status": {"type": "integer"}, "status_label": {"type": "string"}},
    }
    agency_param = [
        {
            "name": "agency",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "an agency of agencies.toml",
        }
    ]
    ref_param = [
        {
            "name": "ref",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "dossier id (UUID) or dossier code",
        },
        {
            "name": "X-Applicant-Id",
            "in": "header",
            "schema": {"type": "string", "maxLength": 20},
            "description": (
                "the applicant's personal id (or an organisation's tax code): lets a centre other than the "
                "one that received the dossier open it for an applicant who came there; every opening, "
                "allowed or refused, is written to the audit log; after too many wrong ids a centre gets 429 "
                "with Retry-After"
            ),
        },
    ]
    paths: dict[str, Any] = {
        "/v1/dossiers": {
            "post": {
                "summary": "Submit a dossier",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 200}}
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(DossierSubmission)}}},
                "description": (
                    "A client whose rights list procedures or agencies may submit only those: 403 "
                    "`missing-right` naming the right (`right`), audited."
                ),
                "responses": _responses(202, accepted, 400, 401, 403, 408, 409, 413, 415, 422)
                | {"200": {"description": "replay of an earlier request with the same Idempotency-Key"}},
            },
            "get": {
                "summary": "List dossiers visible to the client",
                "description": (
                    "Newest first, each with its delivery to its agency (`delivery`: state, attempts, last "
                    "error): `?delivery=dead` lists the dossiers whose delivery was given up, and why."
                ),
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10}},
                    {
                        "name": "delivery",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["waiting", "pending", "in_flight", "delivered", "dead", "cancelled"],
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                ],
                "responses": _responses(200, None, 400, 401, 403),
            },
        },
        "/v1/dossiers/{ref}": {
            "get": {
                "summary": "One dossier",
                "parameters": ref_param,
                "responses": _responses(200, _ref(Dossier), 401, 403, 404, 429),
            }
        },
        "/v1/dossiers/{ref}/events": {
            "get": {
                "summary": "A dossier's status events",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404, 429),
            }
        },
        "/v1/feed": {
            "get": {
                "summary": "Status changes in commit order, in the national portal's format",
                "description": (
                    "Keep `next_after` and ask again from there: nothing is skipped, nothing comes twice. "
                    "Each item holds one progress record (CapNhatTienDoHoSoMC) and the dossier's current "
                    "record (DongBoHoSoMC), to upsert by MaHoSo. A centre reads its own dossiers' changes."
                ),
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                ],
                "responses": _responses(
                    200,
                    {
                        "type": "object",
                        "required": ["items", "next_after"],
                        "properties": {
                            "items": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "seq": {"type": "integer"},
                                        "progress": _ref(PortalProgress),
                                        "dossier": _ref(PortalDossier),
                                    },
                                },
                            },
                            "next_after": {"type": "integer"},
                        },
                    },
                    400,
                    401,
                    403,
                ),
            }
        },
        "/v1/procedures": {
            "get": {
                "summary": "Search the procedure catalog",
                "parameters": [
                    {"name": "agency", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _responses(200, None, 401),
            }
        },
        "/v1/procedures/{code}": {
            "get": {
                "summary": "One procedure with its form's JSON Schema",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _responses(200, None, 401, 404),
            }
        },
        "/v1/public/procedures": {
            "get": {
                "summary": "The catalog with each procedure's applicant guide; no key",
                "description": (
                    "Keyless, limited per source address ([rate_limits] public_per_minute, public_burst: 429 "
                    "with Retry-After past it), cacheable (ETag, Cache-Control: public, max-age=300; "
                    "If-None-Match answers 304). `agency`: an agency kind (land) or words of the deciding "
                    "agency's name; `q`: words of the code, name, sector or guide; both with or without "
                    "diacritics."
                ),
                "security": [],
                "parameters": [
                    {"name": "agency", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _responses(200, None, 429) | {"304": {"description": "Not modified"}},
            }
        },
        "/v1/public/procedures/{code}": {
            "get": {
                "summary": "One procedure with its applicant guide and the address of its printable page; no key",
                "security": [],
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _responses(200, None, 404, 429) | {"304": {"description": "Not modified"}},
            }
        },
        "/v1/dossiers/{ref}/receipt": {
            "get": {
                "summary": "The intake receipt (JSON: code, dates, documents received, the status link)",
                "description": (
                    "The same bytes every time; its detached signature is at .../receipt/signature. 404 when the "
                    "gateway has no [signing] key. Opened and audited like the dossier."
                ),
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404),
            }
        },
        "/v1/dossiers/{ref}/receipt/signature": {
            "get": {
                "summary": "The receipt's detached signature: a compact JWS (EdDSA) over its SHA-256 and metadata",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404),
            }
        },
        "/v1/dossiers/{ref}/receipt/page": {
            "get": {
                "summary": "The receipt as a printable A4 page, with a QR code opening the public status page",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404),
            }
        },
        "/v1/dossiers/{ref}/results/{index}/signature": {
            "get": {
                "summary": "A result document's detached signature (JWS over its SHA-256 and metadata)",
                "parameters": [
                    *ref_param,
                    {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": _responses(200, None, 401, 403, 404),
            }
        },
        "/v1/verify": {
            "get": {
                "summary": "Check a detached signature, and a document's SHA-256 against it; no key",
                "description": (
                    "Answers `valid`, the `reason` when not, the `kid` and what was `signed` (type, dossier code, "
                    "sha256, size, issue time; never personal data). Keyless and limited per address."
                ),
                "security": [],
                "parameters": [
                    {"name": "signature", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "sha256", "in": "query", "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}},
                ],
                "responses": _responses(200, None, 404, 429),
            }
        },
        "/v1/verify/keys": {
            "get": {
                "summary": "The public keys signatures verify with (JWKS, kid = RFC 7638 thumbprint); no key",
                "security": [],
                "responses": _responses(200, None, 404, 429) | {"304": {"description": "Not modified"}},
            }
        },
        "/v1/lookups": {"get": {"summary": "Available look-ups", "responses": _responses(200, None, 401)}},
        "/v1/lookups/{name}": {
            "post": {
                "summary": "Run a synchronous look-up at an agency",
                "description": (
                    "Needs the lookup scope and, when the client's rights list look-ups or agencies, this one "
                    "(403 `missing-right` otherwise, audited). Each look-up is audited (who, which, which agency, "
                    "the query's fields as keyed hashes). 503 at once, with Retry-After, while the agency is in a "
                    "maintenance window, paused, or taken for down (its breaker open): nothing is sent to it then."
                ),
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": _responses(200, None, 400, 401, 403, 404, 408, 413, 415, 422, 429, 502, 503, 504),
            }
        },
        "/v1/callbacks/{agency}": {
            "post": {
                "summary": "Status changes posted by an agency",
                "description": (
                    "Only about dossiers routed to this agency (403 `wrong-agency` otherwise, audited); result "
                    "documents are checked (422 `invalid-result`). The callback's updates are applied in one "
                    "transaction with its nonce: after a 503 the same request may be sent again; a replay within "
                    "the replay window is 401."
                ),
                "parameters": [{"name": "agency", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": _responses(200, None, 400, 401, 403, 404, 409, 413, 422),
            }
        },
        "/v1/dossiers/{ref}/supplements": {
            "post": {
                "summary": "Answer a supplement request (status 5) with the documents asked for",
                "parameters": ref_param,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(SupplementAnswer)}}},
                "responses": _responses(202, _ref(Dossier), 400, 401, 403, 404, 409, 413, 415, 422, 429),
            }
        },
        "/v1/dossiers/{ref}/return": {
            "post": {
                "summary": "Hand the result to the applicant (status 9 -> 10), at any centre",
                "description": (
                    "At the centre that received the dossier, or at another one the applicant came to, which "
                    "sends the applicant's identifier in X-Applicant-Id. Returning twice answers the same."
                ),
                "parameters": ref_param,
                "requestBody": {"content": {"application/json": {"schema": _ref(ResultHandover)}}},
                "responses": _responses(200, _ref(Dossier), 400, 401, 403, 404, 409, 413, 415, 422, 429),
            }
        },
        "/v1/dossiers/{ref}/attachments/{index}": {
            "get": {
                "summary": "Download a submitted document, streamed from the gateway's document store",
                "description": "Its type as submitted, its sha256 in Repr-Digest (RFC 9530). Downloads are audited.",
                "parameters": [
                    *ref_param,
                    {"name": "index", "in": "path", "required": True, "schema": {"type": "integer"}},
                ],
                "responses": _responses(200, None, 401, 403, 404, 429),
            }
        },
        "/v1/documents": {
            "post": {
                "summary": "Upload a document before the dossier that names it (attachment upload_id)",
                "description": (
                    "The body is the document itself, streamed (Content-Length or chunked), with its media type "
                    "in Content-Type and, optionally, its digest in Repr-Digest or Content-Digest (RFC 9530: "
                    "sha-256 or sha-512) or Digest: a document that does not match is refused and nothing is "
                    "kept. `procedure` and `component` check it against that component's limits now; otherwise "
                    "the gateway's limits apply, and the component's when a dossier names it. An upload no "
                    "dossier names expires (`expires_at`). Only the client that uploaded it may name it. The "
                    "body must arrive within `[documents] upload_timeout`, never pausing longer than `[limits] "
                    "body_timeout` (408)."
                ),
                "parameters": [
                    {"name": "procedure", "in": "query", "schema": {"type": "string"}},
                    {"name": "component", "in": "query", "schema": {"type": "string"}},
                    {"name": "Content-Type", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "Repr-Digest", "in": "header", "schema": {"type": "string"}},
                    {"name": "Content-Digest", "in": "header", "schema": {"type": "string"}},
                    {"name": "Digest", "in": "header", "schema": {"type": "string"}},
                    {
                        "name": "Content-Disposition",
                        "in": "header",
                        "schema": {"type": "string"},
                        "description": "attachment; filename=...: kept as the upload's name",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": _responses(
                    201,
                    {
                        "type": "object",
                        "required": ["id", "sha256", "size", "media_type", "expires_at"],
                        "properties": {
                            "id": {"type": "string", "format": "uuid"},
                            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            "size": {"type": "integer"},
                            "media_type": {"type": "string"},
                            "name": {"type": ["string", "null"]},
                            "expires_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    400,
                    401,
                    403,
                    408,
                    413,
                    415,
                    422,
                ),
            }
        },
        "/v1/dossiers/{ref}/results/{index}": {
            "get": {
                "summary": "Download a result document",
                "parameters": [
                    *ref_param,
                    {"name": "index", "in": "path", "required": True, "schema": {"type": "integer"}},
                ],
                "responses": _responses(200, None, 401, 403, 404, 429)
                | {"302": {"description": "the agency gave the result by URL: it is at `Location`"}},
            }
        },
        "/v1/bundles": {
            "post": {
                "summary": "Submit an inter-agency bundle: one dossier per step, delivered in order",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 200}}
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(BundleSubmission)}}},
                "responses": _responses(202, _ref(BundleView), 400, 401, 403, 408, 409, 413, 415, 422),
            }
        },
        "/v1/bundles/{ref}": {
            "get": {
                "summary": "A bundle, its steps and the actions it allows",
                "description": (
                    "The state is derived from the steps. Actions: `retry` (POST .../retry) delivers "
                    "dead-lettered steps again; `cancel_remaining` (POST .../cancel) withdraws the steps not "
                    "yet with an agency; `supplement`: the step in status 5 shows what its agency asks for "
                    "and by when, answered with POST /v1/dossiers/{dossier_id}/supplements."
                ),
                "parameters": ref_param,
                "responses": _responses(200, _ref(BundleView), 401, 404),
            }
        },
        "/v1/bundles/{ref}/retry": {
            "post": {
                "summary": "Deliver the bundle's dead-lettered steps again",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404, 409),
            }
        },
        "/v1/bundles/{ref}/cancel": {
            "post": {
                "summary": "Cancel the steps not yet with an agency (waiting or dead-lettered)",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404, 409),
            }
        },
        "/v1/admin/deliveries": {
            "get": {
                "summary": "Delivery jobs, newest first, by every filter of the transaction browser",
                "parameters": _query_strings(
                    ("state", "waiting, pending, leased, done, dead or cancelled"),
                    ("agency", "an agency of agencies.toml"),
                    ("endpoint", "one of its endpoints"),
                    ("dossier", "a dossier's id or code"),
                    ("error", "text of the last error"),
                    ("from", "last changed at or after: ISO 8601, or a duration ago (24h)"),
                    ("to", "last changed before"),
                ),
                "responses": _responses(200, None, 400, 401, 403),
            }
        },
        "/v1/admin/deliveries/rerun": {
            "post": {
                "summary": "Send a filtered set of dead (or delivered) jobs again, after a dry-run count",
                "description": (
                    "Filters: `dossier`, `ids`, `agency`, `endpoint`, `error`, `from`, `to`; `state` dead (default) "
                    "or done (with another filter). `dry_run: true` answers `matched` and changes nothing; "
                    "otherwise `rerun`, the jobs due again now. Audited with the count."
                ),
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": _responses(200, None, 400, 401, 403, 415, 422),
            }
        },
        "/v1/admin/attempts": {
            "get": {
                "summary": "Every delivery attempt, newest first: time, endpoint, duration, outcome, error, reference",
                "parameters": [
                    *_query_strings(
                        ("dossier", "a dossier's id or code"),
                        ("agency", "an agency of agencies.toml"),
                        ("endpoint", "one of its endpoints"),
                        ("outcome", "delivered, failed, dead, documents-asked or lease-expired"),
                        ("from", "started at or after: ISO 8601, or a duration ago (24h)"),
                        ("to", "started before"),
                        ("error", "text of the error"),
                    ),
                    {
                        "name": "before",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "an attempt id: older ones (paging, `next_before`)",
                    },
                    {
                        "name": "bodies",
                        "in": "query",
                        "schema": {"type": "boolean", "default": False},
                        "description": "true: the captured request and answer bodies too",
                    },
                ],
                "responses": _responses(200, None, 400, 401, 403),
            }
        },
        "/v1/admin/dossiers/{ref}/timeline": {
            "get": {
                "summary": "A dossier's status events and delivery attempts together, in order (audited)",
                "parameters": ref_param,
                "responses": _responses(200, None, 401, 403, 404),
            }
        },
        "/v1/admin/kpis": {
            "get": {
                "summary": "Centre performance per centre, agency, procedure or province over a period",
                "parameters": [
                    BY,
                    *_query_strings(
                        ("from", "first local day, YYYY-MM-DD (default: 29 days before `to`)"),
                        ("to", "last local day (default: today)"),
                    ),
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
                        "description": "csv for a spreadsheet (text/csv)",
                    },
                ],
                "responses": _responses(200, None, 400, 401, 403),
            }
        },
        "/v1/admin/kpis/series": {
            "get": {
                "summary": "The on-time rate of each item per day, week or month of a period",
                "parameters": [
                    BY,
                    {
                        "name": "bucket",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["day", "week", "month"], "default": "week"},
                    },
                    *_query_strings(("from", "first local day"), ("to", "last local day")),
                ],
                "responses": _responses(200, None, 400, 401, 403),
            }
        },
        "/v1/kpis/league": {
            "get": {
                "summary": "Centres ranked by on-time rate and volume (conf/league.toml), with their movement",
                "description": (
                    "An operator sees every centre's figures; a centre sees the ranking and its own figures."
                ),
                "parameters": _query_strings(("from", "first local day"), ("to", "last local day")),
                "responses": _responses(200, None, 400, 401, 403, 503),
            }
        },
        "/v1/admin/deliveries/replay": {
            "post": {
                "summary": "Replay dead-lettered deliveries",
                "description": (
                    "All of them, or `ids`; of an `agency` (and `endpoint`); dead-lettered `since` a time "
                    "(ISO 8601, or a duration ago such as `2h`). Audited."
                ),
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "ids": {"type": "array", "items": {"type": "integer"}},
                                    "agency": {"type": "string"},
                                    "endpoint": {"type": "string"},
                                    "since": {"type": "string", "examples": ["2026-12-06T06:00+07:00", "2h"]},
                                },
                            }
                        }
                    },
                },
                "responses": _responses(200, None, 400, 401, 403, 415, 422),
            }
        },
        "/v1/admin/overview": {
            "get": {
                "summary": (
                    "What the operator console shows live: dossiers by status, overdue, undeliverable, agencies, "
                    "dead letters"
                ),
                "responses": _responses(200, None, 401, 403),
            }
        },
        "/v1/admin/reload": {
            "post": {
                "summary": "Reload clients, procedures, routes and bundles from the configuration folder",
                "description": (
                    "The folder is loaded and checked first: with any error (422, every error with its file "
                    "and key) nothing changes. Agencies, endpoints and gateway settings need a restart: a "
                    "reload that finds them changed is refused whole (409, `restart_needed`). SIGHUP does the same."
                ),
                "responses": _responses(200, None, 401, 403, 409, 422),
            }
        },
        "/v1/admin/audit": {
            "get": {
                "summary": "The audit log of accesses to dossiers, oldest first, with each record's chain hash",
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                    {"name": "dossier", "in": "query", "schema": {"type": "string"}},
                    {"name": "client", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _responses(200, None, 400, 401, 403),
            }
        },
        "/v1/admin/audit/verify": {
            "get": {
                "summary": "Verify the audit log: its hash chain, its seals and its signed checkpoints",
                "description": (
                    "Walks the chain; with an audit key ([audit] in gateway.toml) also every seal and the signed "
                    "checkpoints (the store's and the exported folder's). Answers `ok`, the `problems` found, the "
                    "`head` (seq and hash of the last record) and the last `checkpoint`."
                ),
                "responses": _responses(200, None, 401, 403),
            }
        },
        "/v1/admin/agencies": {
            "get": {
                "summary": "Every agency endpoint's state, pending and held jobs, and a connectivity check",
                "description": (
                    "`state`: closed, open (its breaker: `open_since`, `next_probe_at`, `last_error`), "
                    "maintenance or paused (`paused_until`, `reason`, `paused_by`); `next_window`; `pending` "
                    "jobs and those `held` (pending at an endpoint that may not be called now). The check "
                    "(`ok`, `detail`, `latency_ms`) is skipped with `check=false`, and for held endpoints."
                ),
                "parameters": [{"name": "check", "in": "query", "schema": {"type": "boolean", "default": True}}],
                "responses": _responses(200, None, 401, 403),
            }
        },
        "/v1/admin/agencies/{agency}/pause": {
            "post": {
                "summary": "Send nothing to an agency (or one endpoint) until a time; durable and audited",
                "parameters": agency_param,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["until", "reason"],
                                "properties": {
                                    "until": {
                                        "type": "string",
                                        "description": "ISO 8601 (Vietnam's time without an offset) or a duration",
                                        "examples": ["2026-12-06T06:00+07:00", "2h"],
                                    },
                                    "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                                    "endpoint": {"type": "string", "description": "only this endpoint"},
                                },
                            }
                        }
                    },
                },
                "responses": _responses(200, None, 400, 401, 403, 404, 415, 422),
            }
        },
        "/v1/admin/agencies/{agency}/resume": {
            "post": {
                "summary": "End an agency's pauses (or one endpoint's): what was held goes at once; audited",
                "parameters": agency_param,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"endpoint": {"type": "string"}}}
                        }
                    },
                },
                "responses": _responses(200, None, 400, 401, 403, 404, 415, 422),
            }
        },
    }
    paths.update(openapi_services.paths(_responses, _ref, ref_param))
    _everywhere(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lienthong gateway API",
            "version": __version__,
            "description": (
                "One API for every public administrative service centre. Any call may be answered 400 (a header "
                "that is not UTF-8), 429 (a rate limit: wait `Retry-After`) or 503 (the store cannot write now: "
                "nothing was kept; send it again after `Retry-After`). A method a path does not take: 405 with `Allow`."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a JWT (EdDSA, ES256 or RS256) of an issuer configured in clients.toml",
                },
                "mutualTLS": {
                    "type": "mutualTLS",
                    "description": "a client certificate from a configured CA, named in clients.toml",
                },
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}, {"mutualTLS": []}],
        "paths": paths,
    }


def _everywhere(paths: dict[str, Any]) -> None:
    """Answers any authenticated call may get: a bad header, a rate limit, a store that cannot write (even a
    read writes its audit record first)."""
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait before trying again"}}
    for operations in paths.values():
        for op in operations.values():
            responses = op["responses"]
            for code in ("400", "429", "503"):
                responses.setdefault(code, _problem())
            for code in ("429", "503"):
                responses[code]["headers"] = retry_after


def render() -> str:
    from gateway.api.openapi_ops import complete  # operationIds, success schemas, parameters and headers

    return json.dumps(complete(build()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OPENAPI_PATH.exists() or OPENAPI_PATH.read_text(encoding="utf-8") != text:
            print(f"{OPENAPI_PATH} is stale: run python -m gateway.api.openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
