"""A delivered parcel as plain data: what history files, the database and the model share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivered parcel. Instants are timezone-aware; local dates come from `*_tz`."""

    key: str  # unique within its source: the idempotency key of imports
    order_time: datetime
    handoff_time: datetime | None
    delivered_at: datetime
    origin_country: str
    origin_subdivision: str | None
    origin_postal_code: str | None
    dest_country: str
    dest_subdivision: str | None
    dest_postal_code: str | None
    carrier: str | None = None
    service: str | None = None
    promised_date: date | None = None
    origin_id: str | None = None
    origin_tz: str | None = None  # IANA zone of the origin, for local order/hand-off dates
    dest_tz: str | None = None  # IANA zone of the destination, for the local delivery date
    origin_lat: float | None = None
    origin_lng: float | None = None
    dest_lat: float | None = None
    dest_lng: float | None = None
