"""Every refusal is RFC 9457 problem+json with a stable `type`; validation errors carry field paths."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.keys import LIVE, REGISTRY
from gateway.app import create_app
from gateway.config.model import LimitsSettings
from tests.gateway.conftest import GatewayHarness

PROBLEM_JSON = "application/problem+json"


async def assert_problem(resp: ClientResponse, status: int, slug: str) -> dict[str, Any]:
    """The response is a problem of this status and type; returns its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM_JSON
    body: dict[str, Any] = await resp.json(content_type=PROBLEM_JSON)
    assert body["type"] == f"urn:lienthong:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == resp.url.path
    return body


def paths(body: dict[str, Any]) -> list[str]:
    return [e["path"] for e in body["errors"]]


@contextlib.asynccontextmanager
async def gateway_variant(
    h: GatewayHarness, tmp_path: Path, *, max_body_bytes: int | None = None, police_timeout: float | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    """A second gateway on the harness's police simulator, with a changed configuration and its own store."""
    config = h.app[LIVE].current.config
    gw = config.gateway.model_copy(
        update={"store": config.gateway.store.model_copy(update={"path": str(tmp_path / "variant.db")})}
    )
    if max_body_bytes is not None:
        gw = gw.model_copy(
            update={"limits": LimitsSettings(max_body_bytes=max_body_bytes, max_inline_attachment_bytes=max_body_bytes)}
        )
    endpoints = dict(config.endpoint_settings)
    if police_timeout is not None:
        key = ("police", "national")
        endpoints[key] = endpoints[key].model_copy(update={"timeout": police_timeout})
    variant = config.model_copy(update={"gateway": gw, "endpoint_settings": endpoints})
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(variant, h.app[REGISTRY]), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_malformed_json_is_400(harness: GatewayHarness) -> None:
    resp = await harness.client.post(
        "/v1/dossiers", data=b'{"procedure_code": ', headers=harness.headers(**{"Content-Type": "application/json"})
    )
    body = await assert_problem(resp, 400, "invalid-request")
    assert body["detail"].startswith("the body is not valid JSON")


async def test_wrong_content_type_is_415(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    resp = await harness.client.post(
        "/v1/dossiers", data=str(submission(0)).encode(), headers=harness.headers(**{"Content-Type": "text/plain"})
    )
    body = await assert_problem(resp, 415, "unsupported-media-type")
    assert "text/plain" in body["detail"]


async def test_body_over_the_limit_is_413(
    harness: GatewayHarness, tmp_path: Path, submission: Callable[[int], dict[str, Any]]
) -> None:
    async with gateway_variant(harness, tmp_path, max_body_bytes=4096) as client:
        ok = await client.post("/v1/dossiers", json=submission(0), headers=harness.headers())
        assert ok.status == 202, await ok.text()
        big = submission(1)
        big["summary"] = "x" * 1000
        big["external_ref"] = "r"
        big["form"]["new_address"]["line"] = "y" * 300
        big["attachments"] = big["attachments"] * 12  # about 5 KB of JSON
        resp = await client.post("/v1/dossiers", json=big, headers=harness.headers())
        body = await assert_problem(resp, 413, "payload-too-large")
        assert "4096" in body["detail"]


async def test_unknown_path_and_method(harness: GatewayHarness) -> None:
    body = await assert_problem(await harness.client.get("/v1/nothing", headers=harness.headers()), 404, "not-found")
    assert body["detail"] == "no resource at /v1/nothing"
    resp = await harness.client.delete("/v1/dossiers", headers=harness.headers())
    body = await assert_problem(resp, 405, "method-not-allowed")
    assert "POST" in resp.headers["Allow"]
    assert body["detail"] == "DELETE is not allowed here; allowed: GET, HEAD, POST"


async def test_correlation_id_is_echoed_on_problems(harness: GatewayHarness) -> None:
    resp = await harness.client.get("/v1/dossiers/nope", headers=harness.headers(**{"X-Correlation-ID": "abc-123"}))
    await assert_problem(resp, 404, "not-found")
    assert resp.headers["X-Correlation-ID"] == "abc-123"


# -- validation: 422 with the paths of the invalid fields ---------------------------------------------


async def _submit_invalid(h: GatewayHarness, body: dict[str, Any]) -> dict[str, Any]:
    resp = await h.client.post("/v1/dossiers", json=body, headers=h.headers())
    return await assert_problem(resp, 422, "validation-failed")


async def test_personal_id_disagreeing_with_birth_date(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(0)
    assert body["applicant"]["personal_id"][3:6] == "159"  # female, born 1959
    body["applicant"]["date_of_birth"] = "1990-07-21"
    problem = await _submit_invalid(harness, body)
    assert problem["errors"] == [
        {
            "path": "applicant",
            "message": "digits 4-6 (159) say born in 1959, but the date of birth is in 1990",
            "code": "value_error",
        }
    ]


async def test_bad_procedure_code(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    body = submission(0)
    body["procedure_code"] = "1.23"
    problem = await _submit_invalid(harness, body)
    assert paths(problem) == ["procedure_code"]
    assert problem["errors"][0]["message"].startswith("a procedure code looks like 1.001193")


async def test_unknown_procedure(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    body = submission(0)
    body["procedure_code"] = "1.000001"
    problem = await _submit_invalid(harness, body)
    assert problem["detail"] == "procedure 1.000001 is not offered here"
    assert problem["errors"] == [
        {"path": "procedure_code", "message": "not in the procedure catalog", "code": "unknown_procedure"}
    ]


async def test_missing_required_attachment(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = submission(0)
    body["attachments"][0]["component_code"] = "OTHER"
    problem = await _submit_invalid(harness, body)
    assert problem["errors"] == [
        {"path": "attachments", "message": "document 'TK01' is required for this procedure", "code": "missing"}
    ]


async def test_form_errors_are_under_form(harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]) -> None:
    body = submission(0)
    body["form"]["legal_basis"] = "castle"
    body["form"]["new_address"]["commune"] = "99999"
    body["form"]["unexpected"] = 1
    problem = await _submit_invalid(harness, body)
    assert sorted(paths(problem)) == ["form.legal_basis", "form.new_address.commune", "form.unexpected"]
    codes = {e["path"]: e["code"] for e in problem["errors"]}
    assert codes["form.legal_basis"] == "literal_error"
    assert codes["form.unexpected"] == "extra_forbidden"


async def test_several_contract_errors_at_once(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = copy.deepcopy(submission(0))
    body["summary"] = ""
    body["jurisdiction"]["province"] = "00"
    del body["applicant"]
    problem = await _submit_invalid(harness, body)
    assert sorted(paths(problem)) == ["applicant", "jurisdiction.province", "summary"]


@pytest.mark.parametrize(
    ("where", "value", "path", "message"),
    [
        (("applicant", "full_name"), "Nguyễn\x00Văn", "applicant.full_name", "(U+0000 at position 6)"),
        (("form", "new_address", "line"), "Số 1\x1b[2J", "form.new_address.line", "(U+001B at position 4)"),
        (("summary",), "Đăng ký\x07", "summary", "(U+0007 at position 7)"),
        (("attachments", 0, "name"), "Tờ khai\nthứ hai", "attachments.0.name", "no line breaks or tabs"),
        (("external_ref",), "re\u0085f", "external_ref", "(U+0085 at position 2)"),
    ],
)
async def test_control_characters_are_refused_with_the_field_path(
    harness: GatewayHarness,
    submission: Callable[[int], dict[str, Any]],
    where: tuple[str | int, ...],
    value: str,
    path: str,
    message: str,
) -> None:
    body = copy.deepcopy(submission(0))
    target = body
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    problem = await _submit_invalid(harness, body)
    [error] = problem["errors"]
    assert (error["path"], error["code"]) == (path, "control_character")
    assert message in error["message"]
    listed = await harness.client.get("/v1/dossiers", headers=harness.headers())
    assert (await listed.json())["items"] == []


async def test_line_breaks_are_taken_where_the_text_may_have_several_lines(
    harness: GatewayHarness, submission: Callable[[int], dict[str, Any]]
) -> None:
    body = copy.deepcopy(submission(0))
    body["summary"] = "Đăng ký thường trú\r\n\tcho cả hộ"
    resp = await harness.client.post("/v1/dossiers", json=body, headers=harness.headers())
    assert resp.status == 202, await resp.text()


@pytest.mark.parametrize("bad", [[], "text", 42])
async def test_body_that_is_not_an_object(harness: GatewayHarness, bad: Any) -> None:
    problem = await _submit_invalid(harness, bad)
    assert paths(problem) == ["$"]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/v1/dossiers?limit=ten", "query.limit"),
        ("/v1/dossiers?limit=-1", "query.limit"),  # SQLite would read a negative LIMIT as none at all
        ("/v1/dossiers?limit=100000", "query.limit"),
        ("/v1/dossiers?status=11", "query.status"),
        ("/v1/admin/deliveries?limit=0", "query.limit"),
        ("/v1/admin/deliveries?limit=x", "query.limit"),
    ],
)
async def test_bad_query_parameters_are_400_with_their_name(harness: GatewayHarness, url: str, path: str) -> None:
    resp = await harness.client.get(url, headers=harness.headers("operator"))
    body = await assert_problem(resp, 400, "invalid-request")
    assert paths(body) == [path]
    assert path.removeprefix("query.") in body["detail"]
