"""Backtest: replay a delivery history in time order and measure the promises we would have made.

Pure (no I/O): records in, figures out. Every order of the evaluated set is estimated with
what was known at its order instant and nothing else:

* the model has learned exactly the records (history or evaluated) DELIVERED strictly before
  that instant; a record is added to the model when its delivery happens in the replay;
* the online correction has seen exactly the outcomes KNOWN by then: a promise is known to be
  on time when its parcel is delivered by its latest date, and known to be late when its latest
  date has passed (end of that local day at the destination) without a delivery.

Each confidence level is its own replay (its own correction, fed only with its own promises),
asked in advance. They share one pass over the events because the history learned at any
instant does not depend on the promises made; only the corrections do, and each level keeps
its own.

What the model is fed (`BacktestConfig.inputs`): IN_FLIGHT, as the tracking pipeline feeds the
service (delivered records, and orders and hand-offs not delivered yet as censored evidence,
and the outcomes of its own promises for the recalibration), or DELIVERED (delivered records
only). The replay keeps one `OrderRow` per evaluated order and every figure is computed from
the rows (`backtest_figures`).

Recalibration (`BacktestConfig.recalibration`, IN_FLIGHT only), as the service does it: every
promise (warm-up orders too) stores the predictive distribution of its delivery date when it
is made; every `recalibrate_every` of replay time, at the next order, the level is
recalibrated from the promises made before that instant, open or delivered as known then
(`history.recalibration`). One recalibration serves every asked level.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from tracking_service.estimator.backtest_figures import (
    TRUNCATION_DAYS,
    OrderRow,
    frontier,
    level_key,
    summarize,
)
from tracking_service.estimator.history import (
    IDENTITY,
    NO_DRIFT,
    Calendars,
    Drift,
    HistoryConfig,
    HistoryWindow,
    LaneHistory,
    LaneQuery,
    LevelCorrector,
    PromiseOutcome,
    Recalibration,
    RecalibrationConfig,
    RulesPrior,
    delivery_cdf,
    recalibrate,
    ship_days,
    window_from,
)
from tracking_service.estimator.history.feed import HANDOFF, LAST, ORDER, ModelFeed, day_start
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.reestimate import reestimate

__all__ = [
    "CALIBRATION_LEVELS",
    "DELIVERED",
    "FRONTIER_LEVELS",
    "INPUTS",
    "IN_FLIGHT",
    "BacktestConfig",
    "BacktestResult",
    "CorrectionConfig",
    "OrderRow",
    "frontier",
    "inputs_fed",
    "replay",
    "split_by_order_date",
]

CALIBRATION_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.93, 0.95)
FRONTIER_LEVELS: tuple[float, ...] = tuple(round(0.80 + 0.01 * i, 2) for i in range(20))
# what the model is fed: what the tracking pipeline feeds the service (delivered records,
# orders and hand-offs in flight), or delivered records only (a file cannot say more)
IN_FLIGHT, DELIVERED = "in-flight", "delivered"
INPUTS: tuple[str, ...] = (IN_FLIGHT, DELIVERED)


@dataclass(frozen=True, slots=True)
class CorrectionConfig:
    """The bounded online correction of the quantile level (see `LevelCorrector`).

    Off by default since the drift signal (`HistoryConfig.drift_*`): chosen on the earlier
    splits, the correction on top of it lowered coverage and lengthened promises (see
    `notes/backtest_results.md`, "Second attempt"). `enabled=True` turns it back on.
    """

    enabled: bool = False
    step: float = 0.002
    bound: float = 0.03
    # "at_deadline": every outcome is counted when its latest date has passed, hits and misses
    # alike; "as_known": a hit at delivery, a miss at the deadline (biased low while promises
    # are in flight, since good news arrives weeks before bad news)
    feedback: str = "at_deadline"

    def __post_init__(self) -> None:
        if self.feedback not in ("as_known", "at_deadline"):
            raise ValueError("feedback must be 'as_known' or 'at_deadline'")
        if self.step < 0 or self.bound < 0:
            raise ValueError("step and bound must be >= 0")


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """What to replay: the headline level, the levels asked in advance, the warm-up."""

    confidence: float = 0.9
    calibration_levels: tuple[float, ...] = CALIBRATION_LEVELS
    frontier_levels: tuple[float, ...] = FRONTIER_LEVELS
    correction: CorrectionConfig = field(default_factory=CorrectionConfig)
    # orders of the history placed this many days before the first evaluated order are
    # estimated too (not reported), so the correction starts from a running state
    warmup_days: int = 120
    # IN_FLIGHT: parcels in flight are censored evidence (when the model's `censoring` is on);
    # DELIVERED: delivered records only (censoring off whatever the model says)
    inputs: str = IN_FLIGHT
    # the data's last delivery, for right truncation (None: the newest delivery replayed)
    data_end: datetime | None = None
    # the rules' prior under the root lanes, as the service has one per option and zone
    prior: RulesPrior | None = None
    # the level recalibrated from the outcomes of recent promises (None: off; IN_FLIGHT only:
    # with delivered records only there are no promise outcomes), recomputed this often
    recalibration: RecalibrationConfig | None = field(default_factory=RecalibrationConfig)
    recalibrate_every: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)}")
        if self.recalibrate_every <= timedelta(0):
            raise ValueError("recalibrate_every must be positive")

    @property
    def recalibrates(self) -> bool:
        """Are promise outcomes fed (a recalibration, with the in-flight inputs)?"""
        return self.recalibration is not None and self.inputs == IN_FLIGHT

    def levels(self) -> tuple[float, ...]:
        wanted = {self.confidence, *self.calibration_levels, *self.frontier_levels}
        return tuple(sorted(round(x, 4) for x in wanted))


@dataclass(slots=True)
class _Promise:
    latest: date
    deadline: datetime  # the instant the latest date has passed at the destination
    resolved: bool = False


@dataclass(slots=True)
class _Order:
    delivery: Delivery
    query: LaneQuery
    order_day: date
    delivered_day: date
    reported: bool
    promises: dict[float, _Promise] = field(default_factory=dict)
    earliest: dict[float, date] = field(default_factory=dict)
    level_used: dict[float, float] = field(default_factory=dict)
    drift: Drift = NO_DRIFT
    handoff: HistoryWindow | None = None  # the re-estimate at hand-off, headline level
    outcome: PromiseOutcome | None = None  # the promise as the recalibration reads it


@dataclass(frozen=True)
class BacktestResult:
    """The figures of a replay, shaped like the `backtest --json` output, and its rows."""

    summary: dict[str, Any]
    estimates: int
    history_records: int
    promises: dict[str, date] = field(default_factory=dict)  # latest date at `confidence`
    rows: tuple[OrderRow, ...] = ()  # one per evaluated order that got a promise
    # every promise the recalibration read or could have read (warm-up orders too), as it
    # was made, with its delivery date when the parcel was delivered in the replay
    outcomes: tuple[PromiseOutcome, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return self.summary


def _local_date(at: datetime, zone: str | None) -> date:
    return at.astimezone(ZoneInfo(zone) if zone else UTC).date()


def _end_of_day(day: date, zone: str | None) -> datetime:
    tz = ZoneInfo(zone) if zone else UTC
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def inputs_fed(inputs: str, recalibrates: bool = False) -> tuple[str, ...]:
    """The kinds of input the model is fed with, in words."""
    if inputs == DELIVERED:
        return ("delivered records",)
    fed = ("delivered records", "orders in flight", "hand-offs in flight")
    return (*fed, "promise outcomes") if recalibrates else fed


# the replay's own events run after the feed's at the same instant: an estimate at an order
# after that order's own event (an order placed at the very instant of a delivery does not see
# it), a deadline after every event at its instant
_DEADLINE = 4


def replay(
    history: Iterable[Delivery],
    evaluate: Iterable[Delivery],
    calendars: Calendars,
    model: HistoryConfig | None = None,
    config: BacktestConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Replay `evaluate` in order-time order against everything delivered before each order.

    `history` and `evaluate` may overlap (the same file split by time): a record is learned
    once, when it is delivered. `progress(done, total)` is called as evaluated orders go by.
    The replay only states promises, one row per evaluated order; every figure comes from
    the rows (`backtest_figures.summarize`).
    """
    config = config or BacktestConfig()
    model = model or HistoryConfig()
    if config.inputs == DELIVERED:
        model = replace(model, censoring=False)
    levels = config.levels()
    corr = config.correction

    records: dict[str, Delivery] = {d.key: d for d in history}
    evaluated: dict[str, Delivery] = {}
    for d in evaluate:
        records[d.key] = d
        evaluated[d.key] = d
    if not evaluated:
        raise ValueError("nothing to evaluate")
    first_order = min(d.order_time for d in evaluated.values())
    warm_from = first_order - timedelta(days=config.warmup_days)
    data_end = config.data_end or max(d.delivered_at for d in records.values())
    truncated_from = data_end - timedelta(days=TRUNCATION_DAYS)

    lanes = LaneHistory(model, calendars, prior=config.prior)
    correctors = {
        lvl: LevelCorrector(target=lvl, step=corr.step if corr.enabled else 0.0, bound=corr.bound)
        for lvl in levels
    }
    orders: dict[str, _Order] = {}

    def resolve(order: _Order, lvl: float, on_time: bool) -> None:
        promise = order.promises[lvl]
        if not promise.resolved:
            promise.resolved = True
            correctors[lvl].record(on_time)

    def delivered(d: Delivery, at: datetime) -> None:
        order = orders.get(d.key)
        if order is not None and order.outcome is not None:
            order.outcome = replace(order.outcome, delivered_on=order.delivered_day)
        if order is not None and corr.feedback == "as_known":
            for level, promise in order.promises.items():
                if at < promise.deadline:
                    resolve(order, level, True)

    # the model learns through the service's own feed; this replay's events are its promises:
    # an estimate at each order (after the order's own event), a re-estimate at each hand-off,
    # and each promise's deadline (after every event at that instant)
    feed = ModelFeed(lanes, measure_from=day_start(warm_from), on_delivery=delivered)
    events: list[tuple[datetime, int, int, str, float]] = []
    for key, d in records.items():
        seq = feed.add_record(d)
        reported = key in evaluated
        if reported or warm_from <= d.order_time < first_order:
            orders[key] = _Order(
                delivery=d,
                query=LaneQuery.of(d),
                order_day=_local_date(d.order_time, d.origin_tz),
                delivered_day=_local_date(d.delivered_at, d.dest_tz),
                reported=reported,
            )
            events.append((d.order_time, ORDER, seq, key, 0.0))
            if reported and d.handoff_time is not None:
                events.append((d.handoff_time, HANDOFF, seq + 1, key, 0.0))
    heapq.heapify(events)
    seq = 3 * len(records)

    total = len(evaluated)
    done = 0
    estimates = 0
    main = round(config.confidence, 4)
    # with delivered records only the model speaks as of its newest delivery, as the
    # service's does without parcels in flight
    live = model.censoring
    recal_config = config.recalibration if config.recalibrates else None
    recal: Recalibration = IDENTITY
    recal_at: datetime | None = None
    book: list[_Order] = []  # orders with a promise, in the order they were made
    book_from = 0  # the first one still in the recalibration's window

    def level_at(level: float) -> float:
        corrector = correctors[level]
        return LevelCorrector(target=recal.level(level), shift=corrector.shift).level

    while events:
        at, kind, event_seq, key, lvl = heapq.heappop(events)
        feed.advance(at, min(kind, LAST), event_seq if kind != _DEADLINE else -1)
        order = orders[key]
        d = order.delivery
        if kind == _DEADLINE:
            on_time = d.delivered_at < order.promises[lvl].deadline
            if corr.feedback == "at_deadline" or not on_time:
                resolve(order, lvl, on_time)
            continue
        as_of = at if live else (feed.newest_delivery or at)
        q = order.query
        if kind == HANDOFF:
            assert d.handoff_time is not None
            blend = lanes.blend(q, as_of)
            if blend is None:
                continue
            order.handoff = reestimate(
                blend,
                q,
                calendars,
                handoff=d.handoff_time,
                confidence=main,
                level=level_at(main),
                origin_tz=d.origin_tz,
                earliest_level=model.earliest_level,
                percentiles=(),
            )
            assert order.handoff is not None  # only a later scan can leave no chance
            continue
        # an order: one promise per level, each with its own correction
        blend = lanes.blend(q, as_of)
        if order.reported:
            done += 1
            if progress is not None:
                progress(done, total)
        if blend is None:
            continue
        order.drift = lanes.drift(as_of)
        origin = calendars.origin(q.origin_country, q.origin_subdivision)
        dest = calendars.destination(q.dest_country, q.dest_subdivision)
        ship = ship_days(blend, order.order_day, origin, dest)
        if recal_config is not None:
            if recal_at is None or at >= recal_at + config.recalibrate_every:
                since = at - timedelta(days=recal_config.window_days)
                while book_from < len(book) and book[book_from].delivery.order_time <= since:
                    book_from += 1
                known = [o.outcome for o in book[book_from:] if o.outcome is not None]
                recal, recal_at = recalibrate(known, at, recal_config), at
            start, cdf = delivery_cdf(blend, ship, dest)
            order.outcome = PromiseOutcome(at, start, cdf, None, d.dest_tz)
            book.append(order)
        for level in levels:
            used = level_at(level)
            win = window_from(blend, ship, dest, level, used, model.earliest_level, ())
            estimates += 1
            deadline = _end_of_day(win.latest, d.dest_tz)
            order.promises[level] = _Promise(win.latest, deadline)
            order.earliest[level] = win.earliest
            order.level_used[level] = used
            heapq.heappush(events, (deadline, _DEADLINE, seq, key, level))
            seq += 1

    rows = tuple(
        _row(order, truncated_from)
        for order in sorted(orders.values(), key=lambda o: (o.delivery.order_time, o.delivery.key))
        if order.reported and order.promises
    )
    summary = summarize(
        rows,
        confidence=config.confidence,
        calibration_levels=config.calibration_levels,
        frontier_levels=config.frontier_levels,
    )
    summary["inputs"] = config.inputs
    summary["inputs_fed"] = list(inputs_fed(config.inputs, config.recalibrates))
    summary["recalibration"] = None if recal_config is None else _describe(recal_config)
    summary["truncation"]["last_delivery"] = data_end.date().isoformat()
    summary["corrected_level_at_end"] = {
        level_key(lvl): round(correctors[round(lvl, 4)].level, 4)
        for lvl in config.calibration_levels
    }
    return BacktestResult(
        summary=summary,
        estimates=estimates,
        history_records=lanes.records,
        promises={r.key: r.latest[main] for r in rows if main in r.latest},
        rows=rows,
        outcomes=tuple(o.outcome for o in book if o.outcome is not None),
    )


