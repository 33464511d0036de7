"""The delay sentence of webhook payloads: one per reason, local dates, the last scan's city."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

from tracking_service.carriers.status import Status as S
from tracking_service.tracking.delay_note import delay_note
from tracking_service.tracking.plan import plan_cancel, plan_check
from tracking_service.tracking.state import Estimate

from .factory import CONFIG, Store, order, result, scan, shipment

# Wednesday 10 December 2025 (the dates of the example), 15:00 in Sao Paulo
TODAY = datetime(2025, 12, 10, 18, tzinfo=UTC)
PROMISE = Estimate(date(2025, 12, 8), date(2025, 12, 9))
# Friday 5 December, 23:30 in Sao Paulo: already Saturday in UTC
LAST_SCAN = datetime(2025, 12, 6, 2, 30, tzinfo=UTC)
BRAZIL = order({7: S.IN_TRANSIT}, promise=PROMISE, dest_tz="America/Sao_Paulo")


def late(**fields: object) -> str | None:
    base: dict[str, object] = {
        "status": S.IN_TRANSIT,
        "delayed": True,
        "last_event_at": LAST_SCAN,
        "last_event_city": "Campinas",
        "estimate": Estimate(date(2025, 12, 11), date(2025, 12, 11), "history"),
    }
    base.update(fields)
    return delay_note(shipment(**base), BRAZIL, TODAY)


def test_stalled_says_how_late_since_when_and_where_in_local_dates() -> None:
    assert late(delay_reason="stalled") == (
        "Estimated Thu 11 Dec, 2 days after the promised Tue 9 Dec: "
        "no scan since Fri 5 Dec at the Campinas hub"
    )
    assert late(delay_reason="stalled", last_event_city=None) == (
        "Estimated Thu 11 Dec, 2 days after the promised Tue 9 Dec: no scan since Fri 5 Dec"
    )


def test_late_estimate_says_who_moved_the_date() -> None:
    carrier = Estimate(date(2025, 12, 11), date(2025, 12, 12), "carrier")
    assert late(delay_reason="late_estimate", estimate=carrier) == (
        "Estimated Thu 11 Dec \u2013 Fri 12 Dec, 3 days after the promised Tue 9 Dec: "
        "the carrier gives a later delivery date (last scan Fri 5 Dec at the Campinas hub)"
    )
    assert late(delay_reason="late_estimate") == (
        "Estimated Thu 11 Dec, 2 days after the promised Tue 9 Dec: moving more slowly than "
        "parcels like it (last scan Fri 5 Dec at the Campinas hub)"
    )


def test_promise_missed_undelivered_and_delivered_late() -> None:
    passed = Estimate(date(2025, 12, 9), date(2025, 12, 9), "history")
    assert late(delay_reason="promise_missed", estimate=passed) == (
        "Not delivered 1 day after the promised Tue 9 Dec: last scan Fri 5 Dec at the Campinas hub"
    )
    arrived = datetime(2025, 12, 11, 14, tzinfo=UTC)
    assert late(delay_reason="promise_missed", status=S.DELIVERED, delivered_at=arrived) == (
        "Delivered Thu 11 Dec, 2 days after the promised Tue 9 Dec"
    )


def test_carrier_exception_says_what_and_when() -> None:
    on_time = Estimate(date(2025, 12, 9), date(2025, 12, 9), "history")
    at_scan = datetime(2025, 12, 10, 12, tzinfo=UTC)
    assert late(
        delay_reason="carrier_exception",
        status=S.FAILED_ATTEMPT,
        status_event_at=at_scan,
        last_event_at=at_scan,
        estimate=Estimate(date(2025, 12, 12), date(2025, 12, 12), "carrier"),
    ) == (
        "Estimated Fri 12 Dec, 3 days after the promised Tue 9 Dec: "
        "a delivery attempt failed on Wed 10 Dec at the Campinas hub"
    )
    assert late(
        delay_reason="carrier_exception",
        status=S.EXCEPTION,
        status_event_at=LAST_SCAN,
        estimate=on_time,
    ) == (
        "Not delivered 1 day after the promised Tue 9 Dec: "
        "the carrier reported a problem on Fri 5 Dec at the Campinas hub"
    )


def test_no_sentence_when_not_delayed() -> None:
    assert late(delayed=False, delay_reason=None) is None


def test_payload_carries_promise_previous_status_and_the_sentence() -> None:
    store = Store(shipment(last_event_city=None), order())
    trouble = store.apply(result(scan("c", datetime(2026, 3, 2, 9, tzinfo=UTC), S.EXCEPTION)))
    by_type = {m.event_type: m.payload for m in trouble.messages}
    shipment_data = by_type["shipment.delayed"]["data"]["shipment"]
    assert shipment_data["delay_reason"] == "carrier_exception"
    assert shipment_data["previous_status"] == "pending"
    assert shipment_data["promise"] == {"earliest": "2026-03-05", "latest": "2026-03-06"}
    # the factory's scans are in Newark; the destination is New York (04:00 there)
    assert shipment_data["delay_note"].endswith(
        "the carrier reported a problem on Mon 2 Mar at the Newark hub"
    )
    order_data = by_type["order.status_changed"]["data"]
    assert order_data["order"]["previous_status"] == "pending"
    assert order_data["shipment"]["previous_status"] == "pending"
    text = json.dumps(by_type)
    for personal in ("street", "phone", "email", "name", "07102"):
        assert personal not in text
    # a check that changes nothing of the status says no previous status
    later = plan_check(store.shipment, store.order, datetime(2026, 3, 8, tzinfo=UTC), CONFIG)
    assert later.after.delay_reason == "carrier_exception"
    assert later.messages == ()


def test_a_cancellation_names_the_status_it_left() -> None:
    moving = shipment(status=S.IN_TRANSIT)
    plan = plan_cancel(order({7: S.IN_TRANSIT}), [moving], datetime(2026, 3, 3, tzinfo=UTC), CONFIG)
    data = plan.messages[0].payload["data"]["shipment"]
    assert (data["status"], data["previous_status"], data["cancelled"]) == (
        "in_transit",
        "in_transit",
        True,
    )
    assert replace(moving).last_event_city is None
