"""Every USPS code listed in carrier-specs/README.md maps to the status the README gives."""

from __future__ import annotations

import pytest

from tracking_service.carriers.status import Status
from tracking_service.carriers.usps.mapping import map_event

S = Status

# Transcribed from carrier-specs/README.md, USPS "eventCode".
README_EVENT_CODES: dict[str, Status] = {
    **dict.fromkeys("MA GX 89".split(), S.INFO_RECEIVED),
    **dict.fromkeys(
        "03 OA TM PA 83 10 07 PC SF EF 41 19 06 08 15 42 80 81 82".split(), S.IN_TRANSIT
    ),
    "OF": S.OUT_FOR_DELIVERY,
    **dict.fromkeys("14 16".split(), S.AVAILABLE_FOR_PICKUP),
    **dict.fromkeys("01 17 43".split(), S.DELIVERED),
    **dict.fromkeys("02 51 52 53 54 55 56".split(), S.FAILED_ATTEMPT),
    **dict.fromkeys("04 05 11 DX".split(), S.EXCEPTION),
    **dict.fromkeys("09 21 22 23 24 25 26 27 28 29 31 44".split(), S.RETURNED_TO_SENDER),
}

# Transcribed from carrier-specs/README.md, USPS "statusCategory".
README_CATEGORIES: dict[str, Status] = {
    "Pre-Shipment": S.INFO_RECEIVED,
    "Accepted": S.IN_TRANSIT,
    "In Transit": S.IN_TRANSIT,
    "Out for Delivery": S.OUT_FOR_DELIVERY,
    "Available for Pickup": S.AVAILABLE_FOR_PICKUP,
    "Delivered": S.DELIVERED,
    "Delivery Attempt": S.FAILED_ATTEMPT,
    "Alert": S.EXCEPTION,
}


@pytest.mark.parametrize(("code", "expected"), sorted(README_EVENT_CODES.items()))
def test_event_code_maps_as_documented(code: str, expected: Status) -> None:
    assert map_event(code) is expected
    assert map_event(code, "Alert") is expected  # the event code comes first


@pytest.mark.parametrize(("category", "expected"), sorted(README_CATEGORIES.items()))
def test_category_is_the_fallback(category: str, expected: Status) -> None:
    assert map_event(None, category) is expected
    assert map_event("ZZ", category.upper()) is expected


def test_unknown_is_none_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert map_event("ZZ", "Something New") is None
    assert "ZZ" in caplog.text
    assert map_event(None, None) is None
