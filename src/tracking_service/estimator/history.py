"""Lane history: learn delivery times from real deliveries and state a calibrated window.

Pure (no I/O). A delivery is split in two parts, learned separately:

* handling: local order date -> carrier hand-off, in ORIGIN business days;
* transit: hand-off -> delivered, in DESTINATION delivery days.

Each part is a recency-weighted, discrete-time distribution of whole days per lane (kept as a
hazard: of the parcels still waiting after k days, the share done on day k), with a hierarchy
of lanes from specific to general (e.g. seller state + customer postal prefix, then + customer
state, then distance band, then + destination country, then everything, then the rule's own
min-max as a prior). A lane is BLENDED with its parent in proportion to its evidence, like a
Beta prior of `prior_strength` pseudo-records drawn from the parent, day by day::

    h_lane(k) = (done(k) + prior_strength * h_parent(k)) / (at_risk(k) + prior_strength)

so a lane with little (or old) evidence speaks with its parent's voice and a lane with much
evidence speaks with its own, faster or slower than its parent. Parcels still in flight are
censored records (see `InFlight`): without them the most recent, most weighted records would
be the fast ones only. A record's weight halves every `half_life_days` of order time.

The window at confidence `c` is read from the combined distribution of the delivery date:
`latest` is the smallest delivery day on which P(delivered by then) >= c, `earliest` a low
quantile. The two parts are combined exactly on the calendars: for each handling outcome `h`
(a ship day on the origin's calendar) the transit distribution is laid on the destination's
delivery days from that ship day, and the mixture is searched for the level.

Keeping the stated confidence true under drift is `LevelCorrector`: adaptive conformal
inference (Gibbs & Candès 2021) on the quantile level, bounded, fed with the outcome of every
promise as soon as it is known. It moves the LEVEL, never the days, so a lane faster or slower
than its parent keeps its own shape.

Two ways to use it:

* `LaneHistory`: mutable, `add(delivery)` in O(lanes per record); `window(...)` computes a
  lane's blended distributions on demand (the backtest replays with it);
* `LaneHistory.freeze(now)` -> `HistoryModel`: immutable, every chain of lanes a record went
  through pre-blended (keyed by the whole chain: a lane can have several parents), so it
  answers exactly what the builder would at `now`; a lookup at request time is a handful of
  dict lookups plus a short search (the estimate route uses it).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from tracking_service.estimator.calendar import MON_FRI, BusinessCalendar, HolidaySource
from tracking_service.estimator.records import Delivery

PERCENTILES: tuple[int, ...] = (50, 75, 85, 90, 95, 97, 99)

HANDLING_LEVELS = ("origin_id", "origin_postal", "origin_subdivision", "origin_country")
TRANSIT_LEVELS = (
    "dest_postal_fine",
    "dest_postal",
    "dest_subdivision",
    "dest_distance",
    "distance",
    "dest_country",
)

LaneKey = tuple[str | None, ...]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """How the model learns. One configuration, fixed before any replay."""

    half_life_days: float | None = 120.0  # None: every record weighs the same forever
    prior_strength: float = 15.0  # pseudo-records a lane borrows from its parent, per day
    handling_prior_strength: float | None = None  # the same for handling lanes (None: as above)
    handling_levels: tuple[str, ...] = ("origin_postal", "origin_subdivision")
    transit_levels: tuple[str, ...] = (
        "dest_postal",
        "dest_subdivision",
        "distance",
        "dest_country",
    )
    dest_postal_digits: int = 3
    dest_postal_fine_digits: int = 5  # the "dest_postal_fine" level (e.g. a customer zip5)
    origin_postal_digits: int = 5
    # transit also split by the hand-off weekday: at order time one transit distribution per
    # ship weekday, mixed by the handling distribution's ship days ("lane": the most specific
    # lane is split; "all": every lane, under one unsplit root)
    handoff_weekday: bool = False
    handoff_weekday_levels: str = "lane"
    censoring: bool = True  # learn from parcels in flight too (see `InFlight`)
    distance_bands_km: tuple[float, ...] = (100.0, 300.0, 700.0, 1500.0, 2500.0)
    max_handling_days: int = 60
    max_transit_days: int = 90
    earliest_level: float = 0.1
    # the fast drift signal (see `LaneHistory.drift`): parts it applies to, the window of
    # recent cohorts it reads (None: off), its pseudo-count toward "no drift", its bounds
    drift_parts: tuple[str, ...] = ("transit",)
    drift_window_days: float | None = 21.0
    drift_prior: float = 20.0
    drift_bounds: tuple[float, float] = (0.5, 2.0)
    drift_reference: str = "lane"  # "lane": each parcel's own blended lane; "root": the root

    def __post_init__(self) -> None:
        unknown = [x for x in self.handling_levels if x not in HANDLING_LEVELS]
        unknown += [x for x in self.transit_levels if x not in TRANSIT_LEVELS]
        if unknown:
            raise ValueError(f"unknown lane levels: {', '.join(unknown)}")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        if self.prior_strength <= 0:
            raise ValueError("prior_strength must be positive")
        if self.handling_prior_strength is not None and self.handling_prior_strength <= 0:
            raise ValueError("handling_prior_strength must be positive")
        if not 0 < self.earliest_level < 1:
            raise ValueError("earliest_level must be in (0, 1)")
        if any(x not in ("handling", "transit") for x in self.drift_parts):
            raise ValueError("drift_parts must name 'handling' and/or 'transit'")
        if self.drift_window_days is not None and self.drift_window_days <= 0:
            raise ValueError("drift_window_days must be positive")
        if self.drift_prior <= 0:
            raise ValueError("drift_prior must be positive")
        lo, hi = self.drift_bounds
        if not 0 < lo <= 1 <= hi:
            raise ValueError("drift_bounds must be (lo, hi) with 0 < lo <= 1 <= hi")
        if self.handoff_weekday_levels not in ("lane", "all"):
            raise ValueError("handoff_weekday_levels must be 'lane' or 'all'")
        if self.drift_reference not in ("lane", "root"):
            raise ValueError("drift_reference must be 'lane' or 'root'")

    def strength(self, part: str) -> float:
        """The prior strength of a part's lanes ("h"/"handling" or "t"/"transit")."""
        if part.startswith("h") and self.handling_prior_strength is not None:
            return self.handling_prior_strength
        return self.prior_strength

    @property
    def drift_on(self) -> bool:
        return self.drift_window_days is not None and bool(self.drift_parts)


