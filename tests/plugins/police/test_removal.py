"""Removal of permanent residence (the police step of the death bundle)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from plugins.police import wire
from plugins.police.forms import ResidenceRemovalForm
from tests.plugins.police.test_wire import DID, HEX, dossier


def removal_submission(form: dict[str, Any]) -> dict[str, Any]:
    return {
        "procedure_code": "1.004206",
        "applicant": {
            "kind": "person",
            "full_name": "Trần Thị Lan",
            "personal_id": "001185012345",
            "date_of_birth": "1985-03-02",
            "gender": "female",
        },
        "jurisdiction": {"province": "01"},
        "summary": "Xóa đăng ký thường trú cho người đã mất",
        "form": form,
    }


PERSON = {"full_name": "Trần Văn Hùng", "date_of_birth": "1950-01-09", "gender": "male", "personal_id": "001050012345"}


def test_removal_request_takes_the_register_number_from_the_death_step() -> None:
    form = {"person": PERSON, "reason": "deceased", "date_of_death": "2026-11-01"}
    body = wire.removal_request(
        dossier(removal_submission(form)),
        f"{DID}:submit",
        "http://gw/v1/callbacks/police",
        {"death_register_number": "KT-2026-000123"},
    )
    assert body["maYeuCau"] == f"{HEX}-submit"
    assert body["soDinhDanh"] == "001050012345"
    assert body["ngayMat"] == "20261101"
    assert body["soTrichLucKhaiTu"] == "KT-2026-000123"
    assert "diaChiMoi" not in body


def test_removal_form_needs_the_persons_id() -> None:
    with pytest.raises(ValidationError, match="needs a personal id"):
        ResidenceRemovalForm.model_validate({"person": {**PERSON, "personal_id": None}})
