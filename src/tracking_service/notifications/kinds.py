"""The kinds of customer email, each of which a shop can switch off (`TRACKING_MAIL_KINDS`)."""

from __future__ import annotations

SHIPPED = "shipped"
OUT_FOR_DELIVERY = "out_for_delivery"
DELIVERED = "delivered"
LATE = "late"
ACTION_NEEDED = "action_needed"

KINDS: tuple[str, ...] = (SHIPPED, OUT_FOR_DELIVERY, DELIVERED, LATE, ACTION_NEEDED)
