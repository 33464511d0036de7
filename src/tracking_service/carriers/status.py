"""The normalized status set every carrier maps into (see DESIGN.md)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    EXCEPTION = "exception"
    RETURNED_TO_SENDER = "returned_to_sender"
    EXPIRED = "expired"


def keep_or_advance(previous: Status | None, mapped: Status | None) -> Status | None:
    """An unknown code (`mapped is None`) never moves a shipment: keep the last status."""
    return previous if mapped is None else mapped
