"""DHL unified status codes -> normalized statuses, refined by the English status text.

DHL's `statusCode` enum is coarse (pre-transit, transit, delivered, failure, unknown). The
text (`status`, `statusDetailed`, `description`, request `language=en`) and the shipment's
`returnFlag` tell out-for-delivery, pickup points, failed attempts and returns apart.
The phrase lists are built from DHL's public texts (see carrier-specs/README.md); unconfirmed.
"""

from __future__ import annotations

import logging

from tracking_service.carriers.status import Status

logger = logging.getLogger(__name__)

STATUS_CODES: dict[str, Status | None] = {
    "pre-transit": Status.INFO_RECEIVED,
    "transit": Status.IN_TRANSIT,
    "delivered": Status.DELIVERED,
    "failure": Status.EXCEPTION,
    "unknown": None,  # keep the last status unless the text says more
}

RETURN_PHRASES = (
    "returned to sender",
    "return to sender",
    "returned to shipper",
    "being returned",
    "back to the sender",
    "back to sender",
)
ATTEMPT_PHRASES = (
    "delivery attempt",
    "could not be delivered",
    "recipient not at home",
    "unsuccessful delivery",
    "attempted delivery",
)
PICKUP_PHRASES = (
    "ready for pick-up",
    "ready for pickup",
    "ready for collection",
    "available for pick",
    "packstation",
    "parcel shop",
    "parcelshop",
    "service point",
    "retail outlet",
    "post office for collection",
)
PICKED_UP_PHRASES = ("picked up by", "collected by", "has been picked up from")
OUT_FOR_DELIVERY_PHRASES = (
    "out for delivery",
    "with courier for delivery",
    "with delivery courier",
    "loaded onto the delivery vehicle",
    "loaded onto delivery vehicle",
)
INFO_RECEIVED_PHRASES = (
    "label created",
    "shipment information received",
    "electronically announced",
    "awaiting shipment",
)


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in text for phrase in phrases)


def map_status(
    status_code: str | None, *texts: str | None, return_flag: bool = False
) -> Status | None:
    """Status for a DHL event or shipment status; None keeps the last status."""
    code = (status_code or "").strip().lower()
    words = " ".join((t or "").lower() for t in texts)
    if return_flag or _has(words, RETURN_PHRASES):
        return Status.RETURNED_TO_SENDER
    if code == "delivered":
        # "delivered to the Packstation / parcel shop" means waiting for the recipient
        if _has(words, PICKUP_PHRASES) and not _has(words, PICKED_UP_PHRASES):
            return Status.AVAILABLE_FOR_PICKUP
        return Status.DELIVERED
    if _has(words, ATTEMPT_PHRASES):
        return Status.FAILED_ATTEMPT
    if _has(words, PICKUP_PHRASES) and not _has(words, PICKED_UP_PHRASES):
        return Status.AVAILABLE_FOR_PICKUP
    if _has(words, OUT_FOR_DELIVERY_PHRASES):
        return Status.OUT_FOR_DELIVERY
    if code in STATUS_CODES and STATUS_CODES[code] is not None:
        return STATUS_CODES[code]
    if code in ("unknown", "") and _has(words, INFO_RECEIVED_PHRASES):
        return Status.INFO_RECEIVED
    if code not in STATUS_CODES or code == "unknown":
        logger.warning("unknown DHL status: statusCode=%r text=%r", status_code, words[:120])
    return None