# --------------------------------------------------------------------------- calendars


class DayIndex:
    """Numbers the open days of a calendar so counting days between two dates is O(1).

    `is_open` is the calendar's own predicate (e.g. `calendar.is_business_day` bound to an
    origin, or the carrier's delivery days at a destination); this class only indexes it.
    A closed day takes the index of the next open day: a parcel handed over or delivered on
    a Saturday counts as Monday's, which keeps dates and counts consistent both ways.
    """

    __slots__ = ("_ceil", "_days", "_first", "_is_open", "_last")

    def __init__(self, is_open: Callable[[date], bool], first: date, last: date) -> None:
        self._is_open = is_open
        self._first = first
        self._last = last
        self._ceil: list[int] = []
        self._days: list[date] = []
        self._build(first, last)

    def _build(self, first: date, last: date) -> None:
        days: list[date] = []
        ceil: list[int] = []
        pending = 0
        span = (last - first).days + 1
        for offset in range(span):
            d = first + timedelta(days=offset)
            if self._is_open(d):
                days.append(d)
                ceil.extend([len(days) - 1] * (pending + 1))
                pending = 0
            else:
                pending += 1
        # closed days at the very end point past the last open day
        ceil.extend([len(days)] * pending)
        if not days:
            raise ValueError("a calendar with no open day between {first} and {last}")
        self._first, self._last, self._ceil, self._days = first, last, ceil, days

    def _cover(self, d: date) -> None:
        if d < self._first or d > self._last:
            first = min(self._first, date(d.year - 1, 1, 1))
            last = max(self._last, date(d.year + 1, 12, 31))
            self._build(first, last)

    def ceil(self, d: date) -> int:
        """Index of the first open day on or after `d`."""
        self._cover(d)
        if self._ceil[(d - self._first).days] >= len(self._days):
            self._cover(self._last + timedelta(days=400))
        return self._ceil[(d - self._first).days]

    def day(self, index: int) -> date:
        """The open day with this index (extends the index when needed)."""
        while index >= len(self._days):
            self._cover(self._last + timedelta(days=400))
        if index < 0:
            raise IndexError("before the start of the calendar index")
        return self._days[index]


class Calendars:
    """Origin and destination day indexes, built once per place from calendar predicates.

    `origin(country, subdivision)` must return a "business day" predicate of the origin,
    `destination(country, subdivision)` a "delivery day" predicate of the destination.
    """

    def __init__(
        self,
        origin: Callable[[str, str | None], Callable[[date], bool]],
        destination: Callable[[str, str | None], Callable[[date], bool]],
        first: date = date(2015, 1, 1),
        last: date = date(2019, 12, 31),
    ) -> None:
        self._origin_factory = origin
        self._dest_factory = destination
        self._first, self._last = first, last
        self._origin: dict[tuple[str, str | None], DayIndex] = {}
        self._dest: dict[tuple[str, str | None], DayIndex] = {}

    def origin(self, country: str, subdivision: str | None) -> DayIndex:
        key = (country, subdivision)
        index = self._origin.get(key)
        if index is None:
            index = DayIndex(self._origin_factory(country, subdivision), self._first, self._last)
            self._origin[key] = index
        return index

    def destination(self, country: str, subdivision: str | None) -> DayIndex:
        key = (country, subdivision)
        index = self._dest.get(key)
        if index is None:
            index = DayIndex(self._dest_factory(country, subdivision), self._first, self._last)
            self._dest[key] = index
        return index


def holiday_calendars(weekdays: frozenset[int] = MON_FRI, state_holidays: bool = True) -> Calendars:
    """Mon-Fri calendars with the national (and state) public holidays of each place.

    For history files that say nothing about a warehouse's or a carrier's own days off (the
    backtest); the running service builds its calendars from the rules instead.
    """

    def make(country: str, subdivision: str | None) -> Callable[[date], bool]:
        sub = subdivision if state_holidays else None
        name = f"{country}-{sub}" if sub else country
        return BusinessCalendar(name, weekdays, (HolidaySource(country, sub),)).is_open

    return Calendars(make, make)


# --------------------------------------------------------------------------- lanes


@dataclass(frozen=True, slots=True)
class LaneQuery:
    """Where a parcel goes: what the lane keys are made of."""

    origin_country: str
    origin_subdivision: str | None
    origin_postal_code: str | None
    dest_country: str
    dest_subdivision: str | None
    dest_postal_code: str | None
    service: str | None = None
    origin_id: str | None = None
    distance_km: float | None = None

    @classmethod
    def of(cls, d: Delivery) -> LaneQuery:
        return cls(
            origin_country=d.origin_country,
            origin_subdivision=d.origin_subdivision,
            origin_postal_code=d.origin_postal_code,
            dest_country=d.dest_country,
            dest_subdivision=d.dest_subdivision,
            dest_postal_code=d.dest_postal_code,
            service=_service(d.carrier, d.service),
            origin_id=d.origin_id,
            distance_km=distance_km(d.origin_lat, d.origin_lng, d.dest_lat, d.dest_lng),
        )


def _service(carrier: str | None, service: str | None) -> str | None:
    if carrier is None and service is None:
        return None
    return f"{carrier or ''}/{service or ''}"


def distance_km(
    lat1: float | None, lng1: float | None, lat2: float | None, lng2: float | None
) -> float | None:
    """Great-circle distance (haversine), or None when a coordinate is missing."""
    if lat1 is None or lng1 is None or lat2 is None or lng2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _prefix(code: str | None, digits: int) -> str | None:
    if not code:
        return None
    return "".join(ch for ch in code if ch.isalnum())[:digits] or None


def handling_chain(q: LaneQuery, cfg: HistoryConfig) -> list[LaneKey]:
    """Handling lane keys, most specific first, ending with the root `("handling",)`."""
    chain: list[LaneKey] = []
    for level in cfg.handling_levels:
        if level == "origin_id":
            if q.origin_id:
                chain.append(("h:id", q.origin_country, q.origin_id))
        elif level == "origin_postal":
            prefix = _prefix(q.origin_postal_code, cfg.origin_postal_digits)
            if prefix:
                chain.append(("h:postal", q.origin_country, q.origin_subdivision, prefix))
        elif level == "origin_subdivision":
            chain.append(("h:sub", q.origin_country, q.origin_subdivision))
        elif level == "origin_country":
            chain.append(("h:country", q.origin_country))
    chain.append(("handling",))
    return chain


