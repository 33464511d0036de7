"""DHL's statusCode enum (carrier-specs/README.md) and the text refinements."""

from __future__ import annotations

import pytest

from tracking_service.carriers.dhl.mapping import map_status
from tracking_service.carriers.status import Status

S = Status

# Transcribed from carrier-specs/README.md, DHL "statusCode" (the full enum).
README_CODES: dict[str, Status | None] = {
    "pre-transit": S.INFO_RECEIVED,
    "transit": S.IN_TRANSIT,
    "delivered": S.DELIVERED,
    "failure": S.EXCEPTION,
    "unknown": None,
}


@pytest.mark.parametrize(("code", "expected"), sorted(README_CODES.items()))
def test_status_code_maps_as_documented(code: str, expected: Status | None) -> None:
    assert map_status(code, "Some status text") is expected


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        ("transit", "Out for delivery", S.OUT_FOR_DELIVERY),
        ("transit", "With courier for delivery", S.OUT_FOR_DELIVERY),
        ("transit", "The shipment is ready for pick-up at the PACKSTATION", S.AVAILABLE_FOR_PICKUP),
        ("delivered", "Delivered to the parcel shop, ready for pickup", S.AVAILABLE_FOR_PICKUP),
        ("delivered", "The shipment has been picked up by the recipient from the Packstation",
         S.DELIVERED),
        ("transit", "Delivery attempt unsuccessful", S.FAILED_ATTEMPT),
        ("failure", "The shipment could not be delivered", S.FAILED_ATTEMPT),
        ("transit", "The shipment will be returned to sender", S.RETURNED_TO_SENDER),
        ("unknown", "LABEL CREATED", S.INFO_RECEIVED),
    ],
)  # fmt: skip
def test_text_refines_the_code(code: str, text: str, expected: Status) -> None:
    assert map_status(code, text) is expected
    assert map_status(code, None, text.upper()) is expected


def test_return_flag_wins() -> None:
    assert map_status("transit", "Processed", return_flag=True) is S.RETURNED_TO_SENDER


def test_unknown_is_none_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert map_status("unknown", "CLOSE BAG") is None
        assert map_status("teleported", "Beamed") is None
    assert "unknown" in caplog.text and "teleported" in caplog.text
