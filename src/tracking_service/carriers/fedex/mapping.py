"""FedEx status and scan codes -> normalized statuses.

The current status has `derivedCode` (read first) and `code`; every scan has `eventType` (the
scan code, read first) and `derivedStatusCode`. Source: the FedEx Track Service scan-code table
as listed in `carrier-specs/README.md`. `DE` (delivery exception) is split: a failed delivery
attempt when FedEx reports attempts or an attempt reason, otherwise an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tracking_service.carriers.status import Status

logger = logging.getLogger(__name__)

CODES: dict[str, Status] = {
    # shipment information, return labels: nothing with FedEx yet
    **dict.fromkeys(("OC", "IN", "AP", "EP", "RP", "LP", "RG", "RD"), Status.INFO_RECEIVED),
    # moving
    **dict.fromkeys(
        (
            "PU", "PX", "AA", "AC", "AF", "AR", "AX", "CH", "DP", "DR", "DS", "EA", "EO", "FD",
            "IT", "IX", "LO", "OF", "OX", "PF", "PL", "PM", "SF", "SP", "TR", "CC", "CP", "RR",
            "RM", "RC",
        ),
        Status.IN_TRANSIT,
    ),
    # Codes of FedEx's newer tracking answers (meanings from their descriptions there; not in
    # the classic scan-code table): arriving on time / early, on the way, moved, released.
    **dict.fromkeys(("AO", "AE", "OW", "MD", "RL"), Status.IN_TRANSIT),
    **dict.fromkeys(("OD", "AD", "ED"), Status.OUT_FOR_DELIVERY),
    **dict.fromkeys(("HL", "HP", "HA"), Status.AVAILABLE_FOR_PICKUP),  # HA: held, available
    "DL": Status.DELIVERED,
    "DE": Status.EXCEPTION,  # refined by refine_delivery_exception
    **dict.fromkeys(("SE", "DY", "DD", "PD", "CD", "CA"), Status.EXCEPTION),
    "RS": Status.RETURNED_TO_SENDER,
}  # fmt: skip

# Reasons that mean the courier was at the door and could not hand the parcel over.
ATTEMPT_REASON_CODES = frozenset({"08", "15"})  # 08 scan exception code, 15 ancillary reason
ATTEMPT_REASON_WORDS = (
    "not available",
    "not in",
    "business closed",
    "no one",
    "nobody",
    "attempt",
    "unable to deliver",
    "recipient not",
    "customer not",
)


def is_attempt_reason(codes: Iterable[str | None], texts: Iterable[str | None]) -> bool:
    """True when a delivery exception's reason says the courier tried to deliver."""
    if any((code or "").strip() in ATTEMPT_REASON_CODES for code in codes):
        return True
    for reason in texts:
        lowered = (reason or "").lower()
        if "not attempted" in lowered:  # "local delivery restriction, delivery not attempted"
            continue
        if any(word in lowered for word in ATTEMPT_REASON_WORDS):
            return True
    return False


def map_code(*codes: str | None, attempted: bool = False) -> Status | None:
    """The first known code among `codes` (most specific first); None keeps the last status.

    `attempted` turns a DE (delivery exception) into a failed attempt.
    """
    present = [code.strip().upper() for code in codes if code and code.strip()]
    for code in present:
        if code in CODES:
            if code == "DE" and attempted:
                return Status.FAILED_ATTEMPT
            return CODES[code]
    if present:
        logger.warning("unknown FedEx status code(s): %s", ", ".join(present))
    return None
