"""`LaneHistory`: the mutable builder, learning one delivered or in-flight parcel at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from tracking_service.estimator.history.calendars import Calendars, DayIndex
from tracking_service.estimator.history.config import PERCENTILES, HistoryConfig, LaneKey
from tracking_service.estimator.history.drift import NO_DRIFT, Drift, Exposure, measure_drift
from tracking_service.estimator.history.hazards import (
    LaneCounts,
    RulesPrior,
    cdf,
    chain_hazard,
    chain_use,
    hazard_to_pmf,
    is_handling,
    powered,
    prior_hazard,
    sparse,
)
from tracking_service.estimator.history.lanes import (
    LaneQuery,
    LaneUse,
    Observation,
    handling_chain,
    observe,
    transit_chain,
)
from tracking_service.estimator.history.model import HistoryModel
from tracking_service.estimator.history.window import Blend, HistoryWindow, order_window
from tracking_service.estimator.records import Delivery
from tracking_service.timezones import zone


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


def _days(at: datetime) -> float:
    return at.timestamp() / 86400.0


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
        self._exposures: dict[str, dict[str, Exposure]] = {"handling": {}, "transit": {}}
        self._newest_start: datetime | None = None
        self._drift_days: dict[date, Drift] = {}  # UTC day -> the drift read that day
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
        return float(2.0**exponent)

    def _decay(self, now: datetime) -> float:
        """Factor turning stored weights into weights as seen at `now`."""
        hl = self.config.half_life_days
        if hl is None or self._origin_days is None:
            return 1.0
        return float(2.0 ** (-(_days(now) - self._origin_days) / hl))

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
        otz, dtz = zone(d.origin_tz or "UTC"), zone(d.dest_tz or "UTC")
        origin = self.calendars.origin(d.origin_country, d.origin_subdivision)
        dest = self.calendars.destination(d.dest_country, d.dest_subdivision)
        order_i = origin.ceil(d.order_time.astimezone(otz).date())
        ship_i = max(order_i, origin.ceil(d.handoff_time.astimezone(otz).date()))
        self._track(
            "handling",
            d.key,
            Exposure(
                h_chain, origin, otz, order_i, d.order_time, d.handoff_time, obs.handling_days
            ),
        )
        start = dest.ceil(origin.day(ship_i))
        self._track(
            "transit",
            d.key,
            Exposure(t_chain, dest, dtz, start, d.handoff_time, d.delivered_at, obs.transit_days),
        )

    def _track(self, part: str, key: str, clock: Exposure) -> None:
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
        otz = zone(parcel.origin_tz or "UTC")
        order_i = origin.ceil(parcel.order_time.astimezone(otz).date())
        if parcel.handoff_time is None:
            chain = handling_chain(q, cfg)
            self._close(key, self._open_h)
            self._open(key, chain, _Open(origin, otz, order_i, w), cfg.max_handling_days)
            self._open_h[key] = chain
            self._track("handling", key, Exposure(chain, origin, otz, order_i, parcel.order_time))
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
            Exposure(
                h_chain, origin, otz, order_i, parcel.order_time, parcel.handoff_time, handling
            ),
        )
        ship_day = origin.day(ship_i)
        dest = self.calendars.destination(q.dest_country, q.dest_subdivision)
        chain = transit_chain(q, cfg, ship_day.weekday())
        self._close(key, self._open_t)
        start = dest.ceil(ship_day)
        dtz = zone(parcel.dest_tz or "UTC")
        self._open(key, chain, _Open(dest, dtz, start, w), cfg.max_transit_days)
        self._open_t[key] = chain
        self._track("transit", key, Exposure(chain, dest, dtz, start, parcel.handoff_time))

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
        for k in range(size - 1, -1, -1):
            acc += lane.events[k] + censored[k]
            done[k] = lane.events[k] * decay
            at_risk[k] = acc * decay
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
        return prior_hazard(self.prior, self.config, part)

    def drift(self, now: datetime) -> Drift:
        """The speed of the recent cohorts against the lanes for `now`'s UTC day (see
        `measure_drift`): the value measured at the day's start (`measure_drift_at`, which
        `ModelFeed` calls as it crosses into a day), else measured at the first call that day
        (nothing after that instant is used). Kept for the day.
        """
        cfg = self.config
        if not cfg.drift_on or cfg.drift_window_days is None:
            return NO_DRIFT
        found = self._drift_days.get(now.astimezone(UTC).date())
        return found if found is not None else self.measure_drift_at(now)

    def measure_drift_at(self, at: datetime) -> Drift:
        """Measure the drift at `at` from what is learned now and keep it for `at`'s UTC day
        (a day measured already keeps its value)."""
        cfg = self.config
        if not cfg.drift_on or cfg.drift_window_days is None:
            return NO_DRIFT
        day = at.astimezone(UTC).date()
        found = self._drift_days.get(day)
        if found is None:
            priors = {"handling": self._prior_hazard("h"), "transit": self._prior_hazard("t")}
            found = measure_drift(cfg, self._exposures, self._counts_at(at), priors, at)
            self._drift_days[day] = found
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
        h = chain_hazard(h_chain, counts_of, cfg.strength("h"), self._prior_hazard("h"))
        t = chain_hazard(t_chain, counts_of, kt, t_prior, cache)
        by_weekday: dict[int, tuple[float, ...]] = {}
        if cfg.handoff_weekday and weekday is None:  # at order time: one per ship weekday
            for wd in range(7):
                chain = transit_chain(query, cfg, wd)
                if chain[0] in self._lanes:
                    hazard = chain_hazard(chain, counts_of, kt, t_prior, cache)
                    by_weekday[wd] = cdf(hazard_to_pmf(powered(hazard, drift.transit)))
        return Blend(
            sparse(hazard_to_pmf(powered(h, drift.handling))),
            cdf(hazard_to_pmf(powered(t, drift.transit))),
            chain_use(h_chain, counts_of),
            chain_use(t_chain, counts_of),
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
        return order_window(
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
                if is_handling(suffix[0]):
                    if suffix not in handling:
                        h = chain_hazard(list(suffix), counts_of, kh, priors["h"], cache)
                        pmf = hazard_to_pmf(powered(h, drift.handling))
                        handling[suffix] = (sparse(pmf), chain_use(suffix, counts_of))
                elif suffix not in transit:
                    t = chain_hazard(list(suffix), counts_of, kt, priors["t"], cache)
                    pmf = hazard_to_pmf(powered(t, drift.transit))
                    transit[suffix] = (cdf(pmf), chain_use(suffix, counts_of))
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
