"""Whole updates: outbox messages and their sequences, pending and expiry, cancellation."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from types import MappingProxyType

import pytest

from tracking_service.carriers.base import FailureKind, TrackingFailure
from tracking_service.carriers.status import Status as S
from tracking_service.settings import Settings
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.plan import plan_cancel, plan_check
from tracking_service.tracking.state import Estimate, shipment_columns

from .factory import CONFIG, NOW, Store, apply, at, order, result, scan, shipment

NOT_FOUND = TrackingFailure("usps", "9400", FailureKind.NOT_FOUND, "no record yet")


def types(update: object) -> list[tuple[str, int, str]]:
    return [(m.stream, m.sequence, m.event_type) for m in update.messages]  # type: ignore[attr-defined]


def test_messages_for_each_change_with_sequences_per_stream() -> None:
    store = Store(shipment(sequence=3), order(sequence=10))
    first = store.apply(result(scan("a", at(-5), S.IN_TRANSIT)))
    assert types(first) == [
        ("shipment:7", 4, "shipment.status_changed"),
        ("order:1", 11, "order.status_changed"),
    ]
    assert first.shipment_changes["sequence"] == 4
    assert first.order_changes == {"status": "in_transit", "sequence": 11, "updated_at": NOW}
    assert first.order_status == "in_transit"
    # the same status again: no message
    assert types(store.apply(result(scan("b", at(-4), S.IN_TRANSIT)))) == []
    trouble = store.apply(result(scan("c", at(-3), S.EXCEPTION)))
    assert types(trouble) == [
        ("shipment:7", 5, "shipment.status_changed"),
        ("shipment:7", 6, "shipment.exception"),
        ("shipment:7", 7, "shipment.delayed"),
        ("order:1", 12, "order.status_changed"),
    ]
    assert trouble.after.delay_reason == "carrier_exception"
    done = store.apply(result(scan("d", at(-1), S.DELIVERED)))
    assert types(done) == [
        ("shipment:7", 8, "shipment.status_changed"),
        ("shipment:7", 9, "shipment.delivered"),
        ("order:1", 13, "order.status_changed"),
    ]
    assert done.order_after.status == "delivered" and done.after.delayed is False
    assert (store.shipment.sequence, store.order.sequence) == (9, 13)
    all_sequences = [(m.stream, m.sequence) for m in store.messages]  # type: ignore[attr-defined]
    assert len(set(all_sequences)) == len(all_sequences)


def test_delayed_is_written_once_per_change_of_reason() -> None:
    store = Store(shipment(), order())
    late = (date(2026, 3, 8), date(2026, 3, 9))
    first = store.apply(result(scan("a", at(-5), S.IN_TRANSIT), window=late))
    assert "shipment.delayed" in [m.event_type for m in first.messages]
    again = store.apply(result(scan("b", at(-4), S.IN_TRANSIT), window=late))
    assert again.messages == ()
    later = plan_check(store.shipment, store.order, at(24 * 6), CONFIG)  # past 6 March
    assert later.after.delay_reason == "promise_missed"
    assert [m.event_type for m in later.messages] == ["shipment.delayed"]
    assert later.after.delayed_since == NOW  # delayed since the first reason


def test_delayed_again_for_each_later_estimate_not_for_an_earlier_or_the_same() -> None:
    store = Store(shipment(), order())
    delayed = [
        [m.event_type for m in store.apply(result(scan(k, at(h), S.IN_TRANSIT), window=w)).messages]
        for k, h, w in (
            ("a", -5, (date(2026, 3, 8), date(2026, 3, 9))),  # late: first notice
            ("b", -4, (date(2026, 3, 9), date(2026, 3, 10))),  # later again
            ("c", -3, (date(2026, 3, 8), date(2026, 3, 9))),  # earlier: no news to tell
            ("d", -2, (date(2026, 3, 8), date(2026, 3, 9))),  # the same
            ("e", -1, (date(2026, 3, 7), date(2026, 3, 11))),  # later latest
        )
    ]
    assert [types.count("shipment.delayed") for types in delayed] == [1, 1, 0, 0, 1]
    assert store.shipment.delay_reason == "late_estimate"


def test_payload_shape_and_no_personal_data() -> None:
    update = apply(shipment(), order(), result(scan("a", at(-5), S.OUT_FOR_DELIVERY)))
    message = update.messages[0]
    assert re.fullmatch(r"msg_[A-Za-z0-9_-]{26,32}", message.event_id)
    assert message.occurred_at == NOW and message.shipment_id == 7 and message.order_pk == 1
    assert message.payload == {
        "type": "shipment.status_changed",
        "timestamp": "2026-03-02T12:00:00Z",
        "data": {
            "shipment": {
                "id": 7,
                "carrier": "ups",
                "tracking_number": "1Z999AA10123456787",
                "status": "out_for_delivery",
                "previous_status": "pending",
                "estimate": {"earliest": "2026-03-05", "latest": "2026-03-06"},
                "promise": {"earliest": "2026-03-05", "latest": "2026-03-06"},
                "delayed": False,
                "delay_reason": None,
                "delay_note": None,
                "tracking_url": "https://track.example/t/token-7",
                "cancelled": False,
            },
            "order": {
                "order_id": "shop-1001",
                "status": "out_for_delivery",
                "previous_status": "pending",
            },
        },
    }
    json.dumps(message.payload)  # plain JSON
    assert len({m.event_id for m in update.messages}) == len(update.messages)


def test_two_shipments_make_the_orders_status() -> None:
    statuses = {7: S.PENDING, 8: S.PENDING}
    one = Store(shipment(7), order(statuses))
    one.apply(result(scan("a", at(-5), S.OUT_FOR_DELIVERY)))
    assert one.order.status == "pending"  # shipment 8 is not with the carrier yet
    two = Store(shipment(8), one.order)
    two.apply(result(scan("x", at(-4), S.IN_TRANSIT)))
    assert two.order.status == "in_transit"
    one.order = two.order
    done = one.apply(result(scan("b", at(-1), S.DELIVERED)))
    assert done.order_status == "partially_delivered"
    two.order = one.order
    last = two.apply(result(scan("y", at(-0.5), S.DELIVERED)))
    assert last.order_status == "delivered"
    order_messages = [m for m in one.messages + two.messages if m.stream == "order:1"]  # type: ignore[attr-defined]
    assert sorted(m.sequence for m in order_messages) == [1, 2, 3]


def test_not_found_before_a_scan_is_pending_not_a_failure() -> None:
    update = apply(shipment(), order(), NOT_FOUND)
    assert update.after.status == S.PENDING
    assert (update.after.poll_failures, update.after.last_poll_error) == (0, None)
    assert update.after.next_poll_at is not None
    assert timedelta(days=1) <= update.after.next_poll_at - NOW <= timedelta(days=1.1)
    assert not update.visible


def test_not_found_after_the_expiry_days_is_expired_and_final() -> None:
    old = shipment(created_at=NOW - timedelta(days=30))
    update = apply(old, order(), NOT_FOUND)
    assert update.after.status == S.EXPIRED
    assert update.after.expired_at == NOW and update.after.next_poll_at is None
    assert [(e.dedupe_key, e.status, e.source) for e in update.new_events] == [
        ("service:expired", "expired", "service")
    ]
    assert [m.event_type for m in update.messages] == [
        "shipment.status_changed",
        "order.status_changed",
    ]
    assert update.order_status == "expired"
    short = TrackingConfig(expiry_days=3)
    assert (
        apply(
            shipment(created_at=NOW - timedelta(days=3)), order(), NOT_FOUND, config=short
        ).after.status
        == S.EXPIRED
    )
    assert (
        apply(
            shipment(created_at=NOW - timedelta(days=2)), order(), NOT_FOUND, config=short
        ).after.status
        == S.PENDING
    )


def test_the_check_expires_pending_shipments_and_leaves_scanned_ones() -> None:
    old = shipment(created_at=NOW - timedelta(days=31))
    assert plan_check(old, order(), NOW, CONFIG).after.status == S.EXPIRED
    seen = shipment(created_at=NOW - timedelta(days=31), status=S.IN_TRANSIT, last_event_at=at(-1))
    assert plan_check(seen, order(), NOW, CONFIG).after.status == S.IN_TRANSIT
    expired = plan_check(old, order(), NOW, CONFIG).after
    assert not plan_check(expired, order({7: S.EXPIRED}, status="expired"), at(1), CONFIG).changed


def test_not_found_after_a_scan_is_a_failure() -> None:
    scanned = shipment(status=S.IN_TRANSIT, last_event_at=at(-1), status_event_at=at(-1))
    update = apply(scanned, order({7: S.IN_TRANSIT}, status="in_transit"), NOT_FOUND)
    assert update.after.poll_failures == 1
    assert update.after.last_poll_error == "not_found: no record yet"


def test_estimate_order_carrier_then_reestimate_then_promise() -> None:
    history = Estimate(date(2026, 3, 4), date(2026, 3, 5), "history")
    s, o = shipment(), order()
    assert apply(s, o, result(scan("a", at(-1), S.IN_TRANSIT))).after.estimate == Estimate(
        date(2026, 3, 5), date(2026, 3, 6), "promise"
    )
    with_history = apply(s, o, result(scan("a", at(-1), S.IN_TRANSIT)), reestimated=history)
    assert with_history.after.estimate == history
    window = (date(2026, 3, 3), date(2026, 3, 4))
    carrier = apply(
        s, o, result(scan("a", at(-1), S.IN_TRANSIT), window=window), reestimated=history
    )
    assert carrier.after.estimate == Estimate(*window, "carrier")
    # the carrier's window stands when a later answer (a push) has none
    later = apply(
        carrier.after,
        carrier.order_after,
        result(scan("b", at(0), S.IN_TRANSIT)),
        known=frozenset({"a"}),
        reestimated=history,
    )
    assert later.after.estimate == Estimate(*window, "carrier")


def test_cancel_a_shipment() -> None:
    statuses = {7: S.IN_TRANSIT, 8: S.DELIVERED}
    o = order(statuses, status="partially_delivered", sequence=4)
    s7 = shipment(7, status=S.IN_TRANSIT, sequence=2)
    s8 = shipment(8, status=S.DELIVERED, sequence=5, next_poll_at=None)
    plan = plan_cancel(o, [s7, s8], NOW, CONFIG, shipment_id=7)
    (update,) = plan.shipments
    assert update.shipment_changes == {
        "cancelled_at": NOW,
        "next_poll_at": None,
        "sequence": 3,
        "updated_at": NOW,
    }
    assert [(e.dedupe_key, e.source, e.status) for e in update.new_events] == [
        ("service:cancelled", "service", None)
    ]
    assert plan.order_changes == {"status": "delivered", "sequence": 5, "updated_at": NOW}
    assert [(m.stream, m.sequence, m.event_type) for m in plan.messages] == [
        ("shipment:7", 3, "shipment.status_changed"),
        ("order:1", 5, "order.status_changed"),
    ]
    assert plan.messages[0].payload["data"]["shipment"]["cancelled"] is True
    again = plan_cancel(plan.order_after, [update.after, s8], at(1), CONFIG, shipment_id=7)
    assert again.shipments == () and not again.order_changes and not again.messages


def test_cancel_an_order() -> None:
    o = order({7: S.IN_TRANSIT}, status="in_transit")
    s7 = shipment(7, status=S.IN_TRANSIT)
    plan = plan_cancel(o, [s7], NOW, CONFIG)
    assert plan.order_changes == {
        "status": "cancelled",
        "sequence": 1,
        "cancelled_at": NOW,
        "updated_at": NOW,
    }
    assert plan.shipments[0].after.next_poll_at is None
    assert [m.event_type for m in plan.messages] == [
        "shipment.status_changed",
        "order.status_changed",
    ]
    assert plan.messages[0].payload["data"]["order"]["status"] == "cancelled"
    again = plan_cancel(plan.order_after, [plan.shipments[0].after], at(1), CONFIG)
    assert again.shipments == () and not again.order_changes
    # an order without shipments
    empty = plan_cancel(order({}), [], NOW, CONFIG)
    assert empty.order_changes["status"] == "cancelled"


def test_a_cancelled_shipment_is_not_updated_any_more() -> None:
    cancelled = shipment(cancelled_at=at(-1), next_poll_at=None)
    assert not apply(cancelled, order(), result(scan("a", at(0), S.IN_TRANSIT))).changed
    assert not plan_check(cancelled, order(), at(24 * 60), CONFIG).changed


def test_shipment_columns_are_the_tables() -> None:
    from tracking_service.models.tracking import Shipment

    columns = set(Shipment.model_fields)
    assert set(shipment_columns(shipment())) | {"updated_at"} <= columns


def test_settings_build_the_config() -> None:
    config = Settings(stall_hours={"in_transit": 24}, expiry_days=10).tracking_config()
    assert config.stall_hours[S.IN_TRANSIT] == 24 and config.stall_hours[S.EXCEPTION] == 48
    assert config.expiry_days == 10
    assert config.poll_every[S.OUT_FOR_DELIVERY] == timedelta(minutes=30)
    assert Settings().tracking_config() == TrackingConfig(
        stall_hours=MappingProxyType(dict(TrackingConfig().stall_hours)),
        poll_every=MappingProxyType(dict(TrackingConfig().poll_every)),
    )
    with pytest.raises(ValueError, match="unknown status"):
        Settings(poll_interval_minutes={"lost": 5})
