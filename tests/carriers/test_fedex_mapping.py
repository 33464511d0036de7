"""Every FedEx code listed in carrier-specs/README.md maps to the status the README gives."""

from __future__ import annotations

import pytest

from tracking_service.carriers.fedex.mapping import is_attempt_reason, map_code
from tracking_service.carriers.status import Status

S = Status

# Transcribed from carrier-specs/README.md, FedEx "Codes".
README_CODES: dict[str, Status] = {
    **dict.fromkeys("OC IN AP EP RP LP RG RD".split(), S.INFO_RECEIVED),
    **dict.fromkeys(
        (
            "PU PX AA AC AF AR AX CH DP DR DS EA EO FD IT IX LO OF OX PF PL PM SF SP TR CC CP "
            "RR RM RC"
        ).split(),
        S.IN_TRANSIT,
    ),
    **dict.fromkeys("OD AD ED".split(), S.OUT_FOR_DELIVERY),
    **dict.fromkeys("HL HP".split(), S.AVAILABLE_FOR_PICKUP),
    "DL": S.DELIVERED,
    "DE": S.EXCEPTION,  # without an attempt
    **dict.fromkeys("SE DY DD PD CD CA".split(), S.EXCEPTION),
    "RS": S.RETURNED_TO_SENDER,
}


@pytest.mark.parametrize(("code", "expected"), sorted(README_CODES.items()))
def test_code_maps_as_documented(code: str, expected: Status) -> None:
    assert map_code(code) is expected
    assert map_code(code.lower()) is expected


def test_first_known_code_wins() -> None:
    assert map_code("OD", "IT") is S.OUT_FOR_DELIVERY  # derivedCode before code
    assert map_code(None, "DL") is S.DELIVERED
    assert map_code("", "  ", "HP") is S.AVAILABLE_FOR_PICKUP
    assert map_code("Q7", "AR") is S.IN_TRANSIT  # unknown scan code, known derived code


def test_delivery_exception_with_attempt_is_failed_attempt() -> None:
    assert map_code("DE", attempted=True) is S.FAILED_ATTEMPT
    assert map_code("DL", attempted=True) is S.DELIVERED  # only DE is refined


@pytest.mark.parametrize(
    ("codes", "texts", "expected"),
    [
        (["15"], [None], True),
        (["08"], [None], True),
        ([None], ["Customer not available or business closed"], True),
        ([None], ["Recipient not in"], True),
        (["03"], ["Incorrect address"], False),
        ([None], ["Local delivery restriction, delivery not attempted"], False),
        ([], [], False),
    ],
)
def test_attempt_reasons(codes: list[str | None], texts: list[str | None], expected: bool) -> None:
    assert is_attempt_reason(codes, texts) is expected


def test_unknown_code_is_none_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert map_code("ZZ") is None
    assert "ZZ" in caplog.text
    assert map_code(None, "") is None
