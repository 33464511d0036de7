"""When a shipment is polled next."""

from __future__ import annotations

from datetime import date, timedelta

from tracking_service.carriers.base import FailureKind, TrackingFailure
from tracking_service.carriers.status import Status as S
from tracking_service.tracking.cadence import base_interval, next_poll_at, spread_fraction
from tracking_service.tracking.config import TrackingConfig

from .factory import NOW, Store, at, order, result, scan, shipment

EXACT = TrackingConfig(spread=0.0)  # no spread: the intervals themselves


def wait(status: S, **kw: object) -> timedelta | None:
    when = next_poll_at(status, 7, NOW, EXACT, **kw)  # type: ignore[arg-type]
    return None if when is None else when - NOW


def test_intervals_by_status() -> None:
    assert wait(S.OUT_FOR_DELIVERY) == timedelta(minutes=30)
    assert wait(S.PENDING) == timedelta(days=1)
    assert wait(S.IN_TRANSIT) == timedelta(hours=4)


def test_never_after_a_final_status() -> None:
    for status in (S.DELIVERED, S.RETURNED_TO_SENDER, S.EXPIRED):
        assert wait(status) is None
        assert wait(status, failures=3) is None


def test_in_transit_polls_more_often_as_the_expected_date_nears() -> None:
    today = NOW.date()  # 2 March at noon UTC is 2 March in New York too
    far = wait(S.IN_TRANSIT, expected=today + timedelta(days=5), dest_tz="America/New_York")
    two = wait(S.IN_TRANSIT, expected=today + timedelta(days=2), dest_tz="America/New_York")
    one = wait(S.IN_TRANSIT, expected=today + timedelta(days=1), dest_tz="America/New_York")
    due = wait(S.IN_TRANSIT, expected=today, dest_tz="America/New_York")
    past = wait(S.IN_TRANSIT, expected=today - timedelta(days=3), dest_tz="America/New_York")
    assert far == two == timedelta(hours=4)
    assert one == timedelta(hours=3)
    assert due == past == timedelta(hours=2)
    assert base_interval(S.OUT_FOR_DELIVERY, NOW, EXACT, expected=today) == timedelta(minutes=30)


def test_failures_back_off_doubling_up_to_a_ceiling() -> None:
    waits = [wait(S.OUT_FOR_DELIVERY, failures=n) for n in range(7)]
    assert waits == [
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(hours=8),
        timedelta(hours=12),
        timedelta(hours=12),
    ]
    assert wait(S.PENDING, failures=5) == timedelta(days=1)  # never shorter than the status's
    assert wait(S.IN_TRANSIT, failures=60) == timedelta(hours=12)


def test_a_carriers_retry_after_is_honoured() -> None:
    assert wait(S.OUT_FOR_DELIVERY, failures=1, retry_after=7200) == timedelta(hours=2)
    assert wait(S.OUT_FOR_DELIVERY, failures=1, retry_after=5) == timedelta(hours=1)


def test_spread_is_deterministic_and_spreads_a_batch() -> None:
    config = TrackingConfig()
    assert spread_fraction(42) == spread_fraction(42)
    times = [next_poll_at(S.IN_TRANSIT, i, NOW, config) for i in range(1, 2001)]
    assert all(t is not None for t in times)
    offsets = sorted((t - NOW - timedelta(hours=4)).total_seconds() for t in times if t)
    # 10% of 4 h = 24 minutes, used evenly: no minute holds more than a few percent
    assert 0 <= offsets[0] and offsets[-1] < 24 * 60
    per_minute = [0] * 24
    for o in offsets:
        per_minute[int(o // 60)] += 1
    assert max(per_minute) < 2000 * 0.08
    assert len(set(times)) > 1990


def test_repeated_failures_back_off_in_the_pipeline_and_a_success_resets() -> None:
    store = Store(shipment(), order())
    store.apply(result(scan("a", at(-1), S.IN_TRANSIT)))
    down = TrackingFailure("ups", "1Z", FailureKind.UNAVAILABLE, "503 from UPS")
    gaps = []
    now = NOW
    for _ in range(4):
        update = store.apply(down, now=now, config=EXACT)
        assert update.after.next_poll_at is not None
        gaps.append(update.after.next_poll_at - now)
        now = update.after.next_poll_at
    assert store.shipment.poll_failures == 4
    assert store.shipment.last_poll_error == "unavailable: 503 from UPS"
    assert gaps == [timedelta(hours=h) for h in (8, 12, 12, 12)]
    assert store.shipment.status == S.IN_TRANSIT  # a failure never moves the status
    update = store.apply(result(scan("b", now, S.IN_TRANSIT)), now=now)
    assert (update.after.poll_failures, update.after.last_poll_error) == (0, None)
    assert update.after.next_poll_at is not None
    assert update.after.next_poll_at - now <= timedelta(hours=4, minutes=24)


def test_rate_limited_waits_at_least_what_the_carrier_asked() -> None:
    store = Store(shipment(status=S.OUT_FOR_DELIVERY), order())
    update = store.apply(TrackingFailure("dhl", "1", FailureKind.RATE_LIMITED, "429", 3 * 3600.0))
    assert update.after.next_poll_at is not None
    assert update.after.next_poll_at - NOW >= timedelta(hours=3)


def test_expected_date_comes_from_the_estimate() -> None:
    soon = (date(2026, 3, 2), date(2026, 3, 3))
    update = Store(shipment(), order()).apply(
        result(scan("a", at(-1), S.IN_TRANSIT), window=soon), config=EXACT
    )
    assert update.after.next_poll_at == NOW + timedelta(hours=2)
