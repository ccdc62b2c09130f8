"""Validators for Vietnamese identifiers: personal ids, procedure codes, dossier codes, agency ids.

Pure functions that raise ValueError with a readable message; pydantic turns that into a field error.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

# re.ASCII: \d must not match full-width or other non-ASCII digits; callers use fullmatch, because `$`
# also matches before a trailing newline.
_DIGITS_12 = re.compile(r"^\d{12}$", re.ASCII)
_DIGITS_9 = re.compile(r"^\d{9}$", re.ASCII)
PROCEDURE_CODE_RE = re.compile(r"^\d\.\d{6}$", re.ASCII)
AGENCY_EID_RE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$", re.ASCII)
DOSSIER_CODE_RE = re.compile(r"^(?P<eid>\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})-(?P<ymd>\d{6})-(?P<seq>\d{4,6})$", re.ASCII)
TAX_CODE_RE = re.compile(r"^\d{10}(-\d{3})?$", re.ASCII)

_VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# A clock a little ahead of ours is not a time in the future.
CLOCK_SKEW = timedelta(minutes=5)


def today() -> date:
    """Today in Việt Nam: what 'in the future' is measured against."""
    return datetime.now(_VN_TZ).date()


def check_not_future(value: datetime, what: str) -> datetime:
    if value - CLOCK_SKEW > datetime.now(_VN_TZ):
        raise ValueError(f"{what} {value.isoformat()} is in the future")
    return value


def check_birth_date(value: date) -> date:
    if value > today():
        raise ValueError(f"the date of birth {value.isoformat()} is in the future")
    return value


# Birth-registration place codes (digits 1-3): the 63 provinces of the pre-2025 table. The 34 provinces
# of 2025 kept codes from that table, so every id issued before or after the merger starts with one.
BIRTH_PLACE_CODES = frozenset(
    f"{n:03d}"
    for n in (
        1,
        2,
        4,
        6,
        8,
        10,
        11,
        12,
        14,
        15,
        17,
        19,
        20,
        22,
        24,
        25,
        26,
        27,
        30,
        31,
        33,
        34,
        35,
        36,
        37,
        38,
        40,
        42,
        44,
        45,
        46,
        48,
        49,
        51,
        52,
        54,
        56,
        58,
        60,
        62,
        64,
        66,
        67,
        68,
        70,
        72,
        74,
        75,
        77,
        79,
        80,
        82,
        83,
        84,
        86,
        87,
        89,
        91,
        92,
        93,
        94,
        95,
        96,
    )
)


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class IdKind(StrEnum):
    PERSONAL_ID = "personal_id"  # 12-digit số định danh cá nhân / CCCD (portal LoaiDinhDanh=1)
    OLD_ID_CARD = "old_id_card"  # 9-digit CMND (portal LoaiDinhDanh=2)


# Digit 4 encodes century and gender: (male, female) per century of birth.
_CENTURY_DIGITS: dict[int, tuple[str, str]] = {
    1900: ("0", "1"),
    2000: ("2", "3"),
    2100: ("4", "5"),
    2200: ("6", "7"),
    2300: ("8", "9"),
}
_DIGIT_TO_CENTURY_GENDER: dict[str, tuple[int, Gender]] = {
    d: (century, g)
    for century, pair in _CENTURY_DIGITS.items()
    for d, g in zip(pair, (Gender.MALE, Gender.FEMALE), strict=True)
}


@dataclass(frozen=True, slots=True)
class PersonalIdParts:
    birth_place: str
    century: int
    gender: Gender
    birth_year_2: int

    def birth_years(self) -> range:
        start = self.century + self.birth_year_2
        return range(start, start + 1)


def id_kind(value: str) -> IdKind:
    """Which kind of personal identifier a string is; ValueError when neither."""
    if _DIGITS_12.fullmatch(value):
        return IdKind.PERSONAL_ID
    if _DIGITS_9.fullmatch(value):
        return IdKind.OLD_ID_CARD
    raise ValueError("a personal id has 12 digits (or 9 for an old identity card)")


def parse_personal_id(value: str) -> PersonalIdParts:
    """Split a 12-digit personal id; ValueError when its structure is impossible."""
    if not _DIGITS_12.fullmatch(value):
        raise ValueError("a personal id has exactly 12 digits")
    place = value[:3]
    if place not in BIRTH_PLACE_CODES:
        raise ValueError(f"digits 1-3 ({place}) are not a province code of birth registration")
    century, gender = _DIGIT_TO_CENTURY_GENDER[value[3]]
    return PersonalIdParts(place, century, gender, int(value[4:6]))


def check_personal_id(value: str, *, date_of_birth: date | None = None, gender: Gender | str | None = None) -> IdKind:
    """Validate a personal id, and its agreement with date of birth and gender when given.

    `gender` is a Gender or its value ("male", "female"). Old 9-digit cards carry no birth data, so only
    their shape is checked (and that the date of birth is not in the future).
    """
    if gender is not None and not isinstance(gender, Gender):
        try:
            gender = Gender(gender)
        except ValueError:
            raise ValueError(f"gender must be one of {', '.join(g.value for g in Gender)}, not {gender!r}") from None
    kind = id_kind(value)
    if kind is IdKind.OLD_ID_CARD:
        if date_of_birth is not None:
            check_birth_date(date_of_birth)
        return kind
    parts = parse_personal_id(value)
    born = parts.century + parts.birth_year_2
    if born > today().year:  # digit 4 of 4-9 (born 2100 or later), or a year of this century still to come
        raise ValueError(f"digits 4-6 ({value[3:6]}) say born in {born}, which is in the future")
    if date_of_birth is not None and date_of_birth.year not in parts.birth_years():
        raise ValueError(
            f"digits 4-6 ({value[3:6]}) say born in {parts.century + parts.birth_year_2}, "
            f"but the date of birth is in {date_of_birth.year}"
        )
    if gender is not None and gender is not parts.gender:
        raise ValueError(f"digit 4 ({value[3]}) says {parts.gender.value}, but the gender is {gender.value}")
    if date_of_birth is not None:
        check_birth_date(date_of_birth)  # born this year, on a day still to come
    return kind


def check_procedure_code(value: str) -> str:
    if not PROCEDURE_CODE_RE.fullmatch(value):
        raise ValueError("a procedure code looks like 1.001193 (one digit, a dot, six digits)")
    return value


def check_agency_eid(value: str) -> str:
    if not AGENCY_EID_RE.fullmatch(value):
        raise ValueError("an agency electronic id looks like 000.00.01.H22")
    return value


def check_dossier_code(value: str) -> str:
    m = DOSSIER_CODE_RE.fullmatch(value)
    if not m:
        raise ValueError("a dossier code looks like 000.00.01.H22-251122-0001 (agency id, yymmdd, sequence)")
    ymd = m.group("ymd")
    try:
        day = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:6]))
    except ValueError:
        raise ValueError(f"the date part {ymd} of the dossier code is not a real date") from None
    if day > today():
        raise ValueError(f"the date part {ymd} of the dossier code is in the future")
    return value


def format_dossier_code(agency_eid: str, day: date, seq: int) -> str:
    """The national format; four digits at least, more once a unit passes 9,999 dossiers a day."""
    return f"{_code_prefix(agency_eid, day)}{seq:04d}"


@functools.lru_cache(maxsize=1024)
def _code_prefix(agency_eid: str, day: date) -> str:
    return f"{agency_eid}-{day:%y%m%d}-"  # the date's formatting is most of the code's cost: once a unit and day


def check_tax_code(value: str) -> str:
    if not TAX_CODE_RE.fullmatch(value):
        raise ValueError("a tax code has 10 digits, or 10 digits, a dash and 3 digits for a branch")
    return value


def mask_personal_id(value: str) -> str:
    """Keep the first 3 and last 2 digits: enough to tell records apart in logs, not to identify."""
    if len(value) <= 5:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]