def _band(km: float | None, bands: Sequence[float]) -> str | None:
    if km is None or not bands:
        return None
    return str(bisect_left(bands, km))


def transit_chain(q: LaneQuery, cfg: HistoryConfig, weekday: int | None = None) -> list[LaneKey]:
    """Transit lane keys, most specific first, ending with the service's root.

    With `handoff_weekday`, the most specific lane is split again by the hand-off weekday.
    """
    svc = q.service
    o = (q.origin_country, q.origin_subdivision)
    chain: list[LaneKey] = []
    for level in cfg.transit_levels:
        if level == "dest_postal_fine":
            prefix = _prefix(q.dest_postal_code, cfg.dest_postal_fine_digits)
            if prefix:
                chain.append(("t:fine", svc, *o, q.dest_country, q.dest_subdivision, prefix))
        elif level == "dest_postal":
            prefix = _prefix(q.dest_postal_code, cfg.dest_postal_digits)
            if prefix:
                chain.append(("t:postal", svc, *o, q.dest_country, q.dest_subdivision, prefix))
        elif level == "dest_subdivision":
            chain.append(("t:sub", svc, *o, q.dest_country, q.dest_subdivision))
        elif level == "dest_distance":  # the distance band into this destination state
            band = _band(q.distance_km, cfg.distance_bands_km)
            if band is not None:
                chain.append(("t:subdist", svc, q.dest_country, q.dest_subdivision, band))
        elif level == "distance":
            band = _band(q.distance_km, cfg.distance_bands_km)
            if band is not None:
                chain.append(("t:dist", svc, q.origin_country, q.dest_country, band))
        elif level == "dest_country":
            chain.append(("t:country", svc, *o, q.dest_country))
    chain.append(("transit", svc))
    if cfg.handoff_weekday and weekday is not None:
        if cfg.handoff_weekday_levels == "all":
            return [("t:weekday", str(weekday), *key) for key in chain] + chain[-1:]
        chain.insert(0, ("t:weekday", str(weekday), *chain[0]))
    return chain


def describe_lane(key: LaneKey) -> str:
    """A lane key in words, for explanations: `transit SP,BR -> BR,RJ 240`."""
    kind, *parts = key
    return f"{kind} " + " ".join("*" if p is None else str(p) for p in parts)


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Observation:
    """One delivery in model units: handling and transit days and the recency instant."""

    handling_days: int
    transit_days: int
    handoff_weekday: int
    known_at: datetime


def observe(d: Delivery, calendars: Calendars, cfg: HistoryConfig) -> Observation | None:
    """Handling and transit days of a delivery, or None when it has no hand-off time."""
    if d.handoff_time is None:
        return None
    otz = ZoneInfo(d.origin_tz) if d.origin_tz else UTC
    dtz = ZoneInfo(d.dest_tz) if d.dest_tz else UTC
    origin = calendars.origin(d.origin_country, d.origin_subdivision)
    dest = calendars.destination(d.dest_country, d.dest_subdivision)
    order_i = origin.ceil(d.order_time.astimezone(otz).date())
    ship_i = max(order_i, origin.ceil(d.handoff_time.astimezone(otz).date()))
    ship_day = origin.day(ship_i)
    delivered = d.delivered_at.astimezone(dtz).date()
    transit = max(0, dest.ceil(delivered) - dest.ceil(ship_day))
    return Observation(
        handling_days=min(ship_i - order_i, cfg.max_handling_days),
        transit_days=min(transit, cfg.max_transit_days),
        handoff_weekday=ship_day.weekday(),
        known_at=d.delivered_at,
    )


# --------------------------------------------------------------------------- prior


@dataclass(frozen=True, slots=True)
class RulesPrior:
    """The shipping option's own ranges: uniform over min..max, the root's parent."""

    handling_min: int
    handling_max: int
    transit_min: int
    transit_max: int


def _prior_hazard(prior: RulesPrior | None, cfg: HistoryConfig, part: str) -> list[float] | None:
    """The rules' min-max of a part ("h" or "t") as a hazard: the root lane's parent."""
    if prior is None:
        return None
    if part == "h":
        pmf = _uniform(prior.handling_min, prior.handling_max, cfg.max_handling_days + 1)
    else:
        pmf = _uniform(prior.transit_min, prior.transit_max, cfg.max_transit_days + 1)
    return _pmf_to_hazard(pmf)


def _uniform(lo: int, hi: int, size: int) -> list[float]:
    lo, hi = max(0, min(lo, size - 1)), max(0, min(hi, size - 1))
    lo, hi = min(lo, hi), max(lo, hi)
    p = 1.0 / (hi - lo + 1)
    return [p if lo <= i <= hi else 0.0 for i in range(size)]


# --------------------------------------------------------------------------- the window


@dataclass(frozen=True, slots=True)
class LaneUse:
    """The lane an estimate rests on: the most specific with records, and how many."""

    lane: str
    records: int
    weight: float  # recency-weighted records at estimate time


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """A delivery window learned from history at one confidence."""

    earliest: date
    latest: date
    confidence: float  # what was asked
    level: float  # the quantile level used after the online correction
    percentiles: Mapping[int, date]
    handling: LaneUse
    transit: LaneUse
    basis: str = "history"


@dataclass(frozen=True, slots=True)
class Blend:
    """A lane's blended distributions: the handling pmf (sparse) and the transit CDF."""

    handling: tuple[tuple[int, float], ...]
    transit_cdf: tuple[float, ...]
    handling_use: LaneUse
    transit_use: LaneUse
    # with `handoff_weekday`: the transit CDF of a parcel handed over on that weekday (a
    # weekday missing here takes `transit_cdf`)
    transit_by_weekday: Mapping[int, tuple[float, ...]] = field(default_factory=dict)

    def transit_for(self, weekday: int | None) -> tuple[float, ...]:
        if weekday is None or not self.transit_by_weekday:
            return self.transit_cdf
        return self.transit_by_weekday.get(weekday, self.transit_cdf)


