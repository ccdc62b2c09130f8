"""contracts.admin_units: the 34 provinces and 3,321 communes of 2025."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contracts.admin_units import Unit, check_commune, check_province, communes, provinces


def test_counts_of_2025() -> None:
    assert len(provinces()) == 34
    assert len(communes()) == 3321


def test_every_commune_belongs_to_a_known_province() -> None:
    by_province = {u.province_code for u in communes().values()}
    assert by_province == set(provinces())


def test_codes_are_zero_padded_keys() -> None:
    assert all(len(code) == 2 and code.isdigit() and u.code == code for code, u in provinces().items())
    assert all(len(code) == 5 and code.isdigit() and u.code == code for code, u in communes().items())
    assert all(u.province_code == code for code, u in provinces().items())


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("01", "Thành phố Hà Nội"),
        ("79", "Thành phố Hồ Chí Minh"),
        ("96", "Cà Mau"),
        ("48", "Thành phố Đà Nẵng"),
        ("31", "Thành phố Hải Phòng"),
    ],
)
def test_province_valid(code: str, name: str) -> None:
    assert check_province(code) == code
    assert provinces()[code] == Unit(code, name, code)


@pytest.mark.parametrize("code", ["1", "001", "ab", "", "7a", " 1"])
def test_province_bad_shape(code: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_province(code)
    assert str(exc.value) == "a province code has 2 digits, e.g. 01 (Hà Nội) or 79 (TP Hồ Chí Minh)"


# 02 Hà Giang and 77 Bà Rịa - Vũng Tàu were provinces until the merger of 1 July 2025.
@pytest.mark.parametrize("code", ["00", "99", "02", "77", "97"])
def test_province_not_of_2025(code: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_province(code)
    assert str(exc.value) == f"{code} is not a province code of 2025"


@pytest.mark.parametrize(
    ("code", "province", "name"),
    [
        ("00070", "01", "Phường Hoàn Kiếm"),
        ("00004", "01", "Phường Ba Đình"),
        ("26737", "79", "Phường Tân Định"),
        ("25747", "79", "Phường Thủ Dầu Một"),  # Bình Dương merged into TP HCM
        ("32002", "96", "Phường An Xuyên"),
    ],
)
def test_commune_valid(code: str, province: str, name: str) -> None:
    assert check_commune(code) == code
    assert check_commune(code, province) == code
    assert communes()[code] == Unit(code, name, province)


@pytest.mark.parametrize("code", ["70", "0070", "000700", "0007a", "", "00 70"])
def test_commune_bad_shape(code: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_commune(code)
    assert str(exc.value) == "a commune code has 5 digits, e.g. 00070 (Phường Hoàn Kiếm)"


@pytest.mark.parametrize("code", ["00000", "99999", "00001"])
def test_commune_not_of_2025(code: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_commune(code, "01")
    assert str(exc.value) == f"{code} is not a commune code of 2025"


@pytest.mark.parametrize(
    ("code", "province", "message"),
    [
        ("00070", "79", "commune 00070 (Phường Hoàn Kiếm) is in province 01, not 79"),
        ("26737", "01", "commune 26737 (Phường Tân Định) is in province 79, not 01"),
        ("32002", "79", "commune 32002 (Phường An Xuyên) is in province 96, not 79"),
    ],
)
def test_commune_in_another_province(code: str, province: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_commune(code, province)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("check", "code"),
    [(check_province, "٠١"), (check_province, "０１"), (check_commune, "٠٠٠٧٠"), (check_commune, "００070")],
)
def test_non_ascii_digits_are_rejected(check: Callable[[str], str], code: str) -> None:
    # they pass the shape check (re's \d is Unicode-aware) but no unit has such a code
    with pytest.raises(ValueError, match=r" is not a (province|commune) code of 2025$"):
        check(code)
