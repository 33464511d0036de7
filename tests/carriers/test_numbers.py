"""Tracking-number detection against the vendored tracking_number_data 2.0.0 files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

import pytest

from tracking_service.carriers import numbers
from tracking_service.carriers.numbers import CheckDigit
from tracking_service.carriers.sim import number as sim_number


def _data_cases() -> list[pytest.param]:
    """Every test number of every courier file, read straight from the JSON (not our loader)."""
    cases = []
    folder = resources.files("tracking_service.carriers").joinpath("data", "tracking_numbers")
    for name in numbers.COURIER_FILES:
        data = json.loads(folder.joinpath(f"{name}.json").read_text(encoding="utf-8"))
        for raw in data["tracking_numbers"]:
            format_name = raw["name"]
            for expected, key in ((True, "valid"), (False, "invalid")):
                for example in raw["test_numbers"][key]:
                    cases.append(
                        pytest.param(
                            format_name,
                            example,
                            expected,
                            id=f"{name}:{format_name}:{key}:{example.strip()}",
                        )
                    )
    return cases


DATA_CASES = _data_cases()


def test_every_format_of_the_data_set_contributes_cases() -> None:
    formats_with_valid = {p.values[0] for p in DATA_CASES if p.values[2]}
    formats_with_invalid = {p.values[0] for p in DATA_CASES if not p.values[2]}
    assert len(formats_with_valid) == len(formats_with_invalid) == 18


@pytest.mark.parametrize(("format_name", "example", "expected"), DATA_CASES)
def test_every_data_set_number_passes_or_fails_as_the_file_says(
    format_name: str, example: str, expected: bool
) -> None:
    fmt = next(f for f in numbers.formats() if f.name == format_name)
    match = numbers.match_format(example, fmt)
    assert (match is not None and match.valid) is expected
    if expected:
        # detect() lists it too, among the valid candidates of the same carrier.
        found = [m for m in numbers.detect(example) if m.format_id == fmt.id]
        assert found and found[0].valid
        assert numbers.is_valid(example, fmt.carrier)


def test_all_documented_format_ids_are_loaded() -> None:
    ids = {f.id for f in numbers.formats()}
    assert {
        "ups",
        "ups_waybill",
        "fedex_12",
        "fedex_34",
        "fedex_astra_32",
        "fedex_ground",
        "fedex_ground_sscc_18",
        "fedex_ground_96",
        "fedex_ground_gsn",
        "usps_20",
        "usps_impb_n",
        "usps_impb_c",
        "usps_legacy",
        "dhl_express",
        "dhl_express_piece_id",
        "dhl_ecommerce",
        "dhl_ecommerce_14",
        "s10",
        "simulated",
    } == ids


def test_formats_are_loaded_once() -> None:
    assert numbers.formats() is numbers.formats()


def test_pcre_named_groups_become_python_groups_and_lookarounds_stay() -> None:
    converted = numbers.pcre_to_python(["(?<A>x)", "(?<=y)(?<!z)(?=w)"])
    assert converted == "(?P<A>x)(?<=y)(?<!z)(?=w)"


# ---------------------------------------------------------------- check-digit algorithms


def test_mod10_letters_count_as_ord_minus_3_mod_10() -> None:
    # "1Z" numbers: serial with letters; 'R' -> (82 - 3) % 10 = 9.
    assert numbers._digit_value("R") == 9
    assert numbers._digit_value("7") == 7
    assert numbers.mod10(
        "5R8939035756712", "7", evens_multiplier=1, odds_multiplier=2, reverse=False
    )
    assert not numbers.mod10(
        "5R8939035756712", "8", evens_multiplier=1, odds_multiplier=2, reverse=False
    )


def test_mod10_reverse_weights_from_the_right() -> None:
    # "12": forward 1*3 + 2*1 = 5 -> check 5; reversed "21": 2*3 + 1*1 = 7 -> check 3.
    assert numbers.mod10("12", "5", evens_multiplier=3, odds_multiplier=1, reverse=False)
    assert numbers.mod10("12", "3", evens_multiplier=3, odds_multiplier=1, reverse=True)
    assert not numbers.mod10("12", "5", evens_multiplier=3, odds_multiplier=1, reverse=True)


def test_mod7() -> None:
    assert numbers.mod7("331881002", "5")  # 331881002 = 7 * 47411571 + 5
    assert not numbers.mod7("331881002", "4")


@pytest.mark.parametrize(
    ("serial", "check"),
    [("12345678", "5"), ("00000000", "5"), ("00000001", "4")],
)
def test_s10_check_digit(serial: str, check: str) -> None:
    assert numbers.s10(serial, check, weightings=[8, 6, 4, 2, 3, 5, 9, 7])


def test_s10_remainder_one_gives_zero() -> None:
    # weights . digits = 1 (mod 11) -> 11 - 1 = 10 -> 0
    # 00000010: 9*1 = 9 -> r = 9; 00000020: 18 -> r = 7; find a serial with r = 1:
    # 00000300: 9*3 = 27 -> r = 5; 00003000: 3*3 = 9; 00000005: 7*5 = 35 -> r = 2; 00000008: 56 -> 1
    assert numbers.s10("00000008", "0", weightings=[8, 6, 4, 2, 3, 5, 9, 7])


def test_sum_product_with_weightings_and_modulo() -> None:
    weights = [3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1]
    assert numbers.sum_product_with_weightings_and_modulo(
        "98657878885", "5", weightings=weights, modulo1=11, modulo2=10
    )
    assert not numbers.sum_product_with_weightings_and_modulo(
        "99657878885", "5", weightings=weights, modulo1=11, modulo2=10
    )


# ---------------------------------------------------------------- detect()


def test_detect_normalizes_whitespace_and_case() -> None:
    [match] = numbers.detect(" 1z 5r89 3903 5756 7127 ")
    assert match.carrier == "ups"
    assert match.number == "1Z5R89390357567127"
    assert match.check_digit is CheckDigit.VALID
    assert match.tracking_url is not None and match.tracking_url.endswith("1Z5R89390357567127")
    assert ("Service Type", "UPS United States Ground") in match.details


def test_detect_returns_a_wrong_check_digit_as_an_invalid_candidate() -> None:
    [match] = numbers.detect("1Z5R89390357567128")
    assert match.carrier == "ups"
    assert match.check_digit is CheckDigit.INVALID
    assert not match.valid
    assert not numbers.is_valid("1Z5R89390357567128")


def test_colliding_formats_are_all_returned_valid_first() -> None:
    # A 20-digit number both USPS 20 (valid) and USPS legacy (wrong check digit) can read.
    matches = numbers.detect("0307 1790 0005 2348 3741")
    assert [(m.format_id, m.valid) for m in matches] == [
        ("usps_20", True),
        ("usps_legacy", False),
    ]


def test_prefer_puts_the_declared_carrier_first_among_equals() -> None:
    number = "4201028200009261290113185417468510"  # valid as FedEx 34 and as USPS IMpb C
    assert {m.carrier for m in numbers.detect(number) if m.valid} == {"fedex", "usps"}
    # Undeclared: USPS first, its service type and application identifier are known codes.
    assert numbers.detect(number)[0].format_id == "usps_impb_c"
    assert numbers.detect(number, prefer="usps")[0].carrier == "usps"
    assert numbers.detect(number, prefer="fedex")[0].carrier == "fedex"


def test_usps_routing_prefix_is_dropped_from_the_tracking_number() -> None:
    [match] = numbers.detect("420 22153 9101026837331000039521")
    assert match.format_id == "usps_legacy"
    assert match.number == "420221539101026837331000039521"
    assert match.tracking_number == "9101026837331000039521"
    assert match.tracking_url is not None and match.tracking_url.endswith("=9101026837331000039521")


def test_s10_needs_a_known_country() -> None:
    [known] = numbers.detect("RB123456785GB")
    assert known.carrier == "s10" and known.valid
    assert ("Courier", "Royal Mail Group plc") in known.details
    [unknown] = numbers.detect("RB123456785XX")
    assert unknown.check_digit is CheckDigit.VALID
    assert not unknown.valid
    assert unknown.problem is not None and "courier" in unknown.problem


def test_format_without_check_digit_is_valid_but_not_applicable() -> None:
    [match] = numbers.detect("JJD0099999999")
    assert match.carrier == "dhl"
    assert match.check_digit is CheckDigit.NOT_APPLICABLE
    assert match.valid


def test_is_valid_by_carrier() -> None:
    assert numbers.is_valid("3318810025", "dhl")
    assert not numbers.is_valid("3318810025", "ups")
    assert not numbers.is_valid("hello")
    assert numbers.detect("") == []


# ---------------------------------------------------------------- simulated carrier format


def test_simulated_numbers_are_detected_as_their_own_carrier() -> None:
    created = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    text = sim_number.encode(sim_number.Scenario.CUSTOMS_HOLD, created, 42)
    assert text.startswith("SIM3") and len(text) == 20
    [match] = numbers.detect(text.lower())
    assert (match.carrier, match.format_id, match.check_digit) == (
        "simulated",
        "simulated",
        CheckDigit.VALID,
    )
    assert numbers.is_valid(text, "simulated")

    wrong = text[:-1] + str((int(text[-1]) + 1) % 10)
    [bad] = numbers.detect(wrong)
    assert bad.carrier == "simulated" and bad.check_digit is CheckDigit.INVALID
    assert not numbers.is_valid(wrong)
