"""Country codes, postal codes and the state they imply."""

from __future__ import annotations

import pytest

from tracking_service.estimator.postal import (
    PostalError,
    normalize_country,
    normalize_postal_code,
    resolve_subdivision,
    subdivision_from_postal,
)


def test_countries() -> None:
    assert normalize_country(" br ") == "BR"
    for bad in ("XX", "USA", "", "1A"):
        with pytest.raises(PostalError) as info:
            normalize_country(bad)
        assert info.value.field == "country"


@pytest.mark.parametrize(
    ("country", "raw", "display"),
    [
        ("US", "10001", "10001"),
        ("US", "10001-1234", "10001-1234"),
        ("US", "100011234", "10001-1234"),
        ("BR", "01310-100", "01310-100"),
        ("BR", "01310100", "01310-100"),
        ("DE", "10115", "10115"),
        ("GB", "sw1a 1aa", "SW1A 1AA"),
    ],
)
def test_normalize(country: str, raw: str, display: str) -> None:
    assert normalize_postal_code(country, raw).display == display


@pytest.mark.parametrize(
    ("country", "raw"),
    [("US", "1001"), ("US", "10001-12"), ("US", "ABCDE"), ("BR", "1310-100"), ("BR", "01310-10"),
     ("DE", "!!"), ("DE", "")],
)  # fmt: skip
def test_reject(country: str, raw: str) -> None:
    with pytest.raises(PostalError) as info:
        normalize_postal_code(country, raw)
    assert info.value.field == "postal_code"


@pytest.mark.parametrize(
    ("country", "raw", "state"),
    [
        ("US", "10001", "NY"),
        ("US", "11101", "NY"),
        ("US", "02108", "MA"),
        ("US", "06103", "CT"),
        ("US", "73301", "TX"),
        ("US", "77002", "TX"),
        ("US", "73102", "OK"),
        ("US", "20500", "DC"),
        ("US", "20146", "VA"),
        ("US", "90210", "CA"),
        ("US", "96813", "HI"),
        ("US", "96799", "AS"),
        ("US", "99501", "AK"),
        ("US", "00901", "PR"),
        ("US", "09001", None),  # military mail (AE): no state
        ("BR", "01310-100", "SP"),
        ("BR", "13010-000", "SP"),
        ("BR", "20040-020", "RJ"),
        ("BR", "30130-010", "MG"),
        ("BR", "69900-000", "AC"),
        ("BR", "69301-000", "RR"),
        ("BR", "70040-010", "DF"),
        ("BR", "74000-000", "GO"),
        ("BR", "76801-000", "RO"),
        ("BR", "90010-000", "RS"),
        ("DE", "10115", None),
    ],
)
def test_state_from_postal_code(country: str, raw: str, state: str | None) -> None:
    assert subdivision_from_postal(normalize_postal_code(country, raw)) == state


def test_given_subdivision_is_checked() -> None:
    code = normalize_postal_code("US", "10001")
    assert resolve_subdivision(code, None) == "NY"
    assert resolve_subdivision(code, "ny") == "NY"
    assert resolve_subdivision(code, "US-NY") == "NY"
    with pytest.raises(PostalError, match="contradicts") as info:
        resolve_subdivision(code, "CA")
    assert info.value.field == "subdivision"
    with pytest.raises(PostalError, match="not a subdivision"):
        resolve_subdivision(code, "ZZ")
    berlin = normalize_postal_code("DE", "10115")
    assert resolve_subdivision(berlin, "BE") == "BE"


FULL_WIDTH_10001 = "\uff11\uff10\uff10\uff10\uff11"


@pytest.mark.parametrize(
    ("country", "raw", "display"),
    [
        ("US", FULL_WIDTH_10001, "10001"),
        ("US", FULL_WIDTH_10001 + "\uff0d\uff11\uff12\uff13\uff14", "10001-1234"),
        ("BR", "\uff10\uff11\uff13\uff11\uff10-\uff11\uff10\uff10", "01310-100"),
        ("GB", "\uff53\uff57\uff11\uff41 1aa", "SW1A 1AA"),
    ],
)
def test_full_width_forms_are_their_ascii_ones(country: str, raw: str, display: str) -> None:
    code = normalize_postal_code(country, raw)
    assert code.display == display
    assert code.key == display.replace("-", "").replace(" ", "")
    assert code == normalize_postal_code(country, display)


def test_full_width_country_and_subdivision() -> None:
    assert normalize_country("\uff55\uff53") == "US"
    code = normalize_postal_code("US", FULL_WIDTH_10001)
    assert subdivision_from_postal(code) == "NY"
    assert resolve_subdivision(code, "\uff2e\uff39") == "NY"


def test_other_digits_are_refused() -> None:
    arabic_indic = "\u0661\u0660\u0660\u0660\u0661"  # 10001 in Arabic-Indic digits
    for country in ("US", "BR", "DE"):
        with pytest.raises(PostalError) as info:
            normalize_postal_code(country, arabic_indic)
        assert info.value.field == "postal_code"
