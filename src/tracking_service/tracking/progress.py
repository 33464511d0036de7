"""How far a parcel has come: the order of statuses, the final ones, and an order's status.

Pure. One ranking serves two purposes: an order travelling in several parcels shows the least
advanced one (the customer has everything only when the last parcel arrives), and two scans
at the same instant are ordered by it so the outcome never depends on which arrived first.
Exceptions rank just past `in_transit`: the parcel is on its way but not moving forward, and an
order with one stuck parcel should say so rather than show a sibling's `out_for_delivery`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tracking_service.carriers.status import Status

S = Status

RANK: dict[Status, int] = {
    status: i
    for i, status in enumerate(
        (
            S.EXPIRED,
            S.PENDING,
            S.INFO_RECEIVED,
            S.IN_TRANSIT,
            S.EXCEPTION,
            S.FAILED_ATTEMPT,
            S.OUT_FOR_DELIVERY,
            S.AVAILABLE_FOR_PICKUP,
            S.RETURNED_TO_SENDER,
            S.DELIVERED,
        )
    )
}
"""Progress order, least advanced first; a total order (no two statuses share a rank)."""

FINAL: frozenset[Status] = frozenset({S.DELIVERED, S.RETURNED_TO_SENDER, S.EXPIRED})
"""Statuses after which nothing is expected: no more polling, no stall, no new estimate."""

TROUBLE: frozenset[Status] = frozenset({S.EXCEPTION, S.FAILED_ATTEMPT, S.RETURNED_TO_SENDER})
"""Statuses that mean the carrier reports a problem (`carrier_exception`, `shipment.exception`);
carriers map holds for instructions or customs to `exception`."""

HANDED_OFF: frozenset[Status] = frozenset(RANK) - {S.PENDING, S.INFO_RECEIVED, S.EXPIRED}
"""Statuses only a parcel the carrier physically has can be in: the first such scan is the
hand-off."""

PROCESSING = "processing"
PARTIALLY_DELIVERED = "partially_delivered"
CANCELLED = "cancelled"
ORDER_STATUSES: tuple[str, ...] = (PROCESSING, PARTIALLY_DELIVERED, CANCELLED, *map(str, RANK))


def rank(status: Status) -> int:
    return RANK[status]


def is_final(status: Status) -> bool:
    return status in FINAL


def order_status(shipment_statuses: Iterable[Status], cancelled: bool = False) -> str:
    """An order's status from its live (not cancelled) shipments' statuses.

    `cancelled` (the order was cancelled) wins; no shipment yet: `processing`; every one
    delivered: `delivered`; some delivered: `partially_delivered`; otherwise the least
    advanced shipment's status.
    """
    if cancelled:
        return CANCELLED
    statuses = list(shipment_statuses)
    if not statuses:
        return PROCESSING
    delivered = sum(1 for s in statuses if s == S.DELIVERED)
    if delivered == len(statuses):
        return str(S.DELIVERED)
    if delivered:
        return PARTIALLY_DELIVERED
    return str(min(statuses, key=rank))
