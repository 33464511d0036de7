"""The delivery promise: ship date, delivery window, order-by instant and explanation per option.

Pure: plain dataclasses in and out, no I/O. The rules' steps are separate functions:

    processing_day(origin_cal, order_local, cutoff, ready_on)  -> first day the order is worked
    ship_date(origin_cal, processing, handling_days)            -> hand-over to the carrier
    delivery_window(ship, transit_min, transit_max, delivery_cal) -> (earliest, latest)
    cutoff_instant(day, cutoff, tz)                             -> order_by in UTC

`Estimator` compiles the rules once (calendars, zone index) and caches at two levels, each by
exactly what its answer depends on:

* a whole request (`_answers`, LRU): the destination and options as given, the origin, the
  confidence asked, the ready date (when after the order date), the history snapshot, the
  order's local date at the origin and which side of each distinct cutoff of that origin its
  local time falls (to the second; DST is in the local date and time). Nothing else of the
  order's instant matters: the processing day, ship date, window, `order_by` (the cutoff, and
  with history local midnight) all follow from these. A hit is one dictionary lookup; only
  `order_time` is the request's own. A new history snapshot empties it.
* each option's rules outcome (`_outcome`): origin, local order date, processing day, ready
  date, zone, destination state and confidence, shared between requests that differ elsewhere.

History: `estimate(..., history=snapshot)` takes an `OptionHistories` snapshot (see
`option_history`, built off the request path). For an option with a model in the served zone
the window, confidence and percentiles come from `snapshot.window(...)` (cached there) for the
order's local date (the items' ready day for a pre-order); the rules still give the processing
day, the planned ship date and the cutoff, and no date of the window is before the ship date
plus the option's minimum transit. The explanation is for a shopper (the rules' steps, then the
history in words); the lanes it rests on are in `OptionEstimate.lanes`, for machines.
Everything else, and every option without history, stays on the rules.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from tracking_service.estimator.calendar import (
    BusinessCalendar,
    add_business_days,
    closures_between,
    delivery_calendar,
    format_day,
    next_business_day,
    origin_calendar,
    roll_forward,
)
from tracking_service.estimator.history import HistoryWindow, LaneQuery, lane_in_words
from tracking_service.estimator.lru import Lru
from tracking_service.estimator.option_history import OptionHistories
from tracking_service.estimator.postal import (
    PostalError,
    normalize_country,
    normalize_postal_code,
    resolve_subdivision,
)
from tracking_service.estimator.rules import Origin, Rules, ShippingOption
from tracking_service.estimator.zones import ZoneIndex, served_zone

Basis = Literal["rules", "history"]
FIRST_ORDER_YEAR, LAST_ORDER_YEAR = 1971, 2199  # beyond: calendars and date arithmetic overflow
MAX_READY_AHEAD = timedelta(days=2 * 366)  # a pre-order further out is not a promise

# --- plain data in and out --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    country: str
    postal_code: str
    subdivision: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    quantity: int = 1
    available_on: date | None = None


@dataclass(frozen=True, slots=True)
class ResolvedDestination:
    """The destination after validation: canonical postal code and (derived) state."""

    country: str
    postal_code: str
    subdivision: str | None
    zones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LaneBasis:
    """A lane a history-based window rests on, for machines (the explanation says it in words):
    which part of the journey it measures, its id, and how many delivered records it holds."""

    part: Literal["handling", "transit"]
    lane: str  # e.g. "t:postal * BR SP BR RJ 200"
    records: int


@dataclass(frozen=True, slots=True)
class OptionEstimate:
    option: str
    name: str
    carrier: str
    service: str
    price: Decimal
    currency: str
    zone: str
    ship_date: date
    earliest: date
    latest: date
    confidence: float
    order_by: datetime  # aware UTC
    explanation: tuple[str, ...]
    basis: Basis = "rules"
    percentiles: tuple[tuple[int, date], ...] = ()  # (p, local date), with history only
    lanes: tuple[LaneBasis, ...] = ()  # the lanes of a history-based window (handling, transit)


@dataclass(frozen=True, slots=True)
class Unavailable:
    option: str
    reason: str


@dataclass(frozen=True, slots=True)
class EstimateResult:
    origin: str
    order_time: datetime  # aware UTC
    destination: ResolvedDestination
    estimates: tuple[OptionEstimate, ...]
    unavailable: tuple[Unavailable, ...]


class EstimateInputError(ValueError):
    """Input the rules cannot answer; `field` is the request path (`destination.country`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- the steps --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Processing:
    """When the warehouse starts on the order, and why that day."""

    day: date
    reason: Literal["before_cutoff", "after_cutoff", "closed_day", "items_ready"]


def processing_day(
    cal: BusinessCalendar, order_local: datetime, cutoff: time, ready_on: date | None = None
) -> Processing:
    """The first origin business day the order is worked on.

    Ordered on a business day strictly before the cutoff (to the second): that day; at or after
    it: the next business day; on a closed day: the next business day. Items that are not ready
    push it to the first business day on or after their ready date.
    """
    today = order_local.date()
    if cal.is_open(today):
        if order_local.time().replace(tzinfo=None) < cutoff:
            result = Processing(today, "before_cutoff")
        else:
            result = Processing(next_business_day(cal, today), "after_cutoff")
    else:
        result = Processing(roll_forward(cal, today), "closed_day")
    if ready_on is not None and ready_on > today:
        ready_day = roll_forward(cal, ready_on)
        if ready_day > result.day:
            result = Processing(ready_day, "items_ready")
    return result


def history_day(processing: Processing, order_local: datetime) -> date:
    """The order's day as the history is asked about it: the local order date, or for an order
    held back by items not yet ready the day they are processed (the window moves with it)."""
    return processing.day if processing.reason == "items_ready" else order_local.date()


def lane_query(origin: Origin, dest: ResolvedDestination) -> LaneQuery:
    """The history's lane for an order from `origin` to the resolved destination."""
    return LaneQuery(
        origin_country=origin.country,
        origin_subdivision=origin.subdivision,
        origin_postal_code=origin.postal_code,
        dest_country=dest.country,
        dest_subdivision=dest.subdivision,
        dest_postal_code=dest.postal_code,
        origin_id=origin.id,
    )


def ship_date(cal: BusinessCalendar, processing: date, handling_days: int) -> date:
    """The hand-over to the carrier: `handling_days` business days after processing starts."""
    return add_business_days(cal, processing, handling_days)


def delivery_window(
    ship: date, transit_min: int, transit_max: int, delivery_cal: BusinessCalendar
) -> tuple[date, date]:
    """Earliest and latest local delivery dates: transit counted in the carrier's delivery days
    at the destination (its weekdays, the destination's holidays, its own non-delivery days)."""
    return (
        add_business_days(delivery_cal, ship, transit_min),
        add_business_days(delivery_cal, ship, transit_max),
    )


def cutoff_instant(day: date, cutoff: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of the cutoff on a local date (DST-aware)."""
    return datetime.combine(day, cutoff, tzinfo=tz).astimezone(UTC)


# --- compiled rules ---------------------------------------------------------------------------


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _range(a: date, b: date) -> str:
    return f"on {format_day(a)}" if a == b else f"between {format_day(a)} and {format_day(b)}"


def _days(n_min: int, n_max: int) -> str:
    n = f"{n_min}" if n_min == n_max else f"{n_min}-{n_max}"
    return f"{n} delivery day{'' if n_min == n_max == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class _Key:
    origin: str
    option: str
    order_day: date
    processing: Processing
    ready_on: date | None
    zone: str
    country: str
    subdivision: str | None
    confidence: float | None


@dataclass(frozen=True, slots=True)
class _Answer:
    """The part of an `EstimateResult` that does not depend on the order's exact instant."""

    origin: str
    destination: ResolvedDestination
    estimates: tuple[OptionEstimate, ...]
    unavailable: tuple[Unavailable, ...]


@dataclass(eq=False)
class Estimator:
    """Rules compiled for estimating: calendars, zone index, a cache of whole answers and one
    of option outcomes."""

    rules: Rules
    cache_size: int = 16384
    answer_cache_size: int = 32768
    _zones: ZoneIndex = field(init=False, repr=False)
    _origin_cals: dict[str, BusinessCalendar] = field(init=False, repr=False)
    _tz: dict[str, ZoneInfo] = field(init=False, repr=False)
    _delivery_cals: dict[tuple[str, str, str | None], BusinessCalendar] = field(
        init=False, repr=False
    )
    _options: dict[str, ShippingOption] = field(init=False, repr=False)
    _cutoffs: dict[str, tuple[time, ...]] = field(init=False, repr=False)
    _answers: Lru[Hashable, _Answer] = field(init=False, repr=False)
    _answers_snapshot: object | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._zones = ZoneIndex(self.rules)
        self._origin_cals = {o.id: origin_calendar(o) for o in self.rules.origins}
        self._tz = {o.id: ZoneInfo(o.time_zone) for o in self.rules.origins}
        self._delivery_cals = {}
        self._options = {o.code: o for o in self.rules.shipping_options}
        self._cutoffs = {
            o.id: tuple(
                sorted({o.cutoff} | {s.cutoff for s in self.rules.shipping_options if s.cutoff})
            )
            for o in self.rules.origins
        }
        self._outcome = lru_cache(maxsize=self.cache_size)(self._compute)
        self._resolved = lru_cache(maxsize=self.cache_size)(self._resolve)
        self._answers = Lru(self.answer_cache_size)

    # calendars ----------------------------------------------------------------------------

    def origin_calendar(self, origin_id: str) -> BusinessCalendar:
        return self._origin_cals[origin_id]

    def delivery_calendar(
        self, option_code: str, country: str, subdivision: str | None
    ) -> BusinessCalendar:
        """The carrier's delivery days at a destination, built once per (option, place)."""
        key = (option_code, country, subdivision)
        cal = self._delivery_cals.get(key)
        if cal is None:
            with self._lock:
                cal = self._delivery_cals.get(key)
                if cal is None:
                    cal = delivery_calendar(self._options[option_code], country, subdivision)
                    self._delivery_cals[key] = cal
        return cal

    # destinations -------------------------------------------------------------------------

    def resolve(self, destination: Destination) -> ResolvedDestination:
        """Validate the destination; raise EstimateInputError naming the offending field.
        Cached by the destination as given (errors are not cached)."""
        return self._resolved(destination)

    def _resolve(self, destination: Destination) -> ResolvedDestination:
        try:
            country = normalize_country(destination.country)
            postal = normalize_postal_code(country, destination.postal_code)
            subdivision = resolve_subdivision(postal, destination.subdivision)
        except PostalError as exc:
            raise EstimateInputError(f"destination.{exc.field}", exc.message) from None
        zones = self._zones.match(country, postal.key, subdivision)
        return ResolvedDestination(country, postal.display, subdivision, tuple(z.id for z in zones))

    # the estimate -------------------------------------------------------------------------

    def estimate(
        self,
        *,
        destination: Destination,
        order_time: datetime,
        origin: str | None = None,
        items: Sequence[Item] = (),
        options: Iterable[str] | None = None,
        history: OptionHistories | None = None,
        confidence: float | None = None,
    ) -> EstimateResult:
        """A promise for each requested option (all by default), and the ones that cannot serve.

        `order_time` must be timezone-aware. `confidence` asks every option for that level
        instead of its configured one: the history measures the window for it; an option on
        the rules keeps its configured days and level and says so in its explanation. Raises
        EstimateInputError for an unknown origin or option and for a bad destination.
        """
        if order_time.tzinfo is None or order_time.utcoffset() is None:
            raise EstimateInputError("order_time", "order_time needs a UTC offset")
        try:
            order_utc = order_time.astimezone(UTC)
        except OverflowError:
            order_utc = datetime.min.replace(tzinfo=UTC)
        if not FIRST_ORDER_YEAR <= order_utc.year <= LAST_ORDER_YEAR:
            raise EstimateInputError(
                "order_time", f"order_time must be in {FIRST_ORDER_YEAR}..{LAST_ORDER_YEAR}"
            )
        for i, item in enumerate(items):
            if item.available_on and item.available_on > order_utc.date() + MAX_READY_AHEAD:
                raise EstimateInputError(
                    f"items.{i}.available_on",
                    f"available_on is more than {MAX_READY_AHEAD.days} days after the order",
                )
        if confidence is not None and not 0 < confidence < 1:
            raise EstimateInputError("confidence", "confidence must be between 0 and 1")
        origin_rules = self.rules.origin(origin)
        if origin_rules is None:
            known = ", ".join(o.id for o in self.rules.origins)
            raise EstimateInputError("origin", f"unknown origin {origin!r}; known: {known}")
        local = order_utc.astimezone(self._tz[origin_rules.id])
        today = local.date()
        ready_on = max((i.available_on for i in items if i.available_on), default=None)
        if ready_on is not None and ready_on <= today:
            ready_on = None  # ready before the order: it changes nothing (see processing_day)
        if history is not None and not history.models:
            history = None  # nothing learned yet: the rules, without the lookups
        if history is not None and history is not self._answers_snapshot:
            with self._lock:  # a new snapshot: the answers of the old one go
                if history is not self._answers_snapshot:
                    self._answers.clear()
                    self._answers_snapshot = history
        asked = None if options is None else tuple(options)
        key = (
            origin_rules.id,
            destination,
            asked,
            confidence,
            ready_on,
            history,
            today,
            bisect_right(self._cutoffs[origin_rules.id], local.time()),
        )
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answer(
                origin_rules, destination, asked, confidence, ready_on, history, local
            )
            self._answers.put(key, answer)
        assert isinstance(answer, _Answer)
        return EstimateResult(
            answer.origin, order_utc, answer.destination, answer.estimates, answer.unavailable
        )

    def _answer(
        self,
        origin_rules: Origin,
        destination: Destination,
        options: Iterable[str] | None,
        confidence: float | None,
        ready_on: date | None,
        history: OptionHistories | None,
        local: datetime,
    ) -> _Answer:
        """Every option's outcome for an order at `local` (the origin's zone)."""
        wanted = self._wanted_options(options)
        dest = self.resolve(destination)
        zones_by_id = {z: i for i, z in enumerate(dest.zones)}
        cal = self._origin_cals[origin_rules.id]
        query = None if history is None else lane_query(origin_rules, dest)

        estimates: list[OptionEstimate] = []
        unavailable: list[Unavailable] = []
        for option in wanted:
            if option.origins is not None and origin_rules.id not in option.origins:
                unavailable.append(Unavailable(option.code, f"not shipped from {origin_rules.id}"))
                continue
            zone = served_zone(option, zones_by_id)
            if zone is None:
                where = f"{dest.country} {dest.postal_code}"
                if dest.subdivision:
                    where += f" ({dest.subdivision})"
                unavailable.append(Unavailable(option.code, f"does not deliver to {where}"))
                continue
            cutoff = option.cutoff or origin_rules.cutoff
            processing = processing_day(cal, local, cutoff, ready_on)
            key = _Key(
                origin_rules.id,
                option.code,
                local.date(),
                processing,
                ready_on,
                zone,
                dest.country,
                dest.subdivision,
                confidence,
            )
            outcome = self._outcome(key)
            if history is not None and query is not None:
                level = confidence if confidence is not None else option.confidence
                day = history_day(processing, local)
                found = history.lookup(option.code, zone, query, day, level)
                if found is not None and (found[1].transit.records or found[1].handling.records):
                    rules_outcome, (window_key, win), as_of = outcome, found, history.as_of
                    outcome = history.memo(
                        (key, window_key),
                        lambda: self._with_history(key, rules_outcome, win, as_of, local),  # noqa: B023
                    )
            estimates.append(outcome)
        return _Answer(origin_rules.id, dest, tuple(estimates), tuple(unavailable))

    def _wanted_options(self, options: Iterable[str] | None) -> list[ShippingOption]:
        if options is None:
            return list(self.rules.shipping_options)
        out: list[ShippingOption] = []
        for i, code in enumerate(options):
            option = self._options.get(code)
            if option is None:
                known = ", ".join(self._options)
                raise EstimateInputError(
                    f"options.{i}", f"unknown shipping option {code!r}; known: {known}"
                )
            if option not in out:
                out.append(option)
        return out

    def _shipping(self, key: _Key) -> tuple[date, list[str]]:
        """The planned ship date and the steps that explain it: processing, the warehouse's
        closed days that moved it, handling days, the ship date."""
        origin = self.rules.origin(key.origin)
        assert origin is not None
        option = self._options[key.option]
        cal = self._origin_cals[origin.id]
        cutoff = option.cutoff or origin.cutoff
        handling = (
            option.handling_days if option.handling_days is not None else origin.handling_days
        )
        processing = key.processing
        ship = ship_date(cal, processing.day, handling)
        steps = [_processing_step(origin, cutoff, key.order_day, processing, key.ready_on)]
        # only the closed days that moved the date: for a pre-order those from the day its
        # items are ready (that day included: closed, it moves processing), not the order's
        since = key.order_day
        if processing.reason == "items_ready" and key.ready_on is not None:
            since = key.ready_on - timedelta(days=1)
        for day, name in closures_between(cal, since, ship):
            steps.append(f"{name} {format_day(day)} skipped at {origin.id}")
        if handling:
            steps.append(f"{handling} handling day{'s' if handling > 1 else ''}")
        steps.append(f"ships {format_day(ship)}")
        return ship, steps

    def _compute(self, key: _Key) -> OptionEstimate:
        origin = self.rules.origin(key.origin)
        assert origin is not None
        option = self._options[key.option]
        tz = self._tz[origin.id]
        cutoff = option.cutoff or origin.cutoff
        transit = next(t for t in option.transit if t.zone == key.zone)
        t_min, t_max = transit.min, transit.max

        processing = key.processing
        ship, steps = self._shipping(key)
        dcal = self.delivery_calendar(option.code, key.country, key.subdivision)
        earliest, latest = delivery_window(ship, t_min, t_max, dcal)

        for day, name in closures_between(dcal, ship, latest):
            steps.append(f"{name} {format_day(day)} skipped (no {option.carrier} delivery)")
        if t_max == 0:
            transit_step = f"same-day delivery by {option.carrier} in {key.zone}"
        else:
            transit_step = f"{_days(t_min, t_max)} with {option.carrier} to {key.zone}"
        steps.append(f"{transit_step}: arrives {_range(earliest, latest)}")
        steps.append(f"basis: rules (configured days, stated at {option.confidence:.0%})")
        if key.confidence is not None and key.confidence != option.confidence:
            steps.append(
                f"asked for {key.confidence:.0%}: without delivery history for this option the "
                f"window stays the rules' one at {option.confidence:.0%}"
            )
        return OptionEstimate(
            option=option.code,
            name=option.name,
            carrier=option.carrier,
            service=option.service,
            price=option.price,
            currency=option.currency,
            zone=key.zone,
            ship_date=ship,
            earliest=earliest,
            latest=latest,
            confidence=option.confidence,
            order_by=cutoff_instant(processing.day, cutoff, tz),
            explanation=tuple(steps),
        )

    def _with_history(
        self,
        key: _Key,
        rules: OptionEstimate,
        win: HistoryWindow,
        as_of: datetime | None,
        order_local: datetime,
    ) -> OptionEstimate:
        """The rules' outcome with the window, level and percentiles measured on history.

        The rules still give the processing day, the ship date and the cutoff, and their
        steps stay in the explanation. No date is before the ship date plus the option's
        minimum transit (the rules' `earliest`): the history's handling part is read from the
        order date and knows neither the cutoff nor the warehouse's closed days, so alone it
        can promise a parcel the carrier does not have yet.

        The history window is read for the order's local date, so it holds until the end of
        that day at most: `order_by` is the earlier of the rules' cutoff and local midnight.
        """
        option = self._options[key.option]
        ship, steps = self._shipping(key)
        earliest = max(win.earliest, rules.earliest)
        latest = max(win.latest, earliest)
        pct = tuple((p, max(day, earliest)) for p, day in sorted(win.percentiles.items()))
        dcal = self.delivery_calendar(option.code, key.country, key.subdivision)
        for day, name in closures_between(dcal, ship, latest):
            steps.append(f"{name} {format_day(day)} skipped (no {option.carrier} delivery)")
        steps.append(_history_step(win, as_of, latest, dict(pct).get(50)))
        arrives = f"arrives {_range(earliest, latest)}"
        if earliest > win.earliest:
            t_min = next(t.min for t in option.transit if t.zone == key.zone)
            after = "it ships" if t_min == 0 else f"{_days(t_min, t_min)} after it ships"
            arrives += f" (not before {after})"
        steps.append(arrives)
        steps.append(f"basis: history (past deliveries, stated at {win.confidence:.0%})")
        midnight = datetime.combine(
            order_local.date() + timedelta(days=1), time(0), tzinfo=order_local.tzinfo
        ).astimezone(UTC)
        both = (
            LaneBasis("handling", win.handling.lane, win.handling.records),
            LaneBasis("transit", win.transit.lane, win.transit.records),
        )
        lanes = tuple(lane for lane in both if lane.records)
        return replace(
            rules,
            earliest=earliest,
            latest=latest,
            confidence=win.confidence,
            order_by=min(rules.order_by, midnight),
            explanation=tuple(steps),
            basis="history",
            percentiles=pct,
            lanes=lanes,
        )


def _history_step(
    win: HistoryWindow, as_of: datetime | None, latest: date, median: date | None
) -> str:
    """What the history says, in words: how many deliveries, from where to where."""
    if win.transit.records:
        words = lane_in_words(win.transit.key)
        based = f"based on {win.transit.records:,} recent deliveries {words}"
    else:
        words = lane_in_words(win.handling.key)
        based = (
            f"based on {win.handling.records:,} recent orders shipped {words} "
            "and the configured transit days"
        )
    data = f", data up to {format_day(as_of.date())} {as_of.year}" if as_of else ""
    half = f", half by {format_day(median)}" if median else ""
    return (
        " ".join(based.split())
        + f"{data}: {win.confidence:.0%} arrive by {format_day(latest)}{half}"
    )


def _processing_step(
    origin: Origin, cutoff: time, order_day: date, p: Processing, ready_on: date | None
) -> str:
    where = origin.time_zone
    if p.reason == "before_cutoff":
        return (
            f"ordered before the {_hhmm(cutoff)} cutoff in {where}: processed {format_day(p.day)}"
        )
    if p.reason == "after_cutoff":
        return f"ordered after the {_hhmm(cutoff)} cutoff in {where}: processed {format_day(p.day)}"
    if p.reason == "closed_day":
        return (
            f"ordered on {format_day(order_day)}, a closed day at {origin.id}: "
            f"processed {format_day(p.day)}"
        )
    assert ready_on is not None
    return f"items ready on {format_day(ready_on)}: processed {format_day(p.day)}"
