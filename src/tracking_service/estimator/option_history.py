"""Delivery history per shipping option: which records teach which option, frozen for serving.

Pure (no I/O): rules and delivery records in, an immutable `OptionHistories` snapshot out. The
service builds one off the request path (`history_runtime`) and the estimator only reads it.

* Which records: an option learns from the records whose carrier and service match its
  `history` label (see `rules`); the Olist file has neither and feeds the one option that sets
  `learn_from_unlabelled`. Matching records are relabelled with the option's carrier/service,
  so labelled and unlabelled parcels share one tree of lanes.
* One model per (option, zone): a record goes to the zone of the rules its destination falls
  in (the option's most specific served zone), and the zone's own min-max of the rules is the
  prior under the model's root lane. A zone with few records so speaks with the rules' voice,
  one with many with its own; records to destinations the option does not serve are not used.
* Calendars are the rules' own: the warehouse's business days where a record's origin is a
  rules origin (national and state holidays Mon-Fri elsewhere), the option's delivery days at
  the destination.
* Parcels in flight (`ParcelInFlight`: ordered, maybe handed over, not delivered) are
  censored evidence, as in the backtest's replay: knowing a parcel has not arrived after so
  many days is part of what the backtest's model knows at an order instant. They go to the
  option and zone their delivery record will go to (same labels, same destination), and only
  where delivered records made a model.
* When. On delivered records alone the model is frozen as of the newest delivery in the data
  (not the wall clock), so recency weights are relative to the history's own end: an old file
  imported for a demo still speaks. With parcels in flight the data is live (what is known not
  to have arrived is known as of `now`) and the model is frozen at `now`. Either way it learns
  through the backtest's replay's own feed (`history.feed.ModelFeed`: time order, order before
  hand-off before delivery; the drift of a UTC day measured at its start), so a window is
  exactly the one the replay states at that instant with the same information
  (tests/estimator/test_one_model.py).
* The level correction (`LevelCorrector`), when the backtest's default `CorrectionConfig`
  enables it, is warmed by replaying the promises of the orders of the last `WARMUP_DAYS` of
  the option's records with the backtest's own replay; its shift at the option's configured
  level applies to any level asked. Outcomes of the service's own promises will feed it with
  the tracking issue.
* Recalibration: with the outcomes of the service's own recent promises (`promises`, each
  with the distribution stored when it was made, see `promise_distribution`), each option's
  level is recalibrated at `now` (`history.recalibration`); `level()` reads it for every
  asked confidence, before the (default off) correction's shift.
* `window(...)` results are cached (LRU) by what they depend on: the lane keys of the query,
  the origin and destination calendars, the order date and the corrected level. A repeated
  estimate is a few dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

from tracking_service.estimator.backtest import BacktestConfig, CorrectionConfig, replay
from tracking_service.estimator.calendar import (
    MON_FRI,
    BusinessCalendar,
    HolidaySource,
    delivery_calendar,
    origin_calendar,
)
from tracking_service.estimator.history import (
    IDENTITY,
    Calendars,
    HistoryConfig,
    HistoryModel,
    HistoryWindow,
    InFlight,
    LaneHistory,
    LaneQuery,
    LevelCorrector,
    PromiseOutcome,
    Recalibration,
    RecalibrationConfig,
    RulesPrior,
    handling_chain,
    order_delivery_cdf,
    recalibrate,
    transit_chain,
)
from tracking_service.estimator.history.feed import ModelFeed, day_start
from tracking_service.estimator.lru import Lru
from tracking_service.estimator.postal import subdivisions_of
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.reestimate import reestimate
from tracking_service.estimator.rules import Rules, ShippingOption
from tracking_service.estimator.zones import ZoneIndex, served_zone

T = TypeVar("T")
WARMUP_DAYS = 120  # recent promises replayed to warm the level correction
CACHE_SIZE = 65536  # cached windows per snapshot
CALENDAR_YEARS_AHEAD = 2  # day indexes are built this far past the newest of (now, data)


def learns_from(option: ShippingOption, delivery: Delivery) -> bool:
    """Does this record teach this option? (label match, or unlabelled when allowed)."""
    return _labelled_for(option, delivery.carrier, delivery.service)


def option_calendars(rules: Rules, option: ShippingOption, first: date, last: date) -> Calendars:
    """Origin business days (the rules' warehouses where they are) and the option's delivery
    days at each destination, as day indexes for the history model."""
    warehouses: dict[tuple[str, str | None], BusinessCalendar] = {}
    for origin in rules.origins:
        warehouses.setdefault((origin.country, origin.subdivision), origin_calendar(origin))

    def origin_days(country: str, subdivision: str | None) -> Callable[[date], bool]:
        cal = warehouses.get((country, subdivision))
        if cal is None:
            name = f"{country}-{subdivision}" if subdivision else country
            cal = BusinessCalendar(name, MON_FRI, (HolidaySource(country, subdivision),))
        return cal.is_open

    def delivery_days(country: str, subdivision: str | None) -> Callable[[date], bool]:
        return delivery_calendar(option, country, subdivision).is_open

    return Calendars(origin_days, delivery_days, first, last)


@dataclass(frozen=True, slots=True)
class ParcelInFlight:
    """A parcel ordered (and maybe handed over) and not delivered yet, as a model input.

    `parcel` is what the lane model learns (`LaneHistory.add_in_flight`); `carrier` and
    `service` are the labels its delivery record will carry, so it teaches the option that
    record will teach. `of(record, handed_off)` is a record as it was before its delivery: the
    backtest's view of it, and what the service's own tables give for a parcel on its way.
    """

    parcel: InFlight
    carrier: str | None = None
    service: str | None = None

    @classmethod
    def of(cls, d: Delivery, handed_off: bool) -> ParcelInFlight:
        return cls(InFlight.of(d, handed_off), d.carrier, d.service)

    @property
    def key(self) -> str:
        return self.parcel.key


@dataclass(frozen=True, slots=True)
class ZoneModel:
    """The frozen model of one option in one zone of the rules."""

    option: str
    zone: str
    model: HistoryModel


@dataclass(frozen=True, slots=True)
class OptionSummary:
    """What an option learned: records used, zones with a model, the correction's shift."""

    option: str
    records: int
    zones: tuple[str, ...]
    level_shift: float
    warmup_promises: int
    in_flight: int = 0  # parcels in flight learned (censored evidence)
    # the level recalibrated from the option's recent promises at `built_at` (IDENTITY: none)
    recalibration: Recalibration = IDENTITY


_NONE = object()  # a cached "no window"


@dataclass(frozen=True, eq=False)
class OptionHistories:
    """Immutable: the frozen lane models of every option that has history, and a window cache.

    `first_day..last_day` is the span of order dates the history answers for (its calendars
    are indexed over it at build time); outside it the estimate stays on the rules.
    """

    as_of: datetime | None  # newest delivery in the data: the models' "now"
    built_at: datetime
    records: int  # records loaded (all sources), whether an option used them or not
    models: Mapping[tuple[str, str], ZoneModel]
    options: Mapping[str, OptionSummary]
    first_day: date
    last_day: date
    config: HistoryConfig = field(default_factory=HistoryConfig)
    in_flight: int = 0  # parcels in flight given (all options), whether used or not
    _cache: Lru[Hashable, object] = field(default_factory=lambda: Lru(CACHE_SIZE), repr=False)

    def level(self, option: str, confidence: float) -> float:
        """The quantile level used for `confidence`: recalibrated from the option's recent
        promises, then the warmed correction's shift (off by default)."""
        summary = self.options.get(option)
        if summary is None:
            return LevelCorrector(target=confidence).level
        target = summary.recalibration.level(confidence)
        return LevelCorrector(target=target, shift=summary.level_shift).level

    def promise_distribution(
        self, option: str, zone: str, query: LaneQuery, order_date: date
    ) -> tuple[date, tuple[float, ...]] | None:
        """The predictive distribution of the delivery date of an order placed on
        `order_date` (origin local): (first destination-local date, cumulative probability
        by each day from it), as a promise stores it when made (`PromiseOutcome`). It is the
        model's own distribution, before recalibration (which only picks the level read from
        it). None where `window(...)` has no history."""
        zm = self.models.get((option, zone))
        if zm is None or not self.first_day <= order_date <= self.last_day:
            return None
        key = ("cdf", option, zone, query, order_date)
        found = self._cache.get(key)
        if found is None:
            model = zm.model
            found = order_delivery_cdf(model.blend(query), query, order_date, model.calendars)
            self._cache.put(key, _NONE if found is None else found)
        return None if found is _NONE else found  # type: ignore[return-value]

    def window(
        self, option: str, zone: str, query: LaneQuery, order_date: date, confidence: float
    ) -> HistoryWindow | None:
        """The option's window in `zone` for an order on `order_date` (origin local date)."""
        found = self.lookup(option, zone, query, order_date, confidence)
        return None if found is None else found[1]

    def lookup(
        self, option: str, zone: str, query: LaneQuery, order_date: date, confidence: float
    ) -> tuple[Hashable, HistoryWindow] | None:
        """`window(...)` with the key it is cached under (it names the window exactly).

        Two keys: the query as asked (a repeat is one lookup) and the lane keys it resolves to
        (destinations sharing every lane share the window)."""
        zm = self.models.get((option, zone))
        if zm is None or not self.first_day <= order_date <= self.last_day:
            return None
        asked = ("asked", option, zone, query, order_date, confidence)
        seen = self._cache.get(asked)
        if seen is not None:
            return None if seen is _NONE else seen  # type: ignore[return-value]
        found = self._lookup(zm, option, zone, query, order_date, confidence)
        self._cache.put(asked, _NONE if found is None else found)
        return found

    def _lookup(
        self,
        zm: ZoneModel,
        option: str,
        zone: str,
        query: LaneQuery,
        order_date: date,
        confidence: float,
    ) -> tuple[Hashable, HistoryWindow] | None:
        level = self.level(option, confidence)
        cfg = zm.model.config
        key = (
            option,
            zone,
            tuple(handling_chain(query, cfg)),
            tuple(transit_chain(query, cfg)),
            query.origin_country,
            query.origin_subdivision,
            query.dest_country,
            query.dest_subdivision,
            order_date,
            confidence,
            level,
        )
        found = self._cache.get(key)
        if found is None:
            found = zm.model.window(query, order_date, confidence, level=level) or _NONE
            self._cache.put(key, found)
        return None if found is _NONE else (key, found)  # type: ignore[return-value]

    def reestimate(
        self,
        option: str,
        zone: str,
        query: LaneQuery,
        *,
        handoff: datetime,
        confidence: float,
        last_scan: datetime | None = None,
        origin_tz: str | None = None,
        dest_tz: str | None = None,
    ) -> HistoryWindow | None:
        """The option's window in `zone` for a parcel handed to the carrier at `handoff`, or
        still in transit at its `last_scan` (see `estimator.reestimate`), at `confidence`
        after the option's correction. None when the option has no model there, or the
        history gives the parcel no chance left of still being on its way."""
        zm = self.models.get((option, zone))
        if zm is None:
            return None
        blend = zm.model.blend(query)
        if blend is None:
            return None
        return reestimate(
            blend,
            query,
            zm.model.calendars,
            handoff=handoff,
            confidence=confidence,
            level=self.level(option, confidence),
            last_scan=last_scan,
            origin_tz=origin_tz,
            dest_tz=dest_tz,
            earliest_level=zm.model.config.earliest_level,
        )

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """A value derived from this snapshot's windows, cached with them (e.g. the estimate
        assembled around a window)."""
        found = self._cache.get(("memo", key))
        if found is None:
            found = make()
            self._cache.put(("memo", key), found)
        return found  # type: ignore[return-value]

    @property
    def cache_hits(self) -> tuple[int, int]:
        """(hits, misses) of the window cache."""
        return self._cache.hits, self._cache.misses


def empty_histories(now: datetime) -> OptionHistories:
    """A snapshot with no history at all (every estimate on the rules)."""
    return OptionHistories(
        as_of=None,
        built_at=now,
        records=0,
        models=MappingProxyType({}),
        options=MappingProxyType({}),
        first_day=now.date(),
        last_day=now.date(),
    )


def _record_zone(index: ZoneIndex, option: ShippingOption, d: Delivery) -> str | None:
    return _zone_of(index, option, d.dest_country, d.dest_postal_code, d.dest_subdivision)


def _zone_of(
    index: ZoneIndex,
    option: ShippingOption,
    country: str,
    postal_code: str | None,
    subdivision: str | None,
) -> str | None:
    postal = "".join(ch for ch in (postal_code or "") if ch.isalnum()).upper()
    zones = index.match(country, postal, subdivision)
    return served_zone(option, {z.id: i for i, z in enumerate(zones)})


def _labelled_for(option: ShippingOption, carrier: str | None, service: str | None) -> bool:
    carrier = (carrier or "").strip().casefold()
    service = (service or "").strip().casefold()
    if not carrier and not service:
        return option.history.learn_from_unlabelled
    return (carrier, service) == option.history_label


def _unlabelled(p: ParcelInFlight) -> InFlight:
    """The parcel as its option's model learns it: without labels, like its records."""
    return replace(p.parcel, query=replace(p.parcel.query, service=None))


def _in_flight_at(p: ParcelInFlight, now: datetime) -> ParcelInFlight | None:
    """What is known of a parcel at `now`: None when ordered later, no hand-off before it."""
    if p.parcel.order_time > now:
        return None
    handoff = p.parcel.handoff_time
    if handoff is not None and handoff > now:
        return replace(p, parcel=replace(p.parcel, handoff_time=None))
    return p


def _handling_range(rules: Rules, option: ShippingOption) -> tuple[int, int]:
    if option.handling_days is not None:
        return option.handling_days, option.handling_days
    days = [
        o.handling_days for o in rules.origins if option.origins is None or o.id in option.origins
    ]
    return min(days), max(days)


def _warm_shift(
    records: list[Delivery],
    calendars: Calendars,
    config: HistoryConfig,
    target: float,
    as_of: datetime,
    correction: CorrectionConfig | None,
) -> tuple[float, int]:
    """The correction's shift after replaying the promises of the last WARMUP_DAYS of orders
    (0 when the backtest's default configuration has no correction)."""
    run = BacktestConfig(
        confidence=target,
        calibration_levels=(target,),
        frontier_levels=(),
        correction=correction or CorrectionConfig(),
        warmup_days=0,
    )
    if not run.correction.enabled:
        return 0.0, 0
    start = max(d.order_time for d in records) - timedelta(days=WARMUP_DAYS)
    recent = [d for d in records if d.order_time >= start]
    if not recent:
        return 0.0, 0
    result = replay(records, recent, calendars, config, run)
    (level,) = result.summary["corrected_level_at_end"].values()
    return float(level) - target, result.estimates


def build_option_histories(
    rules: Rules,
    deliveries: Iterable[Delivery],
    *,
    in_flight: Iterable[ParcelInFlight] = (),
    now: datetime | None = None,
    config: HistoryConfig | None = None,
    correction: CorrectionConfig | None = None,
    warm_up: bool = True,
    promises: Iterable[PromiseOutcome] = (),
    recalibration: RecalibrationConfig | None = RecalibrationConfig(),
) -> OptionHistories:
    """Learn every option's history from `deliveries` (and the parcels `in_flight`) and freeze
    it (CPU work: not on the request path). Options without matching records get no model:
    they stay on the rules.

    `correction` defaults to the backtest's default `CorrectionConfig`; records delivered after
    `now` (a clock behind the data) are left out, and so are parcels ordered after it (a
    hand-off after it is not known yet). A parcel that also has a delivery record is learned
    as delivered only. Without parcels in flight the model is frozen at the newest delivery;
    with them, at `now` (see the module docstring).

    `promises`: outcomes of the service's own recent promises (open and closed), each naming
    its option; with `recalibration` (None: off) each option's level is recalibrated from
    its own promises as known at `now` (see `history.recalibration`)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    config = config or HistoryConfig()
    records = [d for d in deliveries if d.delivered_at <= now]
    if not records:
        return empty_histories(now)
    delivered = {d.key for d in records}
    open_parcels = [
        known
        for p in in_flight
        if p.key not in delivered and (known := _in_flight_at(p, now)) is not None
    ]
    live = bool(open_parcels)
    as_of = now if live else max(d.delivered_at for d in records)
    first = min(d.order_time for d in records).date()
    if live:
        first = min(first, min(p.parcel.order_time for p in open_parcels).date())
    first -= timedelta(days=31)
    last = date(max(now, as_of).year + CALENDAR_YEARS_AHEAD, 12, 31)
    index = ZoneIndex(rules)
    by_option: dict[str, list[PromiseOutcome]] = {}
    if recalibration is not None:
        for promise in promises:
            by_option.setdefault(promise.option, []).append(promise)
    models: dict[tuple[str, str], ZoneModel] = {}
    summaries: dict[str, OptionSummary] = {}
    for option in rules.shipping_options:
        mine = [replace(d, carrier=None, service=None) for d in records if learns_from(option, d)]
        by_zone: dict[str, list[Delivery]] = {}
        for d in mine:
            zone = _record_zone(index, option, d)
            if zone is not None:
                by_zone.setdefault(zone, []).append(d)
        if not by_zone:
            continue
        open_by_zone: dict[str, list[InFlight]] = {}
        for p in open_parcels:
            if _labelled_for(option, p.carrier, p.service):
                q = p.parcel.query
                where = _zone_of(
                    index, option, q.dest_country, q.dest_postal_code, q.dest_subdivision
                )
                if where in by_zone:
                    open_by_zone.setdefault(where, []).append(_unlabelled(p))
        calendars = option_calendars(rules, option, first, last)
        h_min, h_max = _handling_range(rules, option)
        transit = {t.zone: t for t in option.transit}
        used = opened = 0
        for zone, zone_records in by_zone.items():
            t = transit[zone]
            lanes = LaneHistory(config, calendars, prior=RulesPrior(h_min, h_max, t.min, t.max))
            # learned as the backtest's replay learns (one feed), up to the model's instant
            feed = ModelFeed(
                lanes, censoring=live and config.censoring, measure_from=day_start(as_of)
            )
            for d in zone_records:
                feed.add_record(d)
            if live:
                zone_open = open_by_zone.get(zone, [])
                for parcel in zone_open:
                    feed.add_in_flight(parcel)
                opened += len(zone_open)
            feed.advance(as_of)
            used += feed.used
            models[(option.code, zone)] = ZoneModel(option.code, zone, lanes.freeze(as_of))
        _index_query_places(rules, option, calendars)
        shift, warmed = 0.0, 0
        if warm_up:
            kept = [d for z in by_zone.values() for d in z]
            shift, warmed = _warm_shift(
                kept, calendars, config, option.confidence, as_of, correction
            )
        recal = IDENTITY
        if recalibration is not None and option.code in by_option:
            recal = recalibrate(by_option[option.code], now, recalibration)
        summaries[option.code] = OptionSummary(
            option.code, used, tuple(sorted(by_zone)), shift, warmed, opened, recal
        )
    return OptionHistories(
        as_of=as_of,
        built_at=now,
        records=len(records),
        models=MappingProxyType(models),
        options=MappingProxyType(summaries),
        first_day=first,
        last_day=date(max(now, as_of).year + 1, 12, 31),
        config=config,
        in_flight=len(open_parcels),
    )


def _index_query_places(rules: Rules, option: ShippingOption, calendars: Calendars) -> None:
    """Build the day indexes estimates will ask for now, in the builder's thread, instead of
    on the first request after a refresh."""
    for origin in rules.origins:
        calendars.origin(origin.country, origin.subdivision)
    countries = {rules.zone(t.zone).country for t in option.transit}
    for country in countries:
        calendars.destination(country, None)
        for sub in subdivisions_of(country):
            calendars.destination(country, sub)
