"""What the customer's tracking page shows, decided from plain data: the public view model.

Pure: an order's public facts, its shipments and their events (plain dataclasses, loaded by
`tracking.public_lookup`) and the instant, locale and destination zone go in; a `PublicView`
comes out, which the HTML page and the JSON route both render as they are. Deciding here and
rendering there keeps the two answers the same content and lets every wording be tested
without HTTP.

What it shows, and why:
- The headline status in plain words ("On its way", "Out for delivery today", "Delivered Tue
  25 Nov at 14:02"), the current estimate (a date or a window) beside the original promise,
  and, when the estimate rests on delivery history, how sure it is ("9 in 10 parcels like
  this arrive by then": the promise's confidence, which is also the level the re-estimate is
  computed at).
- When late, a note with how late, the cause in words and the new estimate. The cause is the
  most explanatory one that holds, which is not always the pipeline's stored reason: the
  pipeline ranks by what is most telling for a shop (a missed promise first), the customer
  wants to know why (a carrier problem, then no scan for too long, then a later date), and
  how late it is is said by the number of days anyway.
- Progress through ordered, shipped, in transit, out for delivery, delivered, with a problem
  (exception, failed attempt, return, no news, cancellation) shown as what it is, at the step
  where it happened.
- The timeline of scans, newest first, with local times and the place as city and region
  only.
- Every date and time is local to the destination (`dest_tz`) and in the page's language.

Nothing personal can appear: `OrderFacts` has no field for a name, a street, a phone or an
email, and events carry only city and region. Carrier codes and carriers' free text are not
shown either: each status is said in the service's own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from tracking_service.carriers.status import Status
from tracking_service.timezones import zone
from tracking_service.tracking import public_text as t
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.delays import DelayFacts, is_stalled
from tracking_service.tracking.progress import FINAL, order_status, rank
from tracking_service.tracking.state import Estimate

S = Status

CARRIER_NAMES = {
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
    "dhl": "DHL",
    "simulated": "Simulated Express",
}

EN_DASH = "\u2013"

STEPS: tuple[str, ...] = ("ordered", "shipped", "in_transit", "out_for_delivery", "delivered")
"""The progress bar's steps, in order."""


# --- input: plain facts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The public columns of an order (there is deliberately no field for personal data)."""

    order_id: str
    dest_country: str
    dest_subdivision: str | None
    dest_city: str | None
    promise_earliest: date
    promise_latest: date
    promise_confidence: float
    promise_basis: str  # given, rules or history
    locale: str | None = None
    cancelled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One stored event: when, the normalized status, where (city and region only) and who
    wrote it (`carrier`, or `service` with `kind` `cancelled`/`expired`)."""

    occurred_at: datetime
    status: str | None
    city: str | None = None
    region: str | None = None
    source: str = "carrier"
    kind: str = ""


@dataclass(frozen=True, slots=True)
class ShipmentFacts:
    id: int
    carrier: str
    tracking_number: str
    status: str
    status_changed_at: datetime | None = None
    estimate_earliest: date | None = None
    estimate_latest: date | None = None
    estimate_source: str | None = None
    delayed: bool = False
    delay_reason: str | None = None
    handed_off_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    cancelled_at: datetime | None = None
    events: tuple[EventFacts, ...] = ()  # oldest first


# --- output: the view model -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Local delivery dates and their text: one date ("Thu 11 Dec") or a window, the two dates
    joined by an en dash."""

    earliest: date
    latest: date
    text: str
    source: str | None = None  # carrier, history, rules or promise (None for the promise)


@dataclass(frozen=True, slots=True)
class Confidence:
    probability: float
    text: str


