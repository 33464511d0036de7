"""An order's status from its shipments', and the progress order behind it."""

from __future__ import annotations

from tracking_service.carriers.status import Status as S
from tracking_service.tracking.progress import FINAL, RANK, is_final, order_status


def test_processing_before_any_shipment() -> None:
    assert order_status([]) == "processing"


def test_the_least_advanced_shipment_while_they_travel() -> None:
    assert order_status([S.OUT_FOR_DELIVERY, S.IN_TRANSIT]) == "in_transit"
    assert order_status([S.PENDING, S.OUT_FOR_DELIVERY]) == "pending"
    assert order_status([S.INFO_RECEIVED]) == "info_received"


def test_a_stuck_parcel_shows_before_a_sibling_that_moves_on() -> None:
    assert order_status([S.EXCEPTION, S.OUT_FOR_DELIVERY]) == "exception"


def test_partially_delivered_then_delivered() -> None:
    assert order_status([S.DELIVERED, S.IN_TRANSIT]) == "partially_delivered"
    assert order_status([S.DELIVERED, S.EXCEPTION]) == "partially_delivered"
    assert order_status([S.DELIVERED, S.DELIVERED]) == "delivered"
    assert order_status([S.DELIVERED]) == "delivered"


def test_cancelled_wins() -> None:
    assert order_status([S.IN_TRANSIT], cancelled=True) == "cancelled"
    assert order_status([], cancelled=True) == "cancelled"


def test_rank_is_a_total_order_and_final_statuses() -> None:
    assert sorted(RANK.values()) == list(range(len(S)))
    assert set(RANK) == set(S)
    assert FINAL == {S.DELIVERED, S.RETURNED_TO_SENDER, S.EXPIRED}
    assert is_final(S.DELIVERED) and not is_final(S.OUT_FOR_DELIVERY)
