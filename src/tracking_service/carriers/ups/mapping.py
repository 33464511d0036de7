"""UPS activity codes -> normalized statuses.

UPS sends a status `type` (one or two letters) and a 3-digit `statusCode` on the current status
and on every activity. The 3-digit code is finer (an `I` type can be "out for delivery today"),
so it is mapped first and the type is the fallback. Sources: the tables in
`carrier-specs/README.md` (UPS "API codes" and the status types of the UPS Tracking guide).
"""

from __future__ import annotations

import logging

from tracking_service.carriers.status import Status

logger = logging.getLogger(__name__)

STATUS_CODES: dict[str, Status] = {
    # label created, parcel not yet with UPS
    "003": Status.INFO_RECEIVED,
    "065": Status.INFO_RECEIVED,  # pickup attempted at the shipper
    # moving
    **dict.fromkeys(
        (
            "005", "012", "014", "018", "025", "027", "028", "038", "042", "044", "045",
            "047", "054", "055", "057", "070", "071",
        ),
        Status.IN_TRANSIT,
    ),
    # out for delivery
    **dict.fromkeys(("006", "021", "072"), Status.OUT_FOR_DELIVERY),
    # delivered
    **dict.fromkeys(("011", "026"), Status.DELIVERED),
    # waiting for the customer at a counter or Access Point
    **dict.fromkeys(("017", "040", "077"), Status.AVAILABLE_FOR_PICKUP),
    # delivery attempted
    **dict.fromkeys(("022", "023", "024"), Status.FAILED_ATTEMPT),
    # exceptions and delays
    **dict.fromkeys(
        (
            "007", "013", "016", "019", "029", "030", "032", "046", "048", "049", "050",
            "051", "052", "053", "058",
        ),
        Status.EXCEPTION,
    ),
    # going back
    **dict.fromkeys(("033", "035"), Status.RETURNED_TO_SENDER),
}  # fmt: skip

STATUS_TYPES: dict[str, Status | None] = {
    "M": Status.INFO_RECEIVED,  # billing information received
    "MV": Status.EXCEPTION,  # billing information voided
    "P": Status.IN_TRANSIT,  # pickup
    "I": Status.IN_TRANSIT,
    "O": Status.OUT_FOR_DELIVERY,
    "D": Status.DELIVERED,
    "X": Status.EXCEPTION,
    "RS": Status.RETURNED_TO_SENDER,
    "DO": Status.IN_TRANSIT,  # delivered to origin CFS (freight)
    "DD": Status.IN_TRANSIT,  # delivered to destination CFS (freight)
    "W": Status.IN_TRANSIT,  # warehousing (freight)
    "U": Status.IN_TRANSIT,  # update (Track Alert)
    "NA": None,  # not available: keep the last status
}


def map_status(status_type: str | None, status_code: str | None) -> Status | None:
    """Normalized status for a UPS (type, statusCode) pair; None keeps the last status."""
    code = (status_code or "").strip()
    kind = (status_type or "").strip().upper()
    if code == "013" and kind == "I":
        return Status.IN_TRANSIT  # "exception/update" reported as an in-transit update
    if code in STATUS_CODES:
        return STATUS_CODES[code]
    if kind in STATUS_TYPES:
        return STATUS_TYPES[kind]
    if code or kind:
        logger.warning("unknown UPS status: type=%r statusCode=%r", status_type, status_code)
    return None