@dataclass(frozen=True, slots=True)
class LateNote:
    """How late, why, and the new estimate, as one honest paragraph.

    `days_late` is 0 when the parcel may be delayed (a problem or a long silence) but the
    estimate still keeps the promise. `reason`: `exception`, `failed_attempt`,
    `returned_to_sender`, `stalled`, `carrier_later`, `slower` or `promise_missed`."""

    days_late: int
    reason: str
    text: str
    delivered: bool = False  # the parcel arrived, late


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the progress bar. `state`: `done`, `current`, `todo` or `problem` (the
    step where a problem stopped the parcel; its `key` then names the problem)."""

    key: str
    label: str
    state: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    occurred_at: datetime  # local to the destination
    day: str
    time: str
    status: str | None
    text: str
    city: str | None
    region: str | None
    place: str | None  # "Campinas, SP"


@dataclass(frozen=True, slots=True)
class ShipmentView:
    number: int  # 1-based among the shipments shown
    title: str  # "Your parcel" / "Parcel 2 of 3"
    current: bool  # the shipment whose link was opened
    carrier: str
    carrier_name: str
    tracking_number: str
    status: str  # a shipment status, or `cancelled`
    status_text: str
    estimate: DateWindow | None
    confidence: Confidence | None
    late: LateNote | None
    delivered_at: datetime | None  # local
    steps: tuple[Step, ...]
    timeline: tuple[TimelineEntry, ...]  # newest first


@dataclass(frozen=True, slots=True)
class PublicView:
    locale: str
    title: str
    order_id: str
    destination: str | None  # "New York, NY"
    destination_text: str | None  # "Delivering to New York, NY"
    status: str  # the order's status (`tracking.progress.order_status`)
    status_text: str
    estimate: DateWindow | None  # None once nothing is on its way any more
    promise: DateWindow
    confidence: Confidence | None
    late: LateNote | None
    shipments: tuple[ShipmentView, ...]
    labels: dict[str, str]  # the page's fixed phrases in its language


# --- small pieces -----------------------------------------------------------------------------


def place(city: str | None, region: str | None) -> str | None:
    """ "City, Region", either alone, or None."""
    parts = [p.strip() for p in (city, region) if p and p.strip()]
    return ", ".join(parts) or None


def _status(value: str | None) -> Status | None:
    try:
        return Status(value) if value is not None else None
    except ValueError:
        return None


class _Words:
    """The locale, today's local date and the zone: what every phrase of one page needs."""

    def __init__(self, locale: str, now: datetime, dest_tz: str | None) -> None:
        self.locale = locale
        self.zone = zone(dest_tz or "UTC")
        self.today = now.astimezone(self.zone).date()

    def __call__(self, key: str, **values: object) -> str:
        return t.text(self.locale, key, **values)

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

    def day(self, value: date) -> str:
        return t.day(value, self.locale, value.year != self.today.year)

    def window(self, earliest: date, latest: date, source: str | None = None) -> DateWindow:
        text = self.day(latest)
        if earliest != latest:
            text = f"{self.day(earliest)} {EN_DASH} {text}"
        return DateWindow(earliest, latest, text, source)

    def ahead(self, estimate: Estimate) -> DateWindow | None:
        """An estimate as still ahead of the customer: its days before today dropped (a
        parcel not here by today arrives today at the earliest), None once it has passed (a
        date in the past is no estimate)."""
        if estimate.latest < self.today:
            return None
        return self.window(max(estimate.earliest, self.today), estimate.latest, estimate.source)

    def when(self, window: DateWindow) -> str:
        """The window inside a sentence: "Thu 11 Dec" / "between Wed 10 Dec and Thu 11 Dec"."""
        if window.earliest == window.latest:
            return self.day(window.latest)
        return self(
            "late.window", earliest=self.day(window.earliest), latest=self.day(window.latest)
        )

    def confidence(self, probability: float) -> Confidence:
        """ "9 in 10 parcels like this arrive by then" (in twentieths or hundredths when tenths
        would round a 0.95 or 0.975 into a claim it is not)."""
        for denominator in (10, 20, 100):
            n = round(probability * denominator)
            if abs(n - probability * denominator) < 1e-6 or denominator == 100:
                break
        n = min(max(n, 1), denominator)
        return Confidence(probability, self("page.confidence", n=n, d=denominator))


# --- a shipment -------------------------------------------------------------------------------


def _estimate(s: ShipmentFacts, promise: Estimate) -> Estimate:
    if s.estimate_earliest is not None and s.estimate_latest is not None:
        return Estimate(s.estimate_earliest, s.estimate_latest, s.estimate_source or "promise")
    return promise


