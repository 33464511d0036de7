"""Why a shipment is late, if it is: the four delay reasons, decided from plain data.

Pure. Reasons, most telling first (a shipment shows the first that holds):
- `carrier_exception`: the carrier reports a problem (exception, failed attempt, return or a
  hold it maps to exception);
- `promise_missed`: the promised latest date has passed at the destination undelivered (or
  the parcel arrived after it); decided on the destination's local calendar, since that is
  the date the customer was told;
- `late_estimate`: the current estimate's latest date falls after the promised latest;
- `stalled`: no scan for longer than is normal for the status, counted in business hours
  (the hours of Monday to Friday at the destination: carriers scan around the clock on
  weekdays, and a quiet weekend is not a stuck parcel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tracking_service.carriers.status import Status
from tracking_service.timezones import zone
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.progress import FINAL, TROUBLE
from tracking_service.tracking.state import Estimate

CARRIER_EXCEPTION = "carrier_exception"
PROMISE_MISSED = "promise_missed"
LATE_ESTIMATE = "late_estimate"
STALLED = "stalled"
REASONS: tuple[str, ...] = (CARRIER_EXCEPTION, PROMISE_MISSED, LATE_ESTIMATE, STALLED)


def local_date(instant: datetime, tz: str | None) -> date:
    """The calendar date of an instant at a place (None: UTC)."""
    return instant.astimezone(zone(tz or "UTC")).date()


def business_hours_between(start: datetime, end: datetime, tz: str | None) -> float:
    """Hours between two instants that fall on a Monday to Friday in zone `tz` (None: UTC)."""
    if end <= start:
        return 0.0
    where = zone(tz or "UTC")
    day = start.astimezone(where).date()
    last = end.astimezone(where).date()
    total = timedelta()
    while day <= last:
        if day.weekday() < 5:
            opens = datetime.combine(day, time(), where)
            closes = datetime.combine(day + timedelta(days=1), time(), where)
            lo, hi = max(start, opens), min(end, closes)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total.total_seconds() / 3600.0


@dataclass(frozen=True, slots=True)
class DelayFacts:
    """What the delay rules look at."""

    status: Status
    promise: Estimate
    estimate: Estimate | None
    last_event_at: datetime | None
    delivered_at: datetime | None
    dest_tz: str | None


def is_stalled(facts: DelayFacts, now: datetime, config: TrackingConfig) -> bool:
    """No scan for longer than the status's threshold (a status without one never stalls,
    nor does a shipment never scanned: that is the expiry's business)."""
    threshold = config.stall_hours.get(facts.status)
    if threshold is None or facts.last_event_at is None or facts.status in FINAL:
        return False
    return business_hours_between(facts.last_event_at, now, facts.dest_tz) > threshold


def delay_reasons(facts: DelayFacts, now: datetime, config: TrackingConfig) -> tuple[str, ...]:
    """Every reason that holds now, most telling first (empty: on time)."""
    reasons: list[str] = []
    if facts.status in TROUBLE:
        reasons.append(CARRIER_EXCEPTION)
    if facts.status == Status.DELIVERED:
        arrived = facts.delivered_at or now
        if local_date(arrived, facts.dest_tz) > facts.promise.latest:
            reasons.append(PROMISE_MISSED)
        return tuple(reasons)
    if local_date(now, facts.dest_tz) > facts.promise.latest:
        reasons.append(PROMISE_MISSED)
    if facts.status not in FINAL:
        if facts.estimate is not None and facts.estimate.latest > facts.promise.latest:
            reasons.append(LATE_ESTIMATE)
        if is_stalled(facts, now, config):
            reasons.append(STALLED)
    return tuple(reasons)


def delay_reason(facts: DelayFacts, now: datetime, config: TrackingConfig) -> str | None:
    """The reason a shipment shows: the most telling one that holds, or None."""
    reasons = delay_reasons(facts, now, config)
    return reasons[0] if reasons else None