def _sparse(pmf: Sequence[float]) -> tuple[tuple[int, float], ...]:
    total = sum(pmf)
    if total <= 0:
        return ((0, 1.0),)
    return tuple((i, p / total) for i, p in enumerate(pmf) if p > 1e-9)


def _cdf(pmf: Sequence[float]) -> tuple[float, ...]:
    total = sum(pmf) or 1.0
    out, acc = [], 0.0
    for p in pmf:
        acc += p
        out.append(min(1.0, acc / total))
    out[-1] = 1.0
    return tuple(out)


ShipDay = tuple[int, float] | tuple[int, float, int]
"""(delivery-day index of the ship day, probability[, ship weekday when transit depends on it])"""


_Row = tuple[int, float, tuple[float, ...]]


def _rows(blend: Blend, ship: Sequence[ShipDay]) -> list[_Row]:
    """Each ship day with the transit CDF that applies from it."""
    return [
        (s[0], s[1], blend.transit_for(s[2] if len(s) > 2 else None))  # type: ignore[misc]
        for s in ship
    ]


def _search(rows: Sequence[_Row], level: float) -> int:
    """Smallest delivery-day index j with P(delivered by day j) >= level."""
    lo = rows[0][0]
    hi = max(j + len(cdf) - 1 for j, _, cdf in rows)
    target = level - 1e-12
    while lo < hi:
        mid = (lo + hi) // 2
        total = 0.0
        for j, p, cdf in rows:
            k = mid - j
            if k >= 0:
                total += p * (cdf[k] if k < len(cdf) else 1.0)
        if total >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def ship_days(blend: Blend, order_date: date, origin: DayIndex, dest: DayIndex) -> list[ShipDay]:
    """Handling outcomes as (destination delivery-day index of the ship day, probability),
    with the ship weekday as a third item when the blend's transit depends on it."""
    base = origin.ceil(order_date)
    if blend.transit_by_weekday:
        by_day: dict[tuple[int, int], float] = {}
        for h, p in blend.handling:
            day = origin.day(base + h)
            at = (dest.ceil(day), day.weekday())
            by_day[at] = by_day.get(at, 0.0) + p
        return [(j, p, wd) for (j, wd), p in sorted(by_day.items())]
    merged: dict[int, float] = {}
    for h, p in blend.handling:
        j = dest.ceil(origin.day(base + h))
        merged[j] = merged.get(j, 0.0) + p
    return sorted(merged.items())


def window_from(
    blend: Blend,
    ship: Sequence[ShipDay],
    dest: DayIndex,
    confidence: float,
    level: float,
    earliest_level: float,
    percentiles: Iterable[int] = PERCENTILES,
) -> HistoryWindow:
    """The window at `level` (the corrected `confidence`) and the percentiles of the date."""
    rows = _rows(blend, ship)
    latest = dest.day(_search(rows, level))
    earliest = dest.day(_search(rows, min(earliest_level, level)))
    pct = {q: dest.day(_search(rows, q / 100)) for q in percentiles}
    return HistoryWindow(
        earliest=earliest,
        latest=latest,
        confidence=confidence,
        level=level,
        percentiles=MappingProxyType(pct),
        handling=blend.handling_use,
        transit=blend.transit_use,
    )


def _order_window(
    blend: Blend | None,
    query: LaneQuery,
    order_date: date,
    calendars: Calendars,
    config: HistoryConfig,
    confidence: float,
    level: float | None = None,
    percentiles: Iterable[int] = PERCENTILES,
) -> HistoryWindow | None:
    """The window for an order placed on `order_date` (origin local) from `blend`, on the
    query's origin and destination calendars; None without a blend. `level` defaults to
    `confidence`. One function for `LaneHistory` and `HistoryModel`, so both answer alike."""
    if blend is None:
        return None
    origin = calendars.origin(query.origin_country, query.origin_subdivision)
    dest = calendars.destination(query.dest_country, query.dest_subdivision)
    ship = ship_days(blend, order_date, origin, dest)
    lvl = confidence if level is None else level
    return window_from(blend, ship, dest, confidence, lvl, config.earliest_level, percentiles)


# --------------------------------------------------------------------------- learning


@dataclass(frozen=True, slots=True)
class InFlight:
    """A parcel ordered (and maybe handed over) but not delivered yet: a censored record.

    Knowing that it has NOT arrived after so many days is evidence too; ignoring it would
    learn only from the parcels that arrived fast (survivorship), worst when speed drifts.
    """

    key: str
    query: LaneQuery
    order_time: datetime
    handoff_time: datetime | None = None
    origin_tz: str | None = None
    dest_tz: str | None = None

    @classmethod
    def of(cls, d: Delivery, handed_off: bool) -> InFlight:
        return cls(
            key=d.key,
            query=LaneQuery.of(d),
            order_time=d.order_time,
            handoff_time=d.handoff_time if handed_off else None,
            origin_tz=d.origin_tz,
            dest_tz=d.dest_tz,
        )


@dataclass(slots=True)
class _Open:
    index: DayIndex
    zone: ZoneInfo
    start: int  # open-day index the clock started on
    weight: float


@dataclass(slots=True)
class _Lane:
    events: list[float]  # recency-scaled weight of parcels done after k days, per k
    total: float = 0.0
    records: int = 0
    parent: LaneKey | None = None
    open: dict[str, _Open] = field(default_factory=dict)


@dataclass(slots=True)
class _Exposure:
    """One recent parcel's clock for one part: started, and done or still running."""

    chain: list[LaneKey]
    index: DayIndex
    zone: ZoneInfo
    start: int  # open-day index the clock started on
    started: datetime  # the instant it started (order, or hand-off)
    ended: datetime | None = None  # the instant the part was done (hand-off, or delivery)
    days: int = 0  # days it took, when done


@dataclass(frozen=True, slots=True)
class Drift:
    """How much faster (> 1) or slower (< 1) the recent cohorts are than the lanes say.

    A factor `theta` multiplies the hazard of every lane of its part (proportional hazards:
    the survival S becomes S**theta). Estimated as observed over expected done events among
    the parcels whose clock started in the last `drift_window_days`, delivered or still in
    flight (a parcel waiting for 10 days is evidence of "slower than 10 days" already).
    """

    handling: float = 1.0
    transit: float = 1.0
    observed: tuple[float, float] = (0.0, 0.0)  # done events (handling, transit)
    expected: tuple[float, float] = (0.0, 0.0)  # what the lanes expected of them


