"""The delay in one English sentence for ops: how late against the promise, and why.

Pure. Webhook payloads carry it beside the machine-readable `delay_reason`, so the person on
call reads what happened without looking anything up, e.g. "Estimated Thu 11 Dec, 2 days
after the promised Tue 9 Dec: no scan since Fri 5 Dec at the Campinas hub". The first part
says where the shipment stands against the promise (the estimate, or the delivery, or how
long past the promise it is undelivered); the part after the colon says the reason's cause:
how long without a scan and where (`stalled`), what the carrier reported (`carrier_exception`),
who moved the date (`late_estimate`), or where the parcel was last seen (`promise_missed`).

Dates are local dates at the destination (the promise and estimates are already; instants are
converted with `dest_tz`), written as the customer's tracking page writes them in English
(`public_text.day`, with the year only when it is not the current one there). The place is
the city of the last scan only: never a street, and nothing about the customer.
"""

from __future__ import annotations

from datetime import date, datetime

from tracking_service.carriers.status import Status
from tracking_service.timezones import zone
from tracking_service.tracking import public_text as t
from tracking_service.tracking.delays import (
    CARRIER_EXCEPTION,
    LATE_ESTIMATE,
    PROMISE_MISSED,
    STALLED,
)
from tracking_service.tracking.public_view import EN_DASH
from tracking_service.tracking.state import Estimate, OrderState, ShipmentState

_LOCALE = "en"

_TROUBLE_WORDS = {
    Status.EXCEPTION: "the carrier reported a problem",
    Status.FAILED_ATTEMPT: "a delivery attempt failed",
    Status.RETURNED_TO_SENDER: "the carrier is returning it to the sender",
}


class _Dates:
    """Local dates at the destination as ops read them ("Thu 11 Dec")."""

    def __init__(self, now: datetime, dest_tz: str | None) -> None:
        self.zone = zone(dest_tz or "UTC")
        self.today = now.astimezone(self.zone).date()

    def local(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def day(self, value: date) -> str:
        return t.day(value, _LOCALE, value.year != self.today.year)

    def window(self, e: Estimate) -> str:
        if e.earliest == e.latest:
            return self.day(e.latest)
        return f"{self.day(e.earliest)} {EN_DASH} {self.day(e.latest)}"


def _where(city: str | None) -> str:
    city = city.strip() if city else ""
    return f" at the {city} hub" if city else ""


def _standing(s: ShipmentState, promise: Estimate, d: _Dates) -> str:
    """Where the shipment stands against the promise."""
    promised = d.day(promise.latest)
    if s.status == Status.DELIVERED and s.delivered_at is not None:
        arrived = d.local(s.delivered_at)
        late = (arrived - promise.latest).days
        if late > 0:
            return (
                f"Delivered {d.day(arrived)}, {t.days(_LOCALE, late)} after the promised {promised}"
            )
        return f"Delivered {d.day(arrived)}, by the promised {promised}"
    estimate = s.estimate
    overdue = (d.today - promise.latest).days
    if estimate is not None and estimate.source != "promise" and estimate.latest >= d.today:
        late = (estimate.latest - promise.latest).days
        head = f"Estimated {d.window(estimate)}"
        if late > 0:
            return f"{head}, {t.days(_LOCALE, late)} after the promised {promised}"
        return f"{head}, within the promised {promised}"
    if overdue > 0:
        return f"Not delivered {t.days(_LOCALE, overdue)} after the promised {promised}"
    return f"Promised {promised}, no later estimate"


def _cause(s: ShipmentState, reason: str, d: _Dates) -> str:
    """The reason's cause in words."""
    seen = (
        f"last scan {d.day(d.local(s.last_event_at))}{_where(s.last_event_city)}"
        if s.last_event_at is not None
        else "no scan yet"
    )
    if reason == STALLED:
        if s.last_event_at is None:
            return "no scan yet"
        return f"no scan since {d.day(d.local(s.last_event_at))}{_where(s.last_event_city)}"
    if reason == CARRIER_EXCEPTION:
        words = _TROUBLE_WORDS.get(s.status, "the carrier reported a problem")
        at = s.status_event_at or s.status_changed_at
        if at is None:
            return words
        place = _where(s.last_event_city) if at == s.last_event_at else ""
        return f"{words} on {d.day(d.local(at))}{place}"
    if reason == LATE_ESTIMATE:
        if s.estimate is not None and s.estimate.source == "carrier":
            return f"the carrier gives a later delivery date ({seen})"
        return f"moving more slowly than parcels like it ({seen})"
    if reason == PROMISE_MISSED and s.status == Status.DELIVERED:
        return "arrived after the promise"
    return seen


def delay_note(s: ShipmentState, order: OrderState, now: datetime) -> str | None:
    """The sentence for a delayed shipment (None when it is not delayed), as of `now`."""
    if not s.delayed or s.delay_reason is None:
        return None
    d = _Dates(now, order.dest_tz)
    standing = _standing(s, order.promise, d)
    if s.status == Status.DELIVERED and s.delay_reason == PROMISE_MISSED:
        return standing
    return f"{standing}: {_cause(s, s.delay_reason, d)}"
