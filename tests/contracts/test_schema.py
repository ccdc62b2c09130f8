"""contracts.schema: the committed JSON Schema files match the models, and describe real submissions."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from contracts import DossierSubmission, PersonApplicant
from contracts.schema import DEFAULT_DEST, JSON_SCHEMA_DIALECT, MODELS, export, main, render, stale

REPO = Path(__file__).resolve().parents[2]
REQUIRED_EXPORTS = {
    "DossierSubmission",
    "Dossier",
    "StatusEvent",
    "ProcedureSpec",
    "ResultDocument",
    "SupplementRequest",
    "Attachment",
}


# --- the committed files ----------------------------------------------------------------------------


def test_committed_schemas_are_fresh() -> None:
    """Fails when a model changed without `python -m contracts.schema` being run and committed."""
    assert DEFAULT_DEST == REPO / "contracts" / "schemas" / "v1"
    fresh = render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in sorted(DEFAULT_DEST.glob("*.json"))}
    assert sorted(committed) == sorted(fresh), "run `python -m contracts.schema` and commit the files"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} is stale: run `python -m contracts.schema` and commit it"
    assert stale(DEFAULT_DEST) == []


def test_python_m_contracts_schema_check() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "contracts.schema", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_required_models_are_exported() -> None:
    assert set(MODELS) >= REQUIRED_EXPORTS
    assert set(render()) == {f"{name}.json" for name in MODELS}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_file_format(name: str) -> None:
    text = render()[f"{name}.json"]
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text.splitlines()[1].startswith('  "')  # indent 2
    assert data["$schema"] == JSON_SCHEMA_DIALECT
    assert data["title"] == name


# --- export, stale and main -------------------------------------------------------------------------


def test_export_writes_every_file(tmp_path: Path) -> None:
    dest = tmp_path / "schemas" / "v1"
    written = export(dest)
    assert written == sorted(dest / f"{name}.json" for name in MODELS)
    assert {p.name: p.read_text(encoding="utf-8") for p in written} == render()
    assert stale(dest) == []


def test_stale_lists_missing_changed_and_unknown_files(tmp_path: Path) -> None:
    assert stale(tmp_path / "absent") == sorted(tmp_path / "absent" / f"{name}.json" for name in MODELS)
    export(tmp_path)
    (tmp_path / "Dossier.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "Attachment.json").unlink()
    (tmp_path / "Obsolete.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a schema\n", encoding="utf-8")
    assert stale(tmp_path) == [
        tmp_path / "Attachment.json",
        tmp_path / "Dossier.json",
        tmp_path / "Obsolete.json",
    ]


def test_main_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = str(tmp_path)
    assert main(["--check", "--dest", dest]) == 1
    err = capsys.readouterr().err
    assert f"stale: {tmp_path / 'DossierSubmission.json'}" in err.splitlines()
    assert "python -m contracts.schema" in err

    assert main(["--dest", dest]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / f"{name}.json") for name in sorted(MODELS)]
    assert main(["--check", "--dest", dest]) == 0
    assert capsys.readouterr() == ("", "")

    path = tmp_path / "StatusEvent.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"seq"', '"sequence"'), encoding="utf-8")
    assert main(["--check", "--dest", dest]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"stale: {path}"


# --- the schemas describe the models ----------------------------------------------------------------


def _published_fields(model: type[BaseModel]) -> dict[str, bool]:
    """Field name -> required, for the fields that appear in JSON."""
    return {name: f.is_required() for name, f in model.model_fields.items() if not f.exclude}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schema_properties_are_the_model_fields(name: str) -> None:
    model, _ = MODELS[name]
    schema = json.loads(render()[f"{name}.json"])
    fields = _published_fields(model)
    assert set(schema["properties"]) == set(fields)
    assert set(schema.get("required", [])) == {f for f, req in fields.items() if req}
    assert schema["additionalProperties"] is False  # extra="forbid"


def test_procedure_spec_has_no_form_model() -> None:
    schema = json.loads(render()["ProcedureSpec.json"])
    assert "form_model" not in schema["properties"]
    assert "form_model" not in json.dumps(schema)


def test_nested_models_are_described() -> None:
    schema = json.loads(render()["DossierSubmission.json"])
    defs = schema["$defs"]
    assert schema["properties"]["applicant"]["discriminator"]["propertyName"] == "kind"
    assert defs["PersonApplicant"]["properties"]["kind"]["const"] == "person"
    assert defs["OrganisationApplicant"]["properties"]["kind"]["const"] == "organisation"
    assert schema["properties"]["summary"]["maxLength"] == 1000
    assert defs["Attachment"]["properties"]["sha256"]["pattern"] == "^[0-9a-f]{64}$"
    assert defs["Channel"]["enum"] == [1, 2, 3]


# --- a realistic submission against the exported schema ---------------------------------------------

_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"

SAMPLE_SUBMISSION = json.dumps(
    {
        "procedure_code": "1.001193",
        "channel": 2,
        "applicant": {
            "kind": "person",
            "full_name": "Trần Thị Mai",
            "personal_id": "001305012345",
            "date_of_birth": "2005-07-02",
            "gender": "female",
            "phone": "+84987654321",
            "email": "mai.tran@example.vn",
            "address": {"province": "01", "commune": "00070", "line": "25 Hàng Bài"},
            "vneid_level": 2,
        },
        "jurisdiction": {"province": "01", "commune": "00070"},
        "summary": ("Đăng ký khai sinh cho con Trần Minh Khang, sinh ngày 20/11/2025 tại Bệnh viện Phụ sản Hà Nội"),
        "form": {"child": {"full_name": "Trần Minh Khang", "date_of_birth": "2025-11-20", "gender": "male"}},
        "attachments": [
            {
                "component_code": "TP01",
                "name": "Giấy chứng sinh",
                "media_type": "application/pdf",
                "size": len(_PDF),
                "sha256": hashlib.sha256(_PDF).hexdigest(),
                "content_base64": base64.b64encode(_PDF).decode(),
                "digitised": True,
            },
            {
                "component_code": "TP02",
                "name": "Giấy chứng nhận kết hôn",
                "media_type": "image/jpeg",
                "size": 48213,
                "sha256": "3f" * 32,
                "url": "https://files.example.vn/tp02.jpg",
                "reused": True,
            },
        ],
        "fees": [{"code": "LP01", "name": "Lệ phí cấp bản sao trích lục", "amount": 8000, "paid_online": True}],
        "return_method": 1,
        "external_ref": "HN-HOANKIEM-2025-004512",
    },
    ensure_ascii=False,
)

_ANNOTATIONS = {"$schema", "$defs", "title", "description", "default", "examples", "format", "discriminator"}
_KNOWN = _ANNOTATIONS | {
    "$ref",
    "anyOf",
    "oneOf",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def problems(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$") -> list[str]:
    """Where `value` does not fit `schema`: a small structural check of the keywords pydantic emits.

    Unknown keywords are reported too, so a schema change cannot slip past this check unread.
    """
    out = [f"{at}: unsupported keyword {k}" for k in schema if k not in _KNOWN]
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        out += problems(value, root["$defs"][ref.removeprefix("#/$defs/")], root, at)
    if "anyOf" in schema and all(problems(value, s, root, at) for s in schema["anyOf"]):
        out.append(f"{at}: matches none of anyOf")
    if "oneOf" in schema:
        n = sum(not problems(value, s, root, at) for s in schema["oneOf"])
        if n != 1:
            out.append(f"{at}: matches {n} of oneOf")
    if "type" in schema:
        types = _TYPES[schema["type"]]
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and schema["type"] != "boolean"):
            return [*out, f"{at}: not of type {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        out.append(f"{at}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            out.append(f"{at}: length {len(value)} out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at}: does not match {schema['pattern']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            out.append(f"{at}: {value} out of bounds")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{at}: {value} not above {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            out.append(f"{at}: {len(value)} items out of bounds")
        if "items" in schema:
            for i, item in enumerate(value):
                out += problems(item, schema["items"], root, f"{at}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        out += [f"{at}: missing {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                out += problems(v, props[k], root, f"{at}.{k}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{at}: unexpected {k}")
    return out


@pytest.fixture(scope="module")
def submission_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DEFAULT_DEST / "DossierSubmission.json").read_text(encoding="utf-8"))
    return schema


def test_sample_is_a_valid_submission() -> None:
    s = DossierSubmission.model_validate_json(SAMPLE_SUBMISSION)
    assert isinstance(s.applicant, PersonApplicant)
    assert s.applicant.personal_id == "001305012345"


def test_sample_fits_the_exported_schema(submission_schema: dict[str, Any]) -> None:
    sample = json.loads(SAMPLE_SUBMISSION)
    assert problems(sample, submission_schema, submission_schema) == []
    # what the model accepts and dumps back fits as well
    dumped = json.loads(DossierSubmission.model_validate_json(SAMPLE_SUBMISSION).model_dump_json())
    assert problems(dumped, submission_schema, submission_schema) == []


def _mutate(path: list[str | int], value: Any) -> dict[str, Any]:
    sample: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE_SUBMISSION))
    target: Any = sample
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return sample


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (["priority"], "high", "$: unexpected priority"),
        (["summary"], _DELETE, "$: missing summary"),
        (["summary"], "x" * 1001, "$.summary: length 1001 out of bounds"),
        (["channel"], 4, "$.channel: 4 not in enum"),
        (["applicant", "kind"], "robot", "$.applicant: matches 0 of oneOf"),
        (["attachments", 0, "sha256"], "A" * 64, "$.attachments[0].sha256: does not match ^[0-9a-f]{64}$"),
        (["attachments", 1, "size"], 0, "$.attachments[1].size: 0 not above 0"),
        (["fees", 0, "amount"], "8000", "$.fees[0].amount: not of type integer"),
        (["applicant", "vneid_level"], 3, "$.applicant: matches 0 of oneOf"),
    ],
)
def test_schema_check_catches_bad_samples(
    submission_schema: dict[str, Any], path: list[str | int], value: Any, problem: str
) -> None:
    found = problems(_mutate(path, value), submission_schema, submission_schema)
    assert problem in found


def test_sample_against_jsonschema(submission_schema: dict[str, Any]) -> None:
    import jsonschema  # a development dependency: the reference validator for 2020-12 schemas

    validator = jsonschema.Draft202012Validator(submission_schema)
    assert list(validator.iter_errors(json.loads(SAMPLE_SUBMISSION))) == []
    assert list(validator.iter_errors(_mutate(["priority"], "high")))
