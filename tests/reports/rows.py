"""Ledger rows made by hand for the pure tests of the figures, the charts and the page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tracking_service.reports.ledger import LedgerRow

TODAY = date(2025, 12, 1)  # a Monday
AS_OF = datetime(2025, 12, 1, 17, tzinfo=UTC)


def row(
    ordered: date,
    *,
    lead: int = 4,
    took: int | None = None,
    confidence: float = 0.9,
    today: date = TODAY,
    **fields: Any,
) -> LedgerRow:
    """An order placed on `ordered`, promised by `ordered + lead` days, delivered after `took`
    days (None: not delivered), seen on `today` at the destination."""
    base: dict[str, Any] = {
        "order_id": f"o-{ordered.isoformat()}-{lead}-{took}",
        "placed_at": datetime.combine(ordered, time(15), UTC),
        "order_date": ordered,
        "option": "standard",
        "origin": "nyc-queens",
        "carrier": "usps",
        "destination_country": "US",
        "destination_region": "US-CA",
        "postal_prefix": "941",
        "earliest": ordered + timedelta(days=max(lead - 2, 0)),
        "latest": ordered + timedelta(days=lead),
        "confidence": confidence,
        "basis": "rules",
        "lanes": (),
        "handed_off_at": None,
        "revisions": (),
        "delivered_on": None if took is None else ordered + timedelta(days=took),
        "status": "delivered" if took is not None else "in_transit",
        "today": today,
    }
    base.update(fields)
    return LedgerRow(**base)


def weeks_of(first_monday: date, shares: list[tuple[int, int]], **fields: Any) -> list[LedgerRow]:
    """Per week from `first_monday`: (kept, late) resolved orders placed on its Tuesday."""
    out = []
    for i, (kept, late) in enumerate(shares):
        day = first_monday + timedelta(weeks=i, days=1)
        out += [row(day, took=3, **fields) for _ in range(kept)]
        out += [row(day, took=6, **fields) for _ in range(late)]
    return out