def _describe(config: RecalibrationConfig) -> dict[str, Any]:
    return {
        "window_days": config.window_days,
        "prior_promises": config.prior_promises,
        "bound": config.bound,
        "tail": config.tail,
    }


def _row(order: _Order, truncated_from: datetime) -> OrderRow:
    d = order.delivery
    handoff = order.handoff
    return OrderRow(
        key=d.key,
        order_day=order.order_day,
        delivered_day=order.delivered_day,
        latest=MappingProxyType({x: p.latest for x, p in order.promises.items()}),
        earliest=MappingProxyType(dict(order.earliest)),
        level_used=MappingProxyType(dict(order.level_used)),
        drift_handling=order.drift.handling,
        drift_transit=order.drift.transit,
        promised=d.promised_date,
        handoff_latest=None if handoff is None else handoff.latest,
        handoff_earliest=None if handoff is None else handoff.earliest,
        truncated=d.order_time >= truncated_from,
    )


def split_by_order_date(
    records: Iterable[Delivery], start: date, end: date | None = None
) -> tuple[list[Delivery], list[Delivery]]:
    """(history, evaluated): ordered before `start`, and ordered in `start`..`end` inclusive.

    Dates are local order dates at the origin. Records ordered after `end` are in neither
    (they would be deliveries from the future).
    """
    history: list[Delivery] = []
    evaluated: list[Delivery] = []
    for d in records:
        day = _local_date(d.order_time, d.origin_tz)
        if day < start:
            history.append(d)
        elif end is None or day <= end:
            evaluated.append(d)
    return history, evaluated
