"""contracts.dossier: the submission a centre sends and the dossier the gateway returns."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts import (
    Address,
    Attachment,
    Channel,
    DeliveryState,
    Dossier,
    DossierStatus,
    DossierSubmission,
    Fee,
    IdKind,
    Jurisdiction,
    OrganisationApplicant,
    PersonApplicant,
    ResultDocument,
    ReturnMethod,
    StatusEvent,
    SupplementRequest,
)

ICT = timezone(timedelta(hours=7))
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, Any]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


def person(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "person",
        "full_name": "Nguyễn Văn An",
        "personal_id": "079090001234",
        "date_of_birth": "1990-03-15",
        "gender": "male",
        "phone": "0912345678",
        "email": "an.nguyen@example.vn",
        "address": {"province": "79", "commune": "26737", "line": "12 Trần Quang Khải"},
        "vneid_level": 2,
    }
    data.update(over)
    return data


def organisation(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "organisation",
        "name": "Công ty TNHH Sao Mai",
        "tax_code": "0100109106",
        "organisation_type": 2,
        "representative": person(),
        "address": {"province": "01", "commune": "00070", "line": "25 Hàng Bài"},
    }
    data.update(over)
    return data


def attachment(content: bytes = PDF, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "component_code": "TP01",
        "name": "Giấy chứng sinh",
        "media_type": "application/pdf",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_base64": base64.b64encode(content).decode(),
    }
    data.update(over)
    return data


def submission(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "procedure_code": "1.001193",
        "channel": 1,
        "applicant": person(),
        "jurisdiction": {"province": "79", "commune": "26737"},
        "summary": "Đăng ký khai sinh cho con Nguyễn Văn Bình, sinh ngày 20/11/2025",
        "form": {"child_name": "Nguyễn Văn Bình", "child_birth_date": "2025-11-20"},
        "attachments": [
            attachment(),
            {
                "component_code": "TP02",
                "name": "Căn cước của người đi đăng ký",
                "media_type": "image/jpeg",
                "size": 48213,
                "sha256": "a" * 64,
                "url": "https://files.example.vn/tp02.jpg",
                "reused": True,
            },
        ],
        "fees": [{"code": "LP01", "name": "Lệ phí cấp bản sao trích lục", "amount": 8000}],
        "return_method": 1,
        "external_ref": "TTPVHCC-TANDINH-2025-000123",
    }
    data.update(over)
    return data


# --- the whole submission ---------------------------------------------------------------------------


def test_realistic_submission() -> None:
    s = DossierSubmission.model_validate(submission())
    assert isinstance(s.applicant, PersonApplicant)
    assert s.applicant.id_kind is IdKind.PERSONAL_ID
    assert s.applicant.address == Address(province="79", commune="26737", line="12 Trần Quang Khải")
    assert s.channel is Channel.IN_PERSON
    assert s.return_method is ReturnMethod.POSTAL
    assert [a.inline_bytes for a in s.attachments] == [len(PDF), 0]
    assert s.fees == [Fee(code="LP01", name="Lệ phí cấp bản sao trích lục", amount=8000)]
    assert DossierSubmission.model_validate_json(s.model_dump_json()) == s


def test_defaults_of_a_minimal_submission() -> None:
    s = DossierSubmission.model_validate(
        {
            "procedure_code": "1.000656",
            "applicant": person(address=None, phone=None, email=None, vneid_level=0),
            "jurisdiction": {"province": "01"},
            "summary": "Đăng ký khai tử",
        }
    )
    assert (s.channel, s.return_method, s.form, s.attachments, s.fees, s.external_ref) == (
        Channel.IN_PERSON,
        ReturnMethod.IN_PERSON,
        {},
        [],
        [],
        None,
    )


def test_strings_are_stripped() -> None:
    s = DossierSubmission.model_validate(submission(procedure_code=" 1.001193\n", summary="  Khai sinh  "))
    assert (s.procedure_code, s.summary) == ("1.001193", "Khai sinh")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1.1193", "Value error, a procedure code looks like 1.001193 (one digit, a dot, six digits)"),
        ("01.001193", "Value error, a procedure code looks like 1.001193 (one digit, a dot, six digits)"),
    ],
)
def test_submission_procedure_code(code: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(procedure_code=code))
    err = only_error(exc)
    assert (err["loc"], err["msg"]) == (("procedure_code",), message)


@pytest.mark.parametrize("length", [1, 999, 1000])
def test_summary_up_to_1000_characters(length: int) -> None:
    s = DossierSubmission.model_validate(submission(summary="x" * length))
    assert len(s.summary) == length


@pytest.mark.parametrize(
    ("summary", "kind"),
    [
        ("x" * 1001, "string_too_long"),
        ("đ" * 1001, "string_too_long"),
        ("", "string_too_short"),
        ("   ", "string_too_short"),
    ],
)
def test_summary_bounds(summary: str, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(summary=summary))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("summary",), kind)


@pytest.mark.parametrize(
    ("over", "loc"),
    [
        ({"priority": "high"}, ("priority",)),
        ({"applicant": person(nickname="An")}, ("applicant", "person", "nickname")),
        ({"applicant": organisation(website="https://saomai.vn")}, ("applicant", "organisation", "website")),
        ({"jurisdiction": {"province": "79", "district": "760"}}, ("jurisdiction", "district")),
        ({"attachments": [attachment(pages=2)]}, ("attachments", 0, "pages")),
        ({"fees": [{"code": "LP01", "name": "Lệ phí", "amount": 8000, "vat": 0}]}, ("fees", 0, "vat")),
    ],
)
def test_extra_fields_are_rejected(over: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(**over))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (loc, "extra_forbidden")


@pytest.mark.parametrize(
    ("obj", "field", "value"),
    [
        (lambda: DossierSubmission.model_validate(submission()), "summary", "changed"),
        (lambda: PersonApplicant.model_validate(person()), "personal_id", "001305012345"),
        (lambda: Attachment.model_validate(attachment()), "size", 1),
        (lambda: Jurisdiction(province="01"), "province", "79"),
    ],
)
def test_models_are_frozen(obj: Any, field: str, value: Any) -> None:
    model = obj()
    with pytest.raises(ValidationError) as exc:
        setattr(model, field, value)
    err = only_error(exc)
    assert (err["loc"], err["type"]) == ((field,), "frozen_instance")


@pytest.mark.parametrize(
    ("over", "loc", "kind"),
    [
        ({"channel": 4}, ("channel",), "enum"),
        ({"return_method": 3}, ("return_method",), "enum"),
        ({"attachments": [attachment()] * 51}, ("attachments",), "too_long"),
        (
            {"fees": [{"code": "LP01", "name": "Lệ phí", "amount": -1}]},
            ("fees", 0, "amount"),
            "greater_than_equal",
        ),
        (
            {"fees": [{"code": "LP01", "name": "Thuế", "amount": 1, "kind": "vat"}]},
            ("fees", 0, "kind"),
            "literal_error",
        ),
        ({"external_ref": "x" * 101}, ("external_ref",), "string_too_long"),
    ],
)
def test_submission_field_constraints(over: dict[str, Any], loc: tuple[str | int, ...], kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(**over))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (loc, kind)


# --- applicants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("personal_id", "born", "gender", "kind"),
    [
        ("079090001234", "1990-03-15", "male", IdKind.PERSONAL_ID),
        ("001305012345", "2005-07-02", "female", IdKind.PERSONAL_ID),
        ("025123456", "1968-01-01", "female", IdKind.OLD_ID_CARD),
    ],
)
def test_person_applicant(personal_id: str, born: str, gender: str, kind: IdKind) -> None:
    p = PersonApplicant.model_validate(person(personal_id=personal_id, date_of_birth=born, gender=gender, address=None))
    assert p.id_kind is kind
    assert p.date_of_birth == date.fromisoformat(born)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"date_of_birth": "1991-03-15"},
            "Value error, digits 4-6 (090) say born in 1990, but the date of birth is in 1991",
        ),
        ({"gender": "female"}, "Value error, digit 4 (0) says male, but the gender is female"),
        (
            {"personal_id": "001305012345", "date_of_birth": "2005-07-02"},
            "Value error, digit 4 (3) says female, but the gender is male",
        ),
        (
            {"personal_id": "099090001234"},
            "Value error, digits 1-3 (099) are not a province code of birth registration",
        ),
        (
            {"personal_id": "07909000123"},
            "Value error, a personal id has 12 digits (or 9 for an old identity card)",
        ),
    ],
)
def test_person_id_must_agree(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(applicant=person(**over)))
    err = only_error(exc)
    assert (err["loc"], err["msg"]) == (("applicant", "person"), message)


def test_organisation_applicant() -> None:
    s = DossierSubmission.model_validate(submission(applicant=organisation()))
    org = s.applicant
    assert isinstance(org, OrganisationApplicant)
    assert org.tax_code == "0100109106"
    assert org.representative is not None and org.representative.full_name == "Nguyễn Văn An"


@pytest.mark.parametrize(
    ("over", "loc", "kind"),
    [
        ({"tax_code": "010010910"}, ("applicant", "organisation", "tax_code"), "value_error"),
        ({"tax_code": "0100109106-001"}, None, None),  # a branch
        ({"organisation_type": 1}, ("applicant", "organisation", "organisation_type"), "literal_error"),
        ({"organisation_type": 3, "representative": None}, None, None),  # a state agency
        (
            {"representative": person(gender="female")},
            ("applicant", "organisation", "representative"),
            "value_error",
        ),
    ],
)
def test_organisation_fields(over: dict[str, Any], loc: tuple[str, ...] | None, kind: str | None) -> None:
    if loc is None:
        DossierSubmission.model_validate(submission(applicant=organisation(**over)))
        return
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(applicant=organisation(**over)))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (loc, kind)


@pytest.mark.parametrize(
    ("applicant", "kind"),
    [
        ({**person(), "kind": "robot"}, "union_tag_invalid"),
        ({k: v for k, v in person().items() if k != "kind"}, "union_tag_not_found"),
    ],
)
def test_applicant_discriminator(applicant: dict[str, Any], kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(applicant=applicant))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("applicant",), kind)


def test_discriminator_picks_the_model() -> None:
    # the person's fields under kind=organisation are checked as an organisation's
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(applicant={**person(), "kind": "organisation"}))
    locs = {e["loc"] for e in exc.value.errors()}
    assert ("applicant", "organisation", "name") in locs
    assert ("applicant", "organisation", "full_name") in locs


@pytest.mark.parametrize("phone", ["0912345678", "+84912345678", "02838291234", "0987654321"])
def test_phone_valid(phone: str) -> None:
    assert PersonApplicant.model_validate(person(phone=phone)).phone == phone


@pytest.mark.parametrize(
    "phone",
    [
        "912345678",  # no leading 0 or +84
        "091234567",  # too short
        "091234567890",  # too long
        "+8491234567",
        "0912 345 678",
        "0912-345-678",
        "84912345678",
        "0٩١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "０９１２３４５６７８",  # full-width digits
    ],
)
def test_phone_invalid(phone: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PersonApplicant.model_validate(person(phone=phone))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("phone",), "string_pattern_mismatch")


@pytest.mark.parametrize("email", ["an@", "an.nguyen@example", "an nguyen@example.vn", "@example.vn", "a@@b.vn"])
def test_email_invalid(email: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PersonApplicant.model_validate(person(email=email))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("email",), "string_pattern_mismatch")


def test_vneid_level() -> None:
    with pytest.raises(ValidationError) as exc:
        PersonApplicant.model_validate(person(vneid_level=3))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("vneid_level",), "literal_error")


# --- places -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("province", "commune"), [("79", "26737"), ("01", "00070"), ("96", "32002"), ("01", None), ("48", None)]
)
def test_jurisdiction_valid(province: str, commune: str | None) -> None:
    j = Jurisdiction(province=province, commune=commune)
    assert (j.province, j.commune) == (province, commune)


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        (
            {"province": "79", "commune": "00070"},
            ("jurisdiction",),
            "Value error, commune 00070 (Phường Hoàn Kiếm) is in province 01, not 79",
        ),
        (
            {"province": "01", "commune": "26737"},
            ("jurisdiction",),
            "Value error, commune 26737 (Phường Tân Định) is in province 79, not 01",
        ),
        ({"province": "99"}, ("jurisdiction", "province"), "Value error, 99 is not a province code of 2025"),
        (
            {"province": "1"},
            ("jurisdiction", "province"),
            "Value error, a province code has 2 digits, e.g. 01 (Hà Nội) or 79 (TP Hồ Chí Minh)",
        ),
        (
            {"province": "01", "commune": "99999"},
            ("jurisdiction", "commune"),
            "Value error, 99999 is not a commune code of 2025",
        ),
    ],
)
def test_jurisdiction_invalid(data: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(jurisdiction=data))
    err = only_error(exc)
    assert (err["loc"], err["msg"]) == (loc, message)


def test_address_commune_must_be_in_its_province() -> None:
    address = {"province": "01", "commune": "26737", "line": "12 Trần Quang Khải"}
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(applicant=person(address=address)))
    err = only_error(exc)
    assert err["loc"] == ("applicant", "person", "address")
    assert err["msg"] == "Value error, commune 26737 (Phường Tân Định) is in province 79, not 01"


def test_address_line_required() -> None:
    with pytest.raises(ValidationError) as exc:
        Address.model_validate({"province": "01", "commune": "00070", "line": "  "})
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("line",), "string_too_short")


# --- attachments ------------------------------------------------------------------------------------


def test_attachment_inline() -> None:
    a = Attachment.model_validate(attachment())
    assert a.size == len(PDF)
    assert a.inline_bytes == len(PDF)


def test_attachment_by_url() -> None:
    data = attachment(content_base64=None, url="https://files.example.vn/tp01.pdf")
    assert Attachment.model_validate(data).inline_bytes == 0


def test_attachment_with_both_content_and_url_is_checked() -> None:
    url = "https://files.example.vn/tp01.pdf"
    assert Attachment.model_validate(attachment(url=url)).inline_bytes == len(PDF)
    with pytest.raises(ValidationError, match="sha256 does not match the content"):
        Attachment.model_validate(attachment(url=url, sha256="0" * 64))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"size": len(PDF) + 1},
            f"Value error, size says {len(PDF) + 1} bytes but the content has {len(PDF)}",
        ),
        ({"size": 1}, f"Value error, size says 1 bytes but the content has {len(PDF)}"),
        (
            {"sha256": hashlib.sha256(b"another file").hexdigest()},
            "Value error, sha256 does not match the content",
        ),
        ({"content_base64": "not base64!!"}, "Value error, content_base64 is not valid base64"),
        ({"content_base64": "JVBERi0xLjc"}, "Value error, content_base64 is not valid base64"),  # no padding
        ({"content_base64": "JVBER i0xLjc="}, "Value error, content_base64 is not valid base64"),
        ({"content_base64": "JVBERi0xLjcK\u00e9"}, "Value error, content_base64 is not valid base64"),
        ({"content_base64": None}, "Value error, an attachment needs inline content_base64, an upload_id or a url"),
    ],
)
def test_attachment_content_must_agree(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(attachments=[attachment(**over)]))
    err = only_error(exc)
    assert (err["loc"], err["msg"]) == (("attachments", 0), message)


@pytest.mark.parametrize(
    ("over", "field", "kind"),
    [
        ({"size": 0}, "size", "greater_than"),
        ({"sha256": "A" * 64}, "sha256", "string_pattern_mismatch"),  # lower-case hex only
        ({"sha256": "a" * 63}, "sha256", "string_pattern_mismatch"),
        ({"media_type": "PDF"}, "media_type", "string_pattern_mismatch"),
        ({"url": "ftp://files.example.vn/tp01.pdf"}, "url", "string_pattern_mismatch"),
        ({"component_code": ""}, "component_code", "string_too_short"),
        ({"name": "x" * 201}, "name", "string_too_long"),
    ],
)
def test_attachment_fields(over: dict[str, Any], field: str, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Attachment.model_validate(attachment(**over))
    err = only_error(exc)
    assert (err["loc"], err["type"]) == ((field,), kind)


# --- what the gateway returns -----------------------------------------------------------------------

AT = datetime(2025, 11, 24, 9, 30, tzinfo=ICT)


def dossier(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "0b5f6c1e-8a43-4c1a-9d27-3f3b1f0a6e11",
        "code": "000.00.01.H22-251124-0001",
        "procedure_code": "1.001193",
        "procedure_name": "Đăng ký khai sinh",
        "receiving_unit": "000.00.01.H22",
        "client_id": "ttpvhcc-tan-dinh",
        "agency": "justice",
        "endpoint": "hotich-hcm",
        "status": 2,
        "received_at": AT.isoformat(),
        "due_at": (AT + timedelta(days=1)).isoformat(),
        "updated_at": AT.isoformat(),
        "submission": submission(),
        "delivery": {"state": "pending", "attempts": 0},
        "results": [
            {
                "name": "Giấy khai sinh",
                "component_code": "KQ01",
                "result_code": "123/2025",
                "size": 0,
                "sha256": hashlib.sha256(b"").hexdigest(),
                "url": "https://files.example.vn/kq01.pdf",
            }
        ],
    }
    data.update(over)
    return data


def test_dossier() -> None:
    d = Dossier.model_validate(dossier())
    assert d.id == UUID("0b5f6c1e-8a43-4c1a-9d27-3f3b1f0a6e11")
    assert d.status is DossierStatus.RECEIVED
    assert d.results[0].media_type == "application/pdf"
    assert d.delivery == DeliveryState(state="pending", attempts=0)
    assert Dossier.model_validate_json(d.model_dump_json()) == d


@pytest.mark.parametrize(
    ("over", "loc", "message"),
    [
        (
            {"code": "000.00.01.H22-251332-0001"},
            ("code",),
            "Value error, the date part 251332 of the dossier code is not a real date",
        ),
        (
            {"code": "00.00.01.H22-251124-0001"},
            ("code",),
            "Value error, a dossier code looks like 000.00.01.H22-251122-0001 (agency id, yymmdd, sequence)",
        ),
        (
            {"receiving_unit": "000.00.01.h22"},
            ("receiving_unit",),
            "Value error, an agency electronic id looks like 000.00.01.H22",
        ),
        (
            {"received_at": "2025-11-24T09:30:00"},
            ("received_at",),
            "Value error, a time must carry its UTC offset, e.g. 2025-11-22T09:30:00+07:00",
        ),
        ({"status": 11}, ("status",), "Input should be 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 or 10"),
        (
            {"delivery": {"state": "lost", "attempts": 1}},
            ("delivery", "state"),
            "Input should be 'waiting', 'pending', 'in_flight', 'delivered', 'dead' or 'cancelled'",
        ),
    ],
)
def test_dossier_invalid(over: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Dossier.model_validate(dossier(**over))
    err = only_error(exc)
    assert (err["loc"], err["msg"]) == (loc, message)


def test_status_event() -> None:
    e = StatusEvent(seq=1, status=DossierStatus.PROCESSING, at=AT, actor="agency:justice")
    assert (e.note, e.data) == ("", {})
    with pytest.raises(ValidationError) as exc:
        StatusEvent.model_validate({"seq": 1, "status": 4, "at": "2025-11-24T09:30:00", "actor": "x"})
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("at",), "value_error")


def test_supplement_request() -> None:
    r = SupplementRequest(
        requested_by="UBND phường Tân Định",
        items=["Bản sao giấy chứng nhận kết hôn"],
        requested_at=AT,
        due_at=AT + timedelta(days=9),
    )
    assert r.answered_at is None
    with pytest.raises(ValidationError) as exc:
        SupplementRequest.model_validate(
            {"requested_by": "x", "items": [], "requested_at": AT.isoformat(), "due_at": AT.isoformat()}
        )
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("items",), "too_short")


def test_result_document() -> None:
    r = ResultDocument(name="Giấy khai sinh", component_code="KQ01", size=1024, sha256="b" * 64)
    assert r.media_type == "application/pdf"
    with pytest.raises(ValidationError) as exc:
        ResultDocument(name="Giấy khai sinh", component_code="KQ01", size=-1, sha256="b" * 64)
    err = only_error(exc)
    assert (err["loc"], err["type"]) == (("size",), "greater_than_equal")


# --- dates that cannot be in the future -------------------------------------------------------------


def test_a_date_of_birth_in_the_future_is_refused() -> None:
    from contracts.identifiers import today

    tomorrow = today() + timedelta(days=1)
    with pytest.raises(ValidationError) as exc:
        PersonApplicant.model_validate(person(personal_id="025123456", date_of_birth=tomorrow.isoformat()))
    err = only_error(exc)
    assert err["msg"] == f"Value error, the date of birth {tomorrow.isoformat()} is in the future"


def test_submitted_online_before_it_was_received() -> None:
    now = datetime.now(ICT)
    s = DossierSubmission.model_validate(submission(channel=2, submitted_at=(now - timedelta(days=2)).isoformat()))
    assert s.submitted_at == (now - timedelta(days=2))
    with pytest.raises(ValidationError) as exc:
        DossierSubmission.model_validate(submission(submitted_at=(now + timedelta(hours=1)).isoformat()))
    err = only_error(exc)
    assert err["msg"].startswith("Value error, submitted_at ") and err["msg"].endswith(" is in the future")
    # a few seconds ahead is a clock, not the future
    assert DossierSubmission.model_validate(submission(submitted_at=(now + timedelta(seconds=30)).isoformat()))


# --- read back from the store -------------------------------------------------------------------------


# Each passed when it came in and no longer passes the intake's checks: a commune merged away (made up
# here: 99999), a rule on personal ids that changed, a province split, a clock that was ahead.
STALE = {
    "commune merged away": (
        dict(applicant=person(address={"province": "79", "commune": "99999", "line": "1 Lê Lợi"})),
        lambda d: d.applicant.address.commune == "99999",
    ),
    "personal id rule": (dict(applicant=person(gender="female")), lambda d: d.applicant.gender == "female"),
    "commune moved province": (
        dict(jurisdiction={"province": "01", "commune": "26737"}),
        lambda d: (d.jurisdiction.province, d.jurisdiction.commune) == ("01", "26737"),
    ),
    "submitted ahead": (
        dict(submitted_at=(datetime.now(ICT) + timedelta(days=2)).isoformat()),
        lambda d: d.submitted_at > datetime.now(ICT),
    ),
}


@pytest.mark.parametrize(("stale", "kept"), STALE.values(), ids=STALE.keys())
def test_a_stored_submission_reads_back_even_when_the_checks_have_changed(stale: dict[str, Any], kept: Any) -> None:
    from contracts.base import TRUSTED

    with pytest.raises(ValidationError):
        DossierSubmission.model_validate(submission(**stale))  # at the intake
    read = DossierSubmission.model_validate(submission(**stale), context={TRUSTED: True})  # from the store
    assert kept(read)


def test_a_stored_dossier_code_dated_ahead_reads_back() -> None:
    from pydantic import TypeAdapter

    from contracts.base import TRUSTED, DossierCode

    ahead = f"000.00.01.H26-{(date.today() + timedelta(days=400)):%y%m%d}-0001"
    codes = TypeAdapter(DossierCode)
    with pytest.raises(ValidationError, match="in the future"):
        codes.validate_python(ahead)
    assert codes.validate_python(ahead, context={TRUSTED: True}) == ahead
