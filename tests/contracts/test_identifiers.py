"""contracts.identifiers: personal ids, procedure codes, agency ids, dossier codes, tax codes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from contracts.identifiers import (
    BIRTH_PLACE_CODES,
    Gender,
    IdKind,
    PersonalIdParts,
    check_agency_eid,
    check_dossier_code,
    check_personal_id,
    check_procedure_code,
    check_tax_code,
    format_dossier_code,
    id_kind,
    mask_personal_id,
    parse_personal_id,
    today,
)

M, F = Gender.MALE, Gender.FEMALE

# --- personal ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "born", "gender"),
    [
        ("079090001234", date(1990, 3, 15), M),  # born 1990, male, registered in TP HCM
        ("001305012345", date(2005, 7, 2), F),  # born 2005, female, Hà Nội
        ("001190000123", date(1990, 12, 31), F),  # digit 4 = 1: female, 1900s
        ("048206000111", date(2006, 1, 1), M),  # digit 4 = 2: male, 2000s, Đà Nẵng
        ("096200000001", date(2000, 2, 29), M),  # year 00 of the 2000s, Cà Mau
        ("001099123456", date(1999, 6, 1), M),
        ("031301987654", date(2001, 9, 9), F),  # Hải Phòng
    ],
)
def test_personal_id_agrees_with_birth_and_gender(value: str, born: date, gender: Gender) -> None:
    assert check_personal_id(value, date_of_birth=born, gender=gender) is IdKind.PERSONAL_ID
    assert check_personal_id(value) is IdKind.PERSONAL_ID


@pytest.mark.parametrize(
    ("value", "born", "message"),
    [
        (
            "079090001234",
            date(1991, 3, 15),
            "digits 4-6 (090) say born in 1990, but the date of birth is in 1991",
        ),
        (
            "079090001234",
            date(2090, 3, 15),
            "digits 4-6 (090) say born in 1990, but the date of birth is in 2090",
        ),
        (
            "001305012345",
            date(1905, 7, 2),
            "digits 4-6 (305) say born in 2005, but the date of birth is in 1905",
        ),
        (
            "001305012345",
            date(2004, 12, 31),
            "digits 4-6 (305) say born in 2005, but the date of birth is in 2004",
        ),
        (
            "001200000001",
            date(1900, 1, 1),
            "digits 4-6 (200) say born in 2000, but the date of birth is in 1900",
        ),
    ],
)
def test_personal_id_disagrees_with_birth_year(value: str, born: date, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_personal_id(value, date_of_birth=born)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("value", "gender", "message"),
    [
        ("079090001234", F, "digit 4 (0) says male, but the gender is female"),
        ("001305012345", M, "digit 4 (3) says female, but the gender is male"),
        ("001190000123", M, "digit 4 (1) says female, but the gender is male"),
        ("048206000111", F, "digit 4 (2) says male, but the gender is female"),
    ],
)
def test_personal_id_disagrees_with_gender(value: str, gender: Gender, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_personal_id(value, gender=gender)
    assert str(exc.value) == message


@pytest.mark.parametrize("digit", "456789")
def test_digit_four_of_four_to_nine_is_a_birth_not_yet_possible(digit: str) -> None:
    """Digit 4 of 4-9 says born in 2100 or later: no such person has an id yet."""
    value = f"001{digit}05012345"
    with pytest.raises(ValueError) as exc:
        check_personal_id(value)
    century = {"4": 2100, "5": 2100, "6": 2200, "7": 2200, "8": 2300, "9": 2300}[digit]
    assert str(exc.value) == f"digits 4-6 ({digit}05) say born in {century + 5}, which is in the future"


def test_a_birth_year_after_this_one_is_refused() -> None:
    year = today().year
    this_year, next_year = f"0012{year % 100:02d}000001", f"0012{(year + 1) % 100:02d}000001"
    assert check_personal_id(this_year) is IdKind.PERSONAL_ID
    with pytest.raises(ValueError, match=rf"say born in {year + 1}, which is in the future$"):
        check_personal_id(next_year)


def test_a_date_of_birth_in_the_future_is_refused() -> None:
    tomorrow = today() + timedelta(days=1)
    value = f"0012{tomorrow.year % 100:02d}000001" if tomorrow.year < 2100 else "001099000001"
    with pytest.raises(ValueError) as exc:
        check_personal_id(value, date_of_birth=tomorrow)
    assert str(exc.value) == f"the date of birth {tomorrow.isoformat()} is in the future"
    with pytest.raises(ValueError, match=r"is in the future$"):
        check_personal_id("025123456", date_of_birth=tomorrow)  # an old card too
    assert check_personal_id("025123456", date_of_birth=today()) is IdKind.OLD_ID_CARD


@pytest.mark.parametrize(("gender", "kind"), [("male", IdKind.PERSONAL_ID), (M, IdKind.PERSONAL_ID)])
def test_gender_may_be_given_as_a_plain_string(gender: str, kind: IdKind) -> None:
    assert check_personal_id("079090001234", date_of_birth=date(1990, 3, 15), gender=gender) is kind
    with pytest.raises(ValueError) as exc:
        check_personal_id("079090001234", gender="female")
    assert str(exc.value) == "digit 4 (0) says male, but the gender is female"


@pytest.mark.parametrize("gender", ["Male", "m", "nam", "", 1])
def test_an_unknown_gender_is_a_clear_error(gender: object) -> None:
    with pytest.raises(ValueError) as exc:
        check_personal_id("079090001234", gender=gender)  # type: ignore[arg-type]
    assert str(exc.value) == f"gender must be one of male, female, not {gender!r}"


def test_birth_year_is_checked_before_gender() -> None:
    with pytest.raises(ValueError, match=r"^digits 4-6 \(090\) say born in 1990"):
        check_personal_id("079090001234", date_of_birth=date(1985, 1, 1), gender=F)


@pytest.mark.parametrize("value", ["025123456", "381234567", "000000001", "271999888"])
def test_old_nine_digit_card_is_its_own_kind(value: str) -> None:
    assert id_kind(value) is IdKind.OLD_ID_CARD
    # an old card carries no birth data: any date of birth and gender are accepted
    assert check_personal_id(value, date_of_birth=date(1970, 1, 1), gender=F) is IdKind.OLD_ID_CARD
    assert check_personal_id(value, date_of_birth=date(2003, 1, 1), gender=M) is IdKind.OLD_ID_CARD


@pytest.mark.parametrize(
    "value",
    [
        "",
        "07909000123",  # 11 digits
        "0790900012345",  # 13 digits
        "02512345",  # 8 digits
        "0251234567",  # 10 digits
        "07909000123A",
        "079 090 001 234",
        "079-090-001234",
        "+79090001234",
        "079090001234\n",  # a trailing newline is not part of an id
        "\n079090001234",
        "０７９０９０００１２３４",  # full-width digits
        "٠٢٥١٢٣٤٥٦",  # Arabic-Indic digits, nine of them
    ],
)
def test_personal_id_bad_shape(value: str) -> None:
    message = "a personal id has 12 digits (or 9 for an old identity card)"
    with pytest.raises(ValueError) as exc:
        check_personal_id(value)
    assert str(exc.value) == message
    with pytest.raises(ValueError) as exc:
        id_kind(value)
    assert str(exc.value) == message


@pytest.mark.parametrize("place", ["000", "003", "005", "063", "097", "099", "100", "999"])
def test_personal_id_unknown_birth_place(place: str) -> None:
    value = place + "090001234"
    with pytest.raises(ValueError) as exc:
        check_personal_id(value)
    assert str(exc.value) == f"digits 1-3 ({place}) are not a province code of birth registration"


def test_birth_place_table_is_the_63_pre_2025_provinces() -> None:
    assert len(BIRTH_PLACE_CODES) == 63
    assert {"001", "031", "048", "079", "092", "096"} <= BIRTH_PLACE_CODES
    assert all(len(c) == 3 and c.isdigit() for c in BIRTH_PLACE_CODES)


@pytest.mark.parametrize(
    ("digit", "century", "gender"),
    [
        ("0", 1900, M),
        ("1", 1900, F),
        ("2", 2000, M),
        ("3", 2000, F),
        ("4", 2100, M),
        ("5", 2100, F),
        ("6", 2200, M),
        ("7", 2200, F),
        ("8", 2300, M),
        ("9", 2300, F),
    ],
)
def test_digit_four_encodes_century_and_gender(digit: str, century: int, gender: Gender) -> None:
    parts = parse_personal_id(f"001{digit}87000042")
    assert parts == PersonalIdParts("001", century, gender, 87)
    assert parts.birth_years() == range(century + 87, century + 88)


def test_parse_personal_id() -> None:
    parts = parse_personal_id("001305012345")
    assert parts == PersonalIdParts(birth_place="001", century=2000, gender=F, birth_year_2=5)
    assert list(parts.birth_years()) == [2005]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("025123456", "a personal id has exactly 12 digits"),  # old cards cannot be parsed
        ("07909000123", "a personal id has exactly 12 digits"),
        ("079090001234\n", "a personal id has exactly 12 digits"),
        ("099090001234", "digits 1-3 (099) are not a province code of birth registration"),
    ],
)
def test_parse_personal_id_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_personal_id(value)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("079090001234", "079*******34"),
        ("025123456", "025****56"),
        ("123456", "123*56"),
        ("12345", "*****"),
        ("", ""),
    ],
)
def test_mask_personal_id(value: str, masked: str) -> None:
    assert mask_personal_id(value) == masked


# --- procedure codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.001193", "1.000656", "2.000001"])
def test_procedure_code_valid(value: str) -> None:
    assert check_procedure_code(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "1.1193",
        "01.001193",
        "a.001193",
        "1001193",
        "1.0011930",
        "1,001193",
        "1-001193",
        "1.00119a",
        "",
        "1.001193\n",
        "١.٠٠١١٩٣",  # Arabic-Indic digits
    ],
)
def test_procedure_code_invalid(value: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_procedure_code(value)
    assert str(exc.value) == "a procedure code looks like 1.001193 (one digit, a dot, six digits)"


# --- agency electronic ids --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["000.00.01.H22", "000.00.00.H30", "000.00.00.G12", "123.45.67.K01"])
def test_agency_eid_valid(value: str) -> None:
    assert check_agency_eid(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "000.00.01.h22",
        "00.00.01.H22",
        "000.00.01.H2",
        "000.00.01.H222",
        "000.00.1.H22",
        "000-00-01-H22",
        "000.00.01.22H",
        "000.00.01",
        "",
        "000.00.01.H22\n",
        "٠٠٠.٠٠.٠١.H22",
    ],
)
def test_agency_eid_invalid(value: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_agency_eid(value)
    assert str(exc.value) == "an agency electronic id looks like 000.00.01.H22"


# --- dossier codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "000.00.01.H22-251122-0001",
        "000.00.00.H30-260105-9999",
        "000.00.01.H22-251122-12345",  # 5-digit suffix
        "000.00.01.H22-251122-000123",  # 6-digit suffix
        "000.00.00.H30-240229-0001",  # 29 Feb of a leap year
    ],
)
def test_dossier_code_valid(value: str) -> None:
    assert check_dossier_code(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "000.00.01.H22-251122-001",  # 3-digit suffix
        "000.00.01.H22-251122-0000001",  # 7-digit suffix
        "00.00.01.H22-251122-0001",  # bad agency id
        "000.00.01.h22-251122-0001",
        "000.00.01.H22-20251122-0001",  # 4-digit year
        "000.00.01.H22-2511-0001",
        "000.00.01.H22_251122_0001",
        "000.00.01.H22-251122",
        "251122-0001",
        "",
        "000.00.01.H22-251122-0001\n",
        "000.00.01.H22-２５１１２２-0001",  # full-width digits in the date
    ],
)
def test_dossier_code_bad_shape(value: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_dossier_code(value)
    assert str(exc.value) == ("a dossier code looks like 000.00.01.H22-251122-0001 (agency id, yymmdd, sequence)")


@pytest.mark.parametrize("ymd", ["251332", "251131", "250229", "251100", "250001", "251300"])
def test_dossier_code_bad_date(ymd: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_dossier_code(f"000.00.01.H22-{ymd}-0001")
    assert str(exc.value) == f"the date part {ymd} of the dossier code is not a real date"


def test_dossier_code_dated_in_the_future() -> None:
    assert check_dossier_code(format_dossier_code("000.00.01.H22", today(), 1))
    tomorrow = today() + timedelta(days=1)
    with pytest.raises(ValueError) as exc:
        check_dossier_code(format_dossier_code("000.00.01.H22", tomorrow, 1))
    assert str(exc.value) == f"the date part {tomorrow:%y%m%d} of the dossier code is in the future"


@pytest.mark.parametrize(
    ("seq", "expected"),
    [
        (1, "000.00.01.H22-251122-0001"),
        (9999, "000.00.01.H22-251122-9999"),
        (10000, "000.00.01.H22-251122-10000"),
        (123456, "000.00.01.H22-251122-123456"),
    ],
)
def test_format_dossier_code_round_trips(seq: int, expected: str) -> None:
    code = format_dossier_code("000.00.01.H22", date(2025, 11, 22), seq)
    assert code == expected
    assert check_dossier_code(code) == code


# --- tax codes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0100109106", "0302019221", "0100109106-001", "0312345678-999"])
def test_tax_code_valid(value: str) -> None:
    assert check_tax_code(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "010010910",
        "01001091061",
        "0100109106-01",
        "0100109106001",
        "0100109106-",
        "MST0100109",
        "",
        "٠١٠٠١٠٩١٠٦",
    ],
)
def test_tax_code_invalid(value: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_tax_code(value)
    assert str(exc.value) == "a tax code has 10 digits, or 10 digits, a dash and 3 digits for a branch"