def _headline(s: ShipmentFacts, status: Status | None, w: _Words) -> str:
    if s.cancelled_at is not None or status is None:
        return w("status.cancelled")
    if status == S.DELIVERED and s.delivered_at is not None:
        at = w.local(s.delivered_at)
        return w("status.delivered_at", day=w.day(at.date()), time=t.clock_time(at))
    if status == S.OUT_FOR_DELIVERY and (
        s.status_changed_at is None or w.local(s.status_changed_at).date() == w.today
    ):
        return w("status.out_for_delivery_today")
    return w(f"status.{status}")


def _steps(s: ShipmentFacts, status: Status | None, w: _Words) -> tuple[Step, ...]:
    """The progress bar: each step done up to the one reached, that one current (or the
    problem that stopped the parcel there), the rest to do."""
    handed_off = s.handed_off_at is not None
    problem: str | None = None
    if s.cancelled_at is not None or status is None:
        reached, problem = (2 if handed_off else 1), "cancelled"
    elif status in (S.PENDING,):
        reached = 0
    elif status == S.INFO_RECEIVED:
        reached = 1
    elif status == S.IN_TRANSIT:
        reached = 2
    elif status in (S.OUT_FOR_DELIVERY, S.AVAILABLE_FOR_PICKUP):
        reached = 3
    elif status == S.DELIVERED:
        reached = 4
    elif status == S.EXCEPTION:
        reached, problem = (2 if handed_off else 1), "exception"
    elif status == S.FAILED_ATTEMPT:
        reached, problem = 3, "failed_attempt"
    elif status == S.RETURNED_TO_SENDER:
        reached, problem = 3, "returned_to_sender"
    else:  # expired: the carrier never had it
        reached, problem = 1, "expired"
    keys = list(STEPS)
    if status == S.AVAILABLE_FOR_PICKUP:
        keys[3] = "available_for_pickup"
    if problem is not None:
        keys[reached] = problem
        if problem in ("returned_to_sender", "cancelled", "expired"):
            keys = keys[: reached + 1]  # nothing after these is expected to happen
    steps = []
    for i, key in enumerate(keys):
        if i < reached or (i == reached and status == S.DELIVERED):
            state = "done"
        elif i == reached:
            state = "problem" if problem is not None else "current"
        else:
            state = "todo"
        steps.append(Step(key, w(f"step.{key}"), state))
    return tuple(steps)


def _event_text(e: EventFacts, handed_off_at: datetime | None, w: _Words) -> str:
    if e.source == "service":
        return w("event.cancelled" if e.kind == "cancelled" else "event.expired")
    status = _status(e.status)
    if status is None:
        return w("event.unknown")
    if status == S.IN_TRANSIT and handed_off_at is not None and e.occurred_at == handed_off_at:
        return w("event.picked_up")
    return w(f"event.{status}")


def _timeline(s: ShipmentFacts, w: _Words) -> tuple[TimelineEntry, ...]:
    entries = []
    for e in reversed(s.events):
        at = w.local(e.occurred_at)
        entries.append(
            TimelineEntry(
                occurred_at=at,
                day=w.day(at.date()),
                time=t.clock_time(at),
                status=e.status if e.source == "carrier" else None,
                text=_event_text(e, s.handed_off_at, w),
                city=e.city,
                region=e.region,
                place=place(e.city, e.region),
            )
        )
    return tuple(entries)


def _cause(
    s: ShipmentFacts,
    status: Status,
    estimate: Estimate,
    promise: Estimate,
    late_days: int,
    now: datetime,
    dest_tz: str | None,
    config: TrackingConfig,
) -> str | None:
    """Why the parcel is late (or may be), in the order a customer wants it explained; None:
    it is not."""
    if status in (S.EXCEPTION, S.FAILED_ATTEMPT, S.RETURNED_TO_SENDER):
        return str(status)
    facts = DelayFacts(status, promise, estimate, s.last_event_at, s.delivered_at, dest_tz)
    if is_stalled(facts, now, config) or s.delay_reason == "stalled":
        return "stalled" if s.last_event_at is not None else None
    if estimate.latest > promise.latest:
        return "carrier_later" if estimate.source == "carrier" else "slower"
    if late_days > 0 or s.delay_reason == "promise_missed":
        return "promise_missed"
    return None


