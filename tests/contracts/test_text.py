"""Control characters in what centres send: refused with the field's path; line breaks where text may have them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import Dossier, DossierSubmission
from contracts.base import TRUSTED
from contracts.bundle import ResultHandover, SupplementAnswer
from contracts.text import control_character, json_control_characters
from plugins.land.demo import demo_dossiers


@pytest.fixture
def sub() -> dict[str, Any]:
    return copy.deepcopy(demo_dossiers(3, 1)[0])


def errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in exc.value.errors()]


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\ufffe"])
def test_control_characters_are_refused_anywhere_in_a_submission(sub: dict[str, Any], char: str) -> None:
    sub["applicant"]["full_name"] = f"Nguyễn{char}Văn"
    sub["form"]["parcels"][0]["address"]["line"] = f"Số 1{char}"
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(sub)
    # The applicant's model fails first: the submission's own check waits for its fields to be valid.
    assert errors(exc) == [("applicant.person.full_name", "control_character")]
    sub["applicant"]["full_name"] = "Nguyễn Văn"
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(sub)
    assert errors(exc) == [("form.parcels.0.address.line", "control_character")]


def test_line_breaks_only_where_text_may_have_several_lines(sub: dict[str, Any]) -> None:
    sub["summary"] = "Cấp giấy chứng nhận\r\n\tlần đầu"
    sub["form"]["note_for_office"] = "dòng một\ndòng hai"  # free-form: the procedure's form model decides
    assert json_control_characters(sub["form"]) == []
    sub["applicant"]["full_name"] = "Nguyễn\nVăn"
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(sub)
    assert exc.value.errors()[0]["msg"] == "this field is one line: no line breaks or tabs (U+000A at position 6)"
    assert ResultHandover(note="người nhận:\nanh Nam").note == "người nhận:\nanh Nam"
    with pytest.raises(ValidationError):
        SupplementAnswer.model_validate({"note": "x\x00", "attachments": []})


def test_a_lone_surrogate_is_refused_in_free_form_objects_too(sub: dict[str, Any]) -> None:
    # pydantic refuses one in a str field (string_unicode); a form is free-form JSON, checked by us.
    sub["form"]["parcels"][0]["address"]["line"] = "Số 1\ud800"
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(sub)
    assert errors(exc) == [("form.parcels.0.address.line", "control_character")]


def test_keys_of_free_form_objects_are_checked_too() -> None:
    assert json_control_characters({"ok": {"bad\nkey": 1}}) == [
        (("ok", "bad\nkey"), "in this key: this field is one line: no line breaks or tabs (U+000A at position 3)")
    ]
    assert json_control_characters({"a": ["fine", "not\x00fine"]}) == [
        (("a", 1), "control characters are not allowed (U+0000 at position 3)")
    ]
    assert json_control_characters({"a": "a \\u0000 written out is text"}) == []


def test_printable_text_of_every_script_is_taken() -> None:
    for text in ("Nguyễn Thị Minh Khai", "Ông Ba\u00a0Mươi", "東京", "emoji 🙂", "tab-free"):
        assert control_character(text) is None


def test_a_stored_dossier_is_read_whatever_it_holds(sub: dict[str, Any]) -> None:
    # Checked when it came in; a record must never fail to be read back (TRUSTED: from the store).
    sub["summary"] = "old record\x00"
    row = {
        "id": "0b5c8f7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
        "code": "000.00.01.H26-261120-0007",
        "procedure_code": sub["procedure_code"],
        "procedure_name": "land",
        "receiving_unit": "000.00.01.H26",
        "client_id": "centre-hanoi",
        "agency": "land",
        "endpoint": "hanoi",
        "status": 2,
        "received_at": "2026-11-20T02:00:00+00:00",
        "due_at": "2026-11-30T02:00:00+00:00",
        "updated_at": "2026-11-20T02:00:00+00:00",
        "submission": sub,
    }
    assert Dossier.model_validate(row, context={TRUSTED: True}).submission.summary == "old record\x00"
    with pytest.raises(ValidationError):
        Dossier.model_validate(row)
