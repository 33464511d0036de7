"""USPS event codes and status categories -> normalized statuses.

`eventCode` (Pub 199 Appendix G, as listed in `carrier-specs/README.md`) is read first;
`statusCategory` is only a fallback: USPS's own sample pairs a Delivered event with "Accepted".
"""

from __future__ import annotations

import logging

from tracking_service.carriers.status import Status

logger = logging.getLogger(__name__)

EVENT_CODES: dict[str, Status] = {
    **dict.fromkeys(("MA", "GX", "89"), Status.INFO_RECEIVED),
    **dict.fromkeys(
        (
            "03", "OA", "TM", "PA", "83", "10", "07", "PC", "SF", "EF", "41", "19", "06", "08",
            "15", "42", "80", "81", "82",
        ),
        Status.IN_TRANSIT,
    ),
    # Seen in USPS Tracking 3 answers beside the Pub 199 codes: in transit to the next
    # facility (T1), arrived at a USPS facility (A1), in transit, arriving late (TL; the parcel
    # is still moving, so not an exception).
    **dict.fromkeys(("T1", "A1", "TL"), Status.IN_TRANSIT),
    "OF": Status.OUT_FOR_DELIVERY,
    **dict.fromkeys(("14", "16"), Status.AVAILABLE_FOR_PICKUP),
    **dict.fromkeys(("01", "17", "43"), Status.DELIVERED),
    **dict.fromkeys(("02", "51", "52", "53", "54", "55", "56"), Status.FAILED_ATTEMPT),
    **dict.fromkeys(("04", "05", "11", "DX"), Status.EXCEPTION),
    **dict.fromkeys(
        ("09", "21", "22", "23", "24", "25", "26", "27", "28", "29", "31", "44"),
        Status.RETURNED_TO_SENDER,
    ),
}  # fmt: skip

DELIVERED_EVENT_CODES = frozenset({"01", "17", "43"})

STATUS_CATEGORIES: dict[str, Status] = {
    "pre-shipment": Status.INFO_RECEIVED,
    "accepted": Status.IN_TRANSIT,
    "in transit": Status.IN_TRANSIT,
    "out for delivery": Status.OUT_FOR_DELIVERY,
    "available for pickup": Status.AVAILABLE_FOR_PICKUP,
    "delivered": Status.DELIVERED,
    "delivery attempt": Status.FAILED_ATTEMPT,
    "alert": Status.EXCEPTION,
}


def map_event(event_code: str | None, status_category: str | None = None) -> Status | None:
    """Status for an event code, else for the category text; None keeps the last status."""
    code = (event_code or "").strip().upper()
    if code in EVENT_CODES:
        return EVENT_CODES[code]
    category = " ".join((status_category or "").lower().replace("_", " ").split())
    if category in STATUS_CATEGORIES:
        return STATUS_CATEGORIES[category]
    if code or category:
        logger.warning(
            "unknown USPS status: eventCode=%r statusCategory=%r", event_code, status_category
        )
    return None