def _late_note(
    s: ShipmentFacts,
    status: Status | None,
    estimate: Estimate,
    promise: Estimate,
    subject: str,
    now: datetime,
    dest_tz: str | None,
    config: TrackingConfig,
    w: _Words,
) -> LateNote | None:
    if s.cancelled_at is not None or status is None or status == S.EXPIRED:
        return None
    promised = w.day(promise.latest)
    if status == S.DELIVERED:
        if s.delivered_at is None:
            return None
        late = (w.local(s.delivered_at).date() - promise.latest).days
        if late <= 0:
            return None
        text = w("late.arrived", subject=subject, days=t.days(w.locale, late), promise=promised)
        return LateNote(late, "promise_missed", t.sentence(text), delivered=True)
    late = max((estimate.latest - promise.latest).days, (w.today - promise.latest).days, 0)
    cause = _cause(s, status, estimate, promise, late, now, dest_tz, config)
    if cause is None:
        return None
    ahead = w.ahead(estimate)
    if cause == "stalled":
        assert s.last_event_at is not None
        reason = w("reason.stalled", day=w.day(w.local(s.last_event_at).date()))
    elif cause == "promise_missed":
        reason = w("reason.promise_missed", promise=promised)
    else:
        reason = w(f"reason.{cause}")
    if late > 0:
        first = w("late.running", subject=subject, days=t.days(w.locale, late), reason=reason)
    else:
        first = w("late.may_be", subject=subject, reason=reason)
    if status in FINAL or ahead is None:
        then = w("late.no_date")  # the estimate has passed: no honest date to give
    elif late > 0:
        then = w("late.expect", when=w.when(ahead))
    else:
        then = w("late.still_expect", when=w.when(ahead))
    return LateNote(late, cause, f"{t.sentence(first)} {t.sentence(then)}")


def _confidence(order: OrderFacts, estimate: Estimate | None, w: _Words) -> Confidence | None:
    """How sure the estimate is, when it comes from delivery history (the re-estimate's level
    is the promise's confidence; a promise of basis `history` states it itself)."""
    if estimate is None or not 0 < order.promise_confidence < 1:
        return None
    from_history = estimate.source == "history" or (
        estimate.source == "promise" and order.promise_basis == "history"
    )
    return w.confidence(order.promise_confidence) if from_history else None


def _shipment_view(
    s: ShipmentFacts,
    number: int,
    total: int,
    order: OrderFacts,
    promise: Estimate,
    focus_id: int | None,
    now: datetime,
    dest_tz: str | None,
    config: TrackingConfig,
    w: _Words,
) -> ShipmentView:
    status = None if s.cancelled_at is not None else _status(s.status)
    estimate = _estimate(s, promise)
    travelling = status is not None and status not in FINAL
    subject = w("late.subject") if total == 1 else w("late.subject_of", n=number, total=total)
    return ShipmentView(
        number=number,
        title=w("page.your_parcel") if total == 1 else w("page.parcel", n=number, total=total),
        current=s.id == focus_id,
        carrier=s.carrier,
        carrier_name=CARRIER_NAMES.get(s.carrier, s.carrier.upper()),
        tracking_number=s.tracking_number,
        status="cancelled" if status is None else str(status),
        status_text=_headline(s, status, w),
        estimate=w.ahead(estimate) if travelling else None,
        confidence=_confidence(order, estimate, w) if travelling else None,
        late=_late_note(s, status, estimate, promise, subject, now, dest_tz, config, w),
        delivered_at=w.local(s.delivered_at) if s.delivered_at is not None else None,
        steps=_steps(s, status, w),
        timeline=_timeline(s, w),
    )


# --- the page ---------------------------------------------------------------------------------

_LABELS = (
    "page.order",
    "page.estimate",
    "page.promise",
    "page.parcels",
    "page.carrier",
    "page.tracking_number",
    "page.progress",
    "page.timeline",
    "page.no_events",
    "page.times",
    "state.done",
    "state.current",
    "state.todo",
    "state.problem",
)