NO_DRIFT = Drift()


def _powered(hazard: Sequence[float], theta: float) -> list[float]:
    """The hazard whose survival is the original's to the power `theta`."""
    if theta == 1.0:
        return list(hazard)
    out = [1.0 - (1.0 - min(1.0, max(0.0, h))) ** theta for h in hazard]
    out[-1] = 1.0
    return out


def _cumulative_hazard(hazard: Sequence[float]) -> list[float]:
    """Expected done events of one parcel at risk on days 0..k (Nelson-Aalen style)."""
    out, acc = [], 0.0
    for h in hazard:
        acc += h
        out.append(acc)
    return out


def _days(at: datetime) -> float:
    return at.timestamp() / 86400.0


def _zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name) if name else ZoneInfo("UTC")


class LaneHistory:
    """Lane statistics, updated one event at a time (the mutable builder).

    Each part is a discrete-time HAZARD per lane: of the parcels still waiting after k days,
    the share done on day k. Delivered parcels are events; parcels in flight are censored
    (known to wait longer than their elapsed days). A lane's hazard on day k is blended with
    its parent's in proportion to its evidence on that day (its weight at risk, n):

        h(k) = (done(k) + prior_strength * h_parent(k)) / (n(k) + prior_strength)

    which is a Beta prior centred on the parent's hazard. Early days of a busy lane speak for
    themselves; its rare long tail borrows from the parent; a lane seen only in flight
    borrows everything. Recency: a parcel's weight halves every `half_life_days` of ORDER
    time (done and in-flight parcels alike). Weights grow as 2**(t / half_life) instead of
    decaying, so an update touches only the parcel's own lanes; the common decay is applied
    at read time and the scale rebased when it gets large.
    """

    def __init__(
        self,
        config: HistoryConfig,
        calendars: Calendars,
        prior: RulesPrior | None = None,
    ) -> None:
        self.config = config
        self.calendars = calendars
        self.prior = prior
        self._lanes: dict[LaneKey, _Lane] = {}
        self._chains: set[tuple[LaneKey, ...]] = set()  # every chain a parcel went through
        self._origin_days: float | None = None  # the time origin of the weight scale
        self._handled: set[str] = set()  # parcels whose handling time is counted
        self._open_h: dict[str, list[LaneKey]] = {}
        self._open_t: dict[str, list[LaneKey]] = {}
        # recent clocks for the drift signal, per part: parcel key -> exposure
        self._exposures: dict[str, dict[str, _Exposure]] = {"handling": {}, "transit": {}}
        self._newest_start: datetime | None = None
        self._drift_cache: tuple[date, Drift] | None = None
        self.records = 0
        self.skipped = 0

    def __len__(self) -> int:
        return self.records

    # weights ------------------------------------------------------------
    def _scale(self, at_days: float) -> float:
        hl = self.config.half_life_days
        if hl is None:
            return 1.0
        if self._origin_days is None:
            self._origin_days = at_days - 1.0
        exponent = (at_days - self._origin_days) / hl
        if exponent > 600:  # rebase: divide every weight by 2**exponent
            factor = 2.0**-exponent
            for lane in self._lanes.values():
                lane.total *= factor
                lane.events = [c * factor for c in lane.events]
                for o in lane.open.values():
                    o.weight *= factor
            self._origin_days = at_days
            exponent = 0.0
        return 2.0**exponent

    def _decay(self, now: datetime) -> float:
        """Factor turning stored weights into weights as seen at `now`."""
        hl = self.config.half_life_days
        if hl is None or self._origin_days is None:
            return 1.0
        return 2.0 ** (-(_days(now) - self._origin_days) / hl)

    # learning -----------------------------------------------------------
    def add(self, delivery: Delivery) -> bool:
        """Learn one delivered parcel; False when it cannot be used (no hand-off time)."""
        obs = observe(delivery, self.calendars, self.config)
        key = delivery.key
        if obs is None:
            self._close(key, self._open_h)
            self._close(key, self._open_t)
            self.skipped += 1
            return False
        q = LaneQuery.of(delivery)
        w = self._scale(_days(delivery.order_time))
        cfg = self.config
        h_chain = handling_chain(q, cfg)
        t_chain = transit_chain(q, cfg, obs.handoff_weekday)
        if key not in self._handled:
            self._close(key, self._open_h)
            self._count(h_chain, obs.handling_days, w, cfg.max_handling_days)
        self._handled.discard(key)
        self._close(key, self._open_t)
        self._count(t_chain, obs.transit_days, w, cfg.max_transit_days)
        if cfg.drift_on:
            self._track_delivered(delivery, obs, h_chain, t_chain)
        self.records += 1
        return True

    def _track_delivered(
        self, d: Delivery, obs: Observation, h_chain: list[LaneKey], t_chain: list[LaneKey]
    ) -> None:
        assert d.handoff_time is not None
        otz, dtz = _zone(d.origin_tz), _zone(d.dest_tz)
        origin = self.calendars.origin(d.origin_country, d.origin_subdivision)
        dest = self.calendars.destination(d.dest_country, d.dest_subdivision)
        order_i = origin.ceil(d.order_time.astimezone(otz).date())
        ship_i = max(order_i, origin.ceil(d.handoff_time.astimezone(otz).date()))
        self._track(
            "handling",
            d.key,
            _Exposure(
                h_chain, origin, otz, order_i, d.order_time, d.handoff_time, obs.handling_days
            ),
        )
        start = dest.ceil(origin.day(ship_i))
        self._track(
            "transit",
            d.key,
            _Exposure(t_chain, dest, dtz, start, d.handoff_time, d.delivered_at, obs.transit_days),
        )

    def _track(self, part: str, key: str, clock: _Exposure) -> None:
        """Keep a recent clock for the drift signal (old ones are of no use to it)."""
        cfg = self.config
        if part not in cfg.drift_parts or cfg.drift_window_days is None:
            return
        newest = self._newest_start
        if newest is None or clock.started > newest:
            self._newest_start = newest = clock.started
        if clock.started < newest - timedelta(days=cfg.drift_window_days):
            self._exposures[part].pop(key, None)
            return
        self._exposures[part][key] = clock

    def add_in_flight(self, parcel: InFlight) -> None:
        """A parcel ordered and not delivered yet; call again when it is handed over."""
        cfg = self.config
        q = parcel.query
        key = parcel.key
        w = self._scale(_days(parcel.order_time))
        origin = self.calendars.origin(q.origin_country, q.origin_subdivision)
        otz = _zone(parcel.origin_tz)
        order_i = origin.ceil(parcel.order_time.astimezone(otz).date())
        if parcel.handoff_time is None:
            chain = handling_chain(q, cfg)
            self._close(key, self._open_h)
            self._open(key, chain, _Open(origin, otz, order_i, w), cfg.max_handling_days)
            self._open_h[key] = chain
            self._track("handling", key, _Exposure(chain, origin, otz, order_i, parcel.order_time))
            return
        ship_i = max(order_i, origin.ceil(parcel.handoff_time.astimezone(otz).date()))
        handling = min(ship_i - order_i, cfg.max_handling_days)
        h_chain = handling_chain(q, cfg)
        if key not in self._handled:
            self._close(key, self._open_h)
            self._count(h_chain, handling, w, cfg.max_handling_days)
            self._handled.add(key)
        self._track(
            "handling",
            key,
            _Exposure(
                h_chain, origin, otz, order_i, parcel.order_time, parcel.handoff_time, handling
            ),
        )
        ship_day = origin.day(ship_i)
        dest = self.calendars.destination(q.dest_country, q.dest_subdivision)
        chain = transit_chain(q, cfg, ship_day.weekday())
        self._close(key, self._open_t)
        start = dest.ceil(ship_day)
        dtz = _zone(parcel.dest_tz)
        self._open(key, chain, _Open(dest, dtz, start, w), cfg.max_transit_days)
        self._open_t[key] = chain
        self._track("transit", key, _Exposure(chain, dest, dtz, start, parcel.handoff_time))

    def _lane(self, chain: list[LaneKey], i: int, max_days: int) -> _Lane:
        key = chain[i]
        lane = self._lanes.get(key)
        if lane is None:
            parent = chain[i + 1] if i + 1 < len(chain) else None
            lane = _Lane([0.0] * (max_days + 1), parent=parent)
            self._lanes[key] = lane
        return lane

    def _count(self, chain: list[LaneKey], days: int, w: float, max_days: int) -> None:
        self._chains.add(tuple(chain))
        for i in range(len(chain)):
            lane = self._lane(chain, i, max_days)
            lane.events[days] += w
            lane.total += w
            lane.records += 1

    def _open(self, key: str, chain: list[LaneKey], item: _Open, max_days: int) -> None:
        self._chains.add(tuple(chain))
        for i in range(len(chain)):
            self._lane(chain, i, max_days).open[key] = item

    def _close(self, key: str, book: dict[str, list[LaneKey]]) -> None:
        chain = book.pop(key, None)
        if chain is not None:
            for lane_key in chain:
                self._lanes[lane_key].open.pop(key, None)

    @property
    def in_flight(self) -> int:
        """Parcels ordered and not delivered yet."""
        return len(self._open_h) + len(self._open_t)

    # reading ------------------------------------------------------------
    def _counts(self, lane: _Lane, now: datetime, decay: float) -> LaneCounts:
        """A lane's own evidence at `now`: done and at-risk weight per day, as seen then."""
        size = len(lane.events)
        censored = [0.0] * size
        today: dict[ZoneInfo, date] = {}
        for item in lane.open.values():
            day = today.get(item.zone)
            if day is None:
                day = today[item.zone] = now.astimezone(item.zone).date()
            waited = item.index.ceil(day) - item.start - 1  # days known to have passed
            if waited >= 0:
                censored[min(waited, size - 1)] += item.weight
        done = [0.0] * size
        at_risk = [0.0] * size
        acc = 0.0
        for day in range(size - 1, -1, -1):
            acc += lane.events[day] + censored[day]
            done[day] = lane.events[day] * decay
            at_risk[day] = acc * decay
        use = LaneUse("", lane.records, lane.total * decay) if lane.records else None
        return LaneCounts(tuple(done), tuple(at_risk), use)

    def _counts_at(self, now: datetime) -> Callable[[LaneKey], LaneCounts | None]:
        """Lane evidence at `now`, computed once per lane on demand."""
        decay = self._decay(now)
        seen: dict[LaneKey, LaneCounts] = {}

        def counts_of(key: LaneKey) -> LaneCounts | None:
            found = seen.get(key)
            if found is None:
                lane = self._lanes.get(key)
                if lane is None:
                    return None
                found = seen[key] = self._counts(lane, now, decay)
            return found

        return counts_of

    def _prior_hazard(self, part: str) -> list[float] | None:
        return _prior_hazard(self.prior, self.config, part)

    def drift(self, now: datetime) -> Drift:
        """The speed of the recent cohorts against the lanes, as known at `now` (see `Drift`).

        Every parcel whose clock started (order for handling, hand-off for transit) in the
        last `drift_window_days` before `now` counts: done by `now` adds one observed event
        and the cumulative hazard its lane expected up to the day it was done; still waiting
        adds the cumulative hazard up to the days already passed. theta = (observed + a) /
        (expected + a), `a` = `drift_prior`, within `drift_bounds`: the maximum-likelihood
        hazard ratio of the recent cohorts, shrunk toward 1. Computed once per UTC day (at the
        first call that day: nothing after that instant is used) and kept for the day.
        """
        cfg = self.config
        if not cfg.drift_on or cfg.drift_window_days is None:
            return NO_DRIFT
        day = now.astimezone(UTC).date()
        if self._drift_cache is not None and self._drift_cache[0] == day:
            return self._drift_cache[1]
        cutoff = now - timedelta(days=cfg.drift_window_days)
        counts_of = self._counts_at(now)
        cache: dict[tuple[LaneKey, ...], list[float]] = {}
        cumulative: dict[tuple[LaneKey, ...], list[float]] = {}
        lo, hi = cfg.drift_bounds
        a = cfg.drift_prior
        thetas: dict[str, float] = {"handling": 1.0, "transit": 1.0}
        observed: dict[str, float] = {"handling": 0.0, "transit": 0.0}
        expected: dict[str, float] = {"handling": 0.0, "transit": 0.0}
        for part in cfg.drift_parts:
            prior = self._prior_hazard("h" if part == "handling" else "t")
            book = self._exposures[part]
            today: dict[ZoneInfo, date] = {}
            for key in [k for k, c in book.items() if c.started < cutoff]:
                del book[key]
            for clock in book.values():
                if clock.started >= now:
                    continue
                chain = clock.chain if cfg.drift_reference == "lane" else clock.chain[-1:]
                cum = cumulative.get(tuple(chain))
                if cum is None:
                    k = cfg.strength(part)
                    hazard = _chain_hazard(chain, counts_of, k, prior, cache)
                    cum = cumulative[tuple(chain)] = _cumulative_hazard(hazard)
                last = len(cum) - 1
                local = today.get(clock.zone)
                if local is None:
                    local = today[clock.zone] = now.astimezone(clock.zone).date()
                waited = clock.index.ceil(local) - clock.start - 1  # whole days passed
                if clock.ended is not None and clock.ended < now and clock.days <= waited:
                    # done on a day that has passed: at risk on every day up to that one
                    observed[part] += 1.0
                    expected[part] += cum[min(clock.days, last)]
                elif waited >= 0:  # waiting, or done only today: at risk on the days passed
                    expected[part] += cum[min(waited, last)]
            theta = (observed[part] + a) / (expected[part] + a)
            thetas[part] = min(hi, max(lo, theta))
        found = Drift(
            handling=thetas["handling"],
            transit=thetas["transit"],
            observed=(observed["handling"], observed["transit"]),
            expected=(round(expected["handling"], 3), round(expected["transit"], 3)),
        )
        self._drift_cache = (day, found)
        return found

    def blend(self, query: LaneQuery, now: datetime, weekday: int | None = None) -> Blend | None:
        """The lane's blended distributions at `now`; None when nothing is known at all."""
        if not self._lanes and self.prior is None:
            return None
        cfg = self.config
        counts_of = self._counts_at(now)
        drift = self.drift(now)
        h_chain = handling_chain(query, cfg)
        t_chain = transit_chain(query, cfg, weekday)
        kt, t_prior = cfg.strength("t"), self._prior_hazard("t")
        cache: dict[tuple[LaneKey, ...], list[float]] = {}
        h = _chain_hazard(h_chain, counts_of, cfg.strength("h"), self._prior_hazard("h"))
        t = _chain_hazard(t_chain, counts_of, kt, t_prior, cache)
        by_weekday: dict[int, tuple[float, ...]] = {}
        if cfg.handoff_weekday and weekday is None:  # at order time: one per ship weekday
            for wd in range(7):
                chain = transit_chain(query, cfg, wd)
                if chain[0] in self._lanes:
                    hazard = _chain_hazard(chain, counts_of, kt, t_prior, cache)
                    by_weekday[wd] = _cdf(_hazard_to_pmf(_powered(hazard, drift.transit)))
        return Blend(
            _sparse(_hazard_to_pmf(_powered(h, drift.handling))),
            _cdf(_hazard_to_pmf(_powered(t, drift.transit))),
            _chain_use(h_chain, counts_of),
            _chain_use(t_chain, counts_of),
            MappingProxyType(by_weekday),
        )

    def window(
        self,
        query: LaneQuery,
        order_date: date,
        now: datetime,
        confidence: float,
        level: float | None = None,
        percentiles: Iterable[int] = PERCENTILES,
    ) -> HistoryWindow | None:
        """The window for an order placed on `order_date` (origin local) as known at `now`."""
        return _order_window(
            self.blend(query, now),
            query,
            order_date,
            self.calendars,
            self.config,
            confidence,
            level,
            percentiles,
        )

    def freeze(self, now: datetime) -> HistoryModel:
        """An immutable snapshot as seen at `now`: every lane's own evidence, and every chain
        of lanes a record went through pre-blended (a lane can have several parents, e.g. a
        postal-prefix lane spans distance bands, so a blend is keyed by its whole chain)."""
        cfg = self.config
        counts_of = self._counts_at(now)
        drift = self.drift(now)
        kh, kt = cfg.strength("h"), cfg.strength("t")
        cache: dict[tuple[LaneKey, ...], list[float]] = {}
        priors = {"h": self._prior_hazard("h"), "t": self._prior_hazard("t")}
        handling: dict[tuple[LaneKey, ...], tuple[tuple[tuple[int, float], ...], LaneUse]] = {}
        transit: dict[tuple[LaneKey, ...], tuple[tuple[float, ...], LaneUse]] = {}
        for chain in self._chains:
            for i in range(len(chain)):
                suffix = chain[i:]
                if _is_handling(suffix[0]):
                    if suffix not in handling:
                        h = _chain_hazard(list(suffix), counts_of, kh, priors["h"], cache)
                        pmf = _hazard_to_pmf(_powered(h, drift.handling))
                        handling[suffix] = (_sparse(pmf), _chain_use(suffix, counts_of))
                elif suffix not in transit:
                    t = _chain_hazard(list(suffix), counts_of, kt, priors["t"], cache)
                    pmf = _hazard_to_pmf(_powered(t, drift.transit))
                    transit[suffix] = (_cdf(pmf), _chain_use(suffix, counts_of))
        lanes = {key: c for key in self._lanes if (c := counts_of(key)) is not None}
        return HistoryModel(
            config=cfg,
            calendars=self.calendars,
            prior=self.prior,
            built_at=now,
            records=self.records,
            handling=MappingProxyType(handling),
            transit=MappingProxyType(transit),
            drift=drift,
            lanes=MappingProxyType(lanes),
        )


