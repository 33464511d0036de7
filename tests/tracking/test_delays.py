"""The four delay reasons, and which one a shipment shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

from tracking_service.carriers.status import Status as S
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.delays import (
    DelayFacts,
    business_hours_between,
    delay_reason,
    delay_reasons,
    local_date,
)
from tracking_service.tracking.plan import plan_check
from tracking_service.tracking.state import Estimate

from .factory import CONFIG, NOW, PROMISE, Store, apply, at, order, result, scan, shipment


def facts(**kw: object) -> DelayFacts:
    base: dict[str, object] = {
        "status": S.IN_TRANSIT,
        "promise": PROMISE,
        "estimate": PROMISE,
        "last_event_at": at(-1),
        "delivered_at": None,
        "dest_tz": "America/New_York",
    }
    base.update(kw)
    return DelayFacts(**base)  # type: ignore[arg-type]


def test_on_time() -> None:
    assert delay_reasons(facts(), NOW, CONFIG) == ()


def test_late_estimate_when_the_estimate_ends_after_the_promise() -> None:
    later = Estimate(date(2026, 3, 6), date(2026, 3, 9), "carrier")
    assert delay_reason(facts(estimate=later), NOW, CONFIG) == "late_estimate"
    same = Estimate(date(2026, 3, 4), date(2026, 3, 6), "carrier")
    assert delay_reason(facts(estimate=same), NOW, CONFIG) is None


def test_late_estimate_from_the_carriers_window() -> None:
    update = apply(
        shipment(),
        order(),
        result(scan("a", at(-3), S.IN_TRANSIT), window=(date(2026, 3, 9), date(2026, 3, 10))),
    )
    assert update.after.estimate == Estimate(date(2026, 3, 9), date(2026, 3, 10), "carrier")
    assert (update.after.delayed, update.after.delay_reason) == (True, "late_estimate")
    assert update.after.delayed_since == NOW


def test_late_estimate_from_the_reestimate() -> None:
    late = Estimate(date(2026, 3, 8), date(2026, 3, 9), "history")
    update = apply(shipment(), order(), result(scan("a", at(-3), S.IN_TRANSIT)), reestimated=late)
    assert update.after.estimate == late
    assert update.after.delay_reason == "late_estimate"


def test_promise_missed_uses_the_destinations_local_date() -> None:
    # promised latest: Friday 6 March. At 03:00 UTC on the 7th it is still the 6th in Los
    # Angeles (19:00) but already the 7th in UTC and in Lisbon.
    instant = datetime(2026, 3, 7, 3, tzinfo=UTC)
    scanned = instant - timedelta(hours=2)
    assert local_date(instant, "America/Los_Angeles") == date(2026, 3, 6)
    la = facts(dest_tz="America/Los_Angeles", last_event_at=scanned)
    assert delay_reason(la, instant, CONFIG) is None
    lisbon = facts(dest_tz="Europe/Lisbon", last_event_at=scanned)
    assert delay_reason(lisbon, instant, CONFIG) == "promise_missed"
    assert delay_reason(facts(dest_tz=None, last_event_at=scanned), instant, CONFIG) == (
        "promise_missed"
    )
    # and later that night in Los Angeles too
    assert delay_reason(la, instant + timedelta(hours=6), CONFIG) == "promise_missed"


def test_promise_missed_found_by_the_check_without_a_scan() -> None:
    store = Store(shipment(), order(dest_tz="America/Los_Angeles"))
    scanned = datetime(2026, 3, 6, 20, tzinfo=UTC)
    store.apply(result(scan("a", scanned, S.IN_TRANSIT)), now=scanned + timedelta(hours=1))
    assert not store.shipment.delayed
    early = plan_check(store.shipment, store.order, datetime(2026, 3, 7, 3, tzinfo=UTC), CONFIG)
    assert not early.after.delayed
    late_at = datetime(2026, 3, 7, 9, tzinfo=UTC)
    update = plan_check(store.shipment, store.order, late_at, CONFIG)
    assert (update.after.delayed, update.after.delay_reason) == (True, "promise_missed")
    assert [m.event_type for m in update.messages] == ["shipment.delayed"]
    assert update.shipment_changes["delayed_since"] == late_at
    assert "next_poll_at" not in update.shipment_changes
    store.take(update)
    again = plan_check(store.shipment, store.order, late_at + timedelta(hours=1), CONFIG)
    assert not again.changed


def test_delivered_after_the_promise_stays_promise_missed_and_on_time_clears() -> None:
    late = datetime(2026, 3, 9, 15, tzinfo=UTC)
    assert (
        delay_reason(facts(status=S.DELIVERED, delivered_at=late), late, CONFIG) == "promise_missed"
    )
    on_time = datetime(2026, 3, 6, 15, tzinfo=UTC)
    later_still = datetime(2026, 3, 20, tzinfo=UTC)
    assert (
        delay_reason(facts(status=S.DELIVERED, delivered_at=on_time), later_still, CONFIG) is None
    )


def test_business_hours_skip_the_weekend_at_the_destination() -> None:
    friday_noon = datetime(2026, 3, 6, 17, tzinfo=UTC)  # 12:00 in New York
    monday_noon = datetime(2026, 3, 9, 16, tzinfo=UTC)  # 12:00 in New York (DST began)
    assert business_hours_between(friday_noon, monday_noon, "America/New_York") == 24.0
    assert business_hours_between(monday_noon, friday_noon, "America/New_York") == 0.0
    assert business_hours_between(NOW, NOW + timedelta(hours=30), None) == 30.0


def test_stalled_after_the_statuss_threshold_in_business_hours() -> None:
    # last scan Thursday 5 March 12:00 UTC; 48 business hours in transit
    last = datetime(2026, 3, 5, 12, tzinfo=UTC)
    f = facts(
        last_event_at=last, dest_tz=None, promise=Estimate(date(2026, 3, 20), date(2026, 3, 20))
    )
    assert delay_reason(f, datetime(2026, 3, 8, 23, tzinfo=UTC), CONFIG) is None  # weekend
    assert delay_reason(f, datetime(2026, 3, 9, 11, tzinfo=UTC), CONFIG) is None  # 47 h
    assert delay_reason(f, datetime(2026, 3, 9, 13, tzinfo=UTC), CONFIG) == "stalled"


def test_stall_thresholds_are_per_status_and_configurable() -> None:
    last = datetime(2026, 3, 2, 9, tzinfo=UTC)
    now = datetime(2026, 3, 3, 11, tzinfo=UTC)  # 26 h later
    far = Estimate(date(2026, 3, 20), date(2026, 3, 20))
    ofd = facts(status=S.OUT_FOR_DELIVERY, last_event_at=last, dest_tz=None, promise=far)
    assert delay_reason(ofd, now, CONFIG) == "stalled"  # 24 h out for delivery
    transit = facts(last_event_at=last, dest_tz=None, promise=far)
    assert delay_reason(transit, now, CONFIG) is None  # 48 h in transit
    strict = TrackingConfig(stall_hours=MappingProxyType({S.IN_TRANSIT: 12.0}))
    assert delay_reason(transit, now, strict) == "stalled"
    assert (
        delay_reason(
            facts(status=S.PENDING, last_event_at=last, dest_tz=None, promise=far), now, strict
        )
        is None
    )


def test_a_new_scan_clears_a_stall() -> None:
    store = Store(shipment(), order(promise=Estimate(date(2026, 3, 20), date(2026, 3, 20))))
    store.apply(result(scan("a", at(-1), S.IN_TRANSIT)))
    stalled_at = at(24 * 4)  # Friday noon: 72 business hours later
    check = plan_check(store.shipment, store.order, stalled_at, CONFIG)
    assert check.after.delay_reason == "stalled"
    store.take(check)
    update = store.apply(result(scan("b", stalled_at, S.IN_TRANSIT)), now=stalled_at)
    assert (update.after.delayed, update.after.delay_reason, update.after.delayed_since) == (
        False,
        None,
        None,
    )


def test_carrier_exception_for_exception_failed_attempt_and_return() -> None:
    for status in (S.EXCEPTION, S.FAILED_ATTEMPT, S.RETURNED_TO_SENDER):
        assert delay_reason(facts(status=status), NOW, CONFIG) == "carrier_exception"
    assert delay_reason(facts(status=S.AVAILABLE_FOR_PICKUP), NOW, CONFIG) is None


def test_the_most_telling_reason_is_shown() -> None:
    late = Estimate(date(2026, 3, 8), date(2026, 3, 9))
    f = facts(status=S.EXCEPTION, estimate=late, last_event_at=at(-24 * 10))
    after = datetime(2026, 3, 10, tzinfo=UTC)
    assert delay_reasons(f, after, CONFIG) == (
        "carrier_exception",
        "promise_missed",
        "late_estimate",
        "stalled",
    )
    assert delay_reason(f, after, CONFIG) == "carrier_exception"