def labels(locale: str) -> dict[str, str]:
    """The page's fixed phrases, keyed without their `page.` prefix (`order` keeps its
    `{order_id}` placeholder for the template; the progress steps' states are `state.*`)."""
    return {key.removeprefix("page."): t.CATALOGUE[locale][key] for key in _LABELS}


def build_view(
    order: OrderFacts,
    shipments: Sequence[ShipmentFacts],
    *,
    focus_id: int | None,
    now: datetime,
    locale: str,
    dest_tz: str | None,
    config: TrackingConfig,
) -> PublicView:
    """The page of `order` opened through the link of shipment `focus_id`.

    `shipments` in registration order; those cancelled are left out unless the order is
    cancelled or it is the one whose link was opened (its customer is told it was cancelled).
    The order's status is derived from the live shipments as the pipeline derives it; its
    estimate is the latest of the parcels still on their way (the order is complete when the
    last one arrives); its late note is the one of the parcel most late.
    """
    w = _Words(locale, now, dest_tz)
    destination = place(order.dest_city, order.dest_subdivision)
    promise = Estimate(order.promise_earliest, order.promise_latest, "promise")
    cancelled = order.cancelled_at is not None
    shown = [s for s in shipments if cancelled or s.cancelled_at is None or s.id == focus_id]
    views = tuple(
        _shipment_view(s, i, len(shown), order, promise, focus_id, now, dest_tz, config, w)
        for i, s in enumerate(shown, start=1)
    )
    live = [s for s in shipments if s.cancelled_at is None]
    live_statuses = [st for st in (_status(s.status) for s in live) if st is not None]
    status = order_status(live_statuses, cancelled)

    travelling = [v for v in views if v.estimate is not None]
    estimate: DateWindow | None = None
    confidence: Confidence | None = None
    if travelling:
        last = max(travelling, key=lambda v: (v.estimate.latest, v.estimate.earliest))  # type: ignore[union-attr]
        assert last.estimate is not None
        earliest = max(v.estimate.earliest for v in travelling if v.estimate is not None)
        estimate = w.window(earliest, last.estimate.latest, last.estimate.source)
        confidence = last.confidence
    elif not live and not cancelled:
        estimate = w.window(promise.earliest, promise.latest, "promise")  # nothing sent yet

    notes = [v.late for v in views if v.late is not None and v.status != "cancelled"]
    pending_notes = [n for n in notes if not n.delivered]
    late = max(pending_notes or notes, key=lambda n: n.days_late, default=None)

    return PublicView(
        locale=locale,
        title=w("page.title"),
        order_id=order.order_id,
        destination=destination,
        destination_text=w("page.delivering_to", place=destination) if destination else None,
        status=status,
        status_text=_order_headline(status, live, views, w),
        estimate=None if cancelled else estimate,
        promise=w.window(promise.earliest, promise.latest),
        confidence=None if cancelled else confidence,
        late=None if cancelled else late,
        shipments=views,
        labels=labels(locale),
    )


def _order_headline(
    status: str, live: Sequence[ShipmentFacts], views: Sequence[ShipmentView], w: _Words
) -> str:
    """The order's status in words: with one parcel, that parcel's headline; with several,
    the least advanced one's (its status is the order's), how many arrived, or when the last
    one did."""
    if status == "cancelled":
        return w("status.cancelled")
    if not live:
        return w("status.processing")
    live_views = [v for v in views if v.status != "cancelled"]
    if len(live_views) == 1:
        return live_views[0].status_text
    if status == "partially_delivered":
        delivered = sum(1 for v in live_views if v.status == S.DELIVERED)
        return w("status.partially_delivered", delivered=delivered, total=len(live_views))
    if status == S.DELIVERED:
        last = max(
            (v for v in live_views if v.delivered_at is not None),
            key=lambda v: v.delivered_at,  # type: ignore[arg-type, return-value]
            default=None,
        )
        return last.status_text if last is not None else w("status.delivered")
    known = [v for v in live_views if _status(v.status) is not None]
    least = min(known, key=lambda v: rank(Status(v.status)), default=None)
    return least.status_text if least is not None else w(f"status.{status}")
