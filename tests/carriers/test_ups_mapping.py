"""Every UPS code listed in carrier-specs/README.md maps to the status the README gives."""

from __future__ import annotations

import pytest

from tracking_service.carriers.status import Status
from tracking_service.carriers.ups.mapping import map_status

S = Status

# Transcribed from carrier-specs/README.md, "3-digit statusCode".
README_STATUS_CODES: dict[str, Status] = {
    "003": S.INFO_RECEIVED,
    **dict.fromkeys(
        "005 025 047 012 014 018 027 028 038 042 044 045 054 055 057 070 071".split(),
        S.IN_TRANSIT,
    ),
    **dict.fromkeys("006 021 072".split(), S.OUT_FOR_DELIVERY),
    **dict.fromkeys("011 026".split(), S.DELIVERED),
    **dict.fromkeys("017 040 077".split(), S.AVAILABLE_FOR_PICKUP),
    **dict.fromkeys("022 023 024".split(), S.FAILED_ATTEMPT),
    **dict.fromkeys(
        "007 013 016 019 029 050 030 032 046 048 049 051 052 053 058".split(), S.EXCEPTION
    ),
    **dict.fromkeys("033 035".split(), S.RETURNED_TO_SENDER),
    "065": S.INFO_RECEIVED,
}

# Transcribed from carrier-specs/README.md, "status.type".
README_TYPES: dict[str, Status | None] = {
    "M": S.INFO_RECEIVED,
    "MV": S.EXCEPTION,
    "P": S.IN_TRANSIT,
    "I": S.IN_TRANSIT,
    "O": S.OUT_FOR_DELIVERY,
    "D": S.DELIVERED,
    "X": S.EXCEPTION,
    "RS": S.RETURNED_TO_SENDER,
    "DO": S.IN_TRANSIT,
    "DD": S.IN_TRANSIT,
    "W": S.IN_TRANSIT,
    "NA": None,
    "U": S.IN_TRANSIT,
}


@pytest.mark.parametrize(("code", "expected"), sorted(README_STATUS_CODES.items()))
def test_status_code_maps_as_documented(code: str, expected: Status) -> None:
    # the 3-digit code wins over a type that says something else ("X" here)
    assert map_status("X", code) is expected
    assert map_status(None, code) is expected


@pytest.mark.parametrize(("kind", "expected"), sorted(README_TYPES.items()))
def test_type_maps_as_documented_when_no_status_code(kind: str, expected: Status | None) -> None:
    assert map_status(kind, None) is expected
    assert map_status(kind.lower(), "") is expected


def test_status_code_refines_type() -> None:
    assert map_status("I", "021") is S.OUT_FOR_DELIVERY  # "Out For Delivery Today" comes as I
    assert map_status("I", "013") is S.IN_TRANSIT  # exception/update reported as in transit
    assert map_status("X", "013") is S.EXCEPTION
    assert map_status("D", "040") is S.AVAILABLE_FOR_PICKUP


def test_unknown_code_falls_back_to_type_then_none(caplog: pytest.LogCaptureFixture) -> None:
    assert map_status("D", "998") is S.DELIVERED
    with caplog.at_level("WARNING"):
        assert map_status("ZZ", "999") is None
    assert "999" in caplog.text and "ZZ" in caplog.text
    assert map_status(None, None) is None