@dataclass(frozen=True, slots=True)
class LaneCounts:
    """A lane's own evidence at one instant: recency-weighted done and at-risk per day."""

    done: tuple[float, ...]
    at_risk: tuple[float, ...]  # delivered or in flight, still waiting at the start of the day
    use: LaneUse | None  # records and weight (lane name left empty); None: no delivered record


def _lane_hazard(counts: LaneCounts, k: float, parent: Sequence[float] | None) -> list[float]:
    """The lane's hazard blended with its parent's: a Beta prior of `k` pseudo-records."""
    done, at_risk = counts.done, counts.at_risk
    size = len(done)
    if parent is None:
        out = [done[d] / at_risk[d] if at_risk[d] > 0 else 1.0 for d in range(size)]
    else:
        out = [(done[d] + k * parent[d]) / (at_risk[d] + k) for d in range(size)]
    out[-1] = 1.0
    return out


def _chain_hazard(
    chain: Sequence[LaneKey],
    counts_of: Callable[[LaneKey], LaneCounts | None],
    k: float,
    prior: list[float] | None,
    cache: dict[tuple[LaneKey, ...], list[float]] | None = None,
) -> list[float]:
    """The hazard of the chain's most specific lane, blended down from the root (the rules'
    prior under it). Lanes never seen are skipped; `cache` shares blends by chain suffix."""
    hazard = prior
    for i in range(len(chain) - 1, -1, -1):
        counts = counts_of(chain[i])
        if counts is None:
            continue
        suffix = tuple(chain[i:])
        found = cache.get(suffix) if cache is not None else None
        if found is None:
            found = _lane_hazard(counts, k, hazard)
            if cache is not None:
                cache[suffix] = found
        hazard = found
    return hazard if hazard is not None else [1.0]


def _chain_use(
    chain: Sequence[LaneKey], counts_of: Callable[[LaneKey], LaneCounts | None]
) -> LaneUse:
    """The most specific lane of the chain with delivered records (what the estimate says)."""
    for key in chain:
        counts = counts_of(key)
        if counts is not None and counts.use is not None:
            return LaneUse(describe_lane(key), counts.use.records, counts.use.weight)
    return LaneUse("rules", 0, 0.0)


def _is_handling(key: LaneKey) -> bool:
    kind = key[0] or ""
    return kind == "handling" or kind.startswith("h:")


def _hazard_to_pmf(hazard: Sequence[float]) -> list[float]:
    out = []
    alive = 1.0
    for h in hazard:
        out.append(alive * h)
        alive *= 1.0 - h
    out[-1] += alive
    return out


def _pmf_to_hazard(pmf: Sequence[float]) -> list[float]:
    out = []
    alive = 1.0
    for p in pmf:
        out.append(min(1.0, p / alive) if alive > 1e-12 else 1.0)
        alive -= p
    out[-1] = 1.0
    return out


@dataclass(frozen=True)
class HistoryModel:
    """Immutable lane statistics built off the request path; lookups are dict lookups."""

    config: HistoryConfig
    calendars: Calendars
    prior: RulesPrior | None
    built_at: datetime
    records: int
    # pre-blended distributions keyed by a whole chain of known lanes, most specific first
    handling: Mapping[tuple[LaneKey, ...], tuple[tuple[tuple[int, float], ...], LaneUse]]
    transit: Mapping[tuple[LaneKey, ...], tuple[tuple[float, ...], LaneUse]]
    drift: Drift = NO_DRIFT  # already applied to every lane above
    # every lane's own evidence, to blend a chain no record went through (rare: e.g. a known
    # postal-prefix lane with a distance band it never had); such blends are kept
    lanes: Mapping[LaneKey, LaneCounts] = field(default_factory=dict)
    _extra: dict[tuple[str, tuple[LaneKey, ...]], tuple[object, LaneUse]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def blend(self, query: LaneQuery, weekday: int | None = None) -> Blend | None:
        """The query's own chain of known lanes, blended exactly as `LaneHistory.blend` would
        at `built_at`; None when the model knows no lane at all."""
        if not self.lanes:
            return None
        cfg = self.config
        h_chain = tuple(k for k in handling_chain(query, cfg) if k in self.lanes)
        t_chain = tuple(k for k in transit_chain(query, cfg, weekday) if k in self.lanes)
        h = self.handling.get(h_chain) or self._blend_unseen("h", h_chain)
        t = self.transit.get(t_chain) or self._blend_unseen("t", t_chain)
        by_weekday: dict[int, tuple[float, ...]] = {}
        if cfg.handoff_weekday and weekday is None:  # at order time: one per ship weekday
            for wd in range(7):
                full = transit_chain(query, cfg, wd)
                if full[0] in self.lanes:
                    chain = tuple(k for k in full if k in self.lanes)
                    found = self.transit.get(chain) or self._blend_unseen("t", chain)
                    by_weekday[wd] = found[0]  # type: ignore[assignment]
        return Blend(h[0], t[0], h[1], t[1], MappingProxyType(by_weekday))  # type: ignore[arg-type]

    def _blend_unseen(self, part: str, chain: tuple[LaneKey, ...]) -> tuple[object, LaneUse]:
        found = self._extra.get((part, chain))
        if found is not None:
            return found
        cfg = self.config
        prior = _prior_hazard(self.prior, cfg, part)
        hazard = _chain_hazard(chain, self.lanes.get, cfg.strength(part), prior)
        use = _chain_use(chain, self.lanes.get)
        if part == "h":
            found = (_sparse(_hazard_to_pmf(_powered(hazard, self.drift.handling))), use)
        else:
            found = (_cdf(_hazard_to_pmf(_powered(hazard, self.drift.transit))), use)
        self._extra[(part, chain)] = found
        return found

    def window(
        self,
        query: LaneQuery,
        order_date: date,
        confidence: float,
        level: float | None = None,
        percentiles: Iterable[int] = PERCENTILES,
    ) -> HistoryWindow | None:
        """The window for an order placed on `order_date` (origin local date)."""
        return _order_window(
            self.blend(query),
            query,
            order_date,
            self.calendars,
            self.config,
            confidence,
            level,
            percentiles,
        )


# --------------------------------------------------------------------------- calibration


@dataclass(slots=True)
class LevelCorrector:
    """Adaptive conformal inference on the quantile level, bounded.

    After each known outcome: level += step * (missed - (1 - target)). Over many promises the
    on-time share converges to `target`; `bound` caps how far the level may move from the
    target, so a slow reaction cannot swing promises to absurd lengths.
    """

    target: float
    step: float = 0.002
    bound: float = 0.03
    floor: float = 0.5
    ceiling: float = 0.995
    shift: float = 0.0
    outcomes: int = 0
    on_time: int = 0

    @property
    def level(self) -> float:
        return min(self.ceiling, max(self.floor, self.target + self.shift))

    def record(self, on_time: bool) -> None:
        self.outcomes += 1
        self.on_time += on_time
        missed = 0.0 if on_time else 1.0
        self.shift += self.step * (missed - (1.0 - self.target))
        self.shift = max(-self.bound, min(self.bound, self.shift))
