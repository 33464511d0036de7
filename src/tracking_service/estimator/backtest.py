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
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from tracking_service.estimator.history import (
    Calendars,
    HistoryConfig,
    InFlight,
    LaneHistory,
    LaneQuery,
    LevelCorrector,
    ship_days,
    window_from,
)
from tracking_service.estimator.records import Delivery
from tracking_service.estimator.reestimate import reestimate

CALIBRATION_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.93, 0.95)
FRONTIER_LEVELS: tuple[float, ...] = tuple(round(0.80 + 0.01 * i, 2) for i in range(20))


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

    def levels(self) -> tuple[float, ...]:
        wanted = {self.confidence, *self.calibration_levels, *self.frontier_levels}
        return tuple(sorted(round(x, 4) for x in wanted))


@dataclass(slots=True)
class _Tally:
    orders: int = 0
    on_time: int = 0
    promise_days: int = 0
    window_days: int = 0
    days_early: int = 0
    has_window: bool = True

    def add(self, order_day: date, earliest: date | None, latest: date, delivered: date) -> None:
        self.orders += 1
        self.on_time += delivered <= latest
        self.promise_days += (latest - order_day).days
        self.days_early += (latest - delivered).days
        if earliest is None:
            self.has_window = False
        else:
            self.window_days += (latest - earliest).days

    def figures(self) -> dict[str, Any]:
        n = self.orders or 1
        return {
            "orders": self.orders,
            "on_time_rate": round(self.on_time / n, 4) if self.orders else None,
            "mean_promise_days": round(self.promise_days / n, 3) if self.orders else None,
            "mean_window_days": round(self.window_days / n, 3)
            if self.orders and self.has_window
            else None,
            "mean_days_early": round(self.days_early / n, 3) if self.orders else None,
        }


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


@dataclass(frozen=True)
class BacktestResult:
    """The figures of a replay, shaped like the `backtest --json` output."""

    summary: dict[str, Any]
    estimates: int
    history_records: int
    promises: dict[str, date] = field(default_factory=dict)  # latest date at `confidence`

    def to_json(self) -> dict[str, Any]:
        return self.summary


def _local_date(at: datetime, zone: str | None) -> date:
    return at.astimezone(ZoneInfo(zone) if zone else UTC).date()


def _end_of_day(day: date, zone: str | None) -> datetime:
    tz = ZoneInfo(zone) if zone else UTC
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


# event kinds, in the order they run at the same instant: an order placed at the very instant
# of a delivery does not see it (strictly before), nor a deadline passing at that instant
_ORDER, _HANDOFF, _DELIVERY, _DEADLINE = 0, 1, 2, 3


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
    """
    model = model or HistoryConfig()
    config = config or BacktestConfig()
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

    lanes = LaneHistory(model, calendars)
    correctors = {
        lvl: LevelCorrector(target=lvl, step=corr.step if corr.enabled else 0.0, bound=corr.bound)
        for lvl in levels
    }
    tallies = {lvl: _Tally() for lvl in levels}
    baseline = _Tally(has_window=False)
    at_handoff = _Tally()
    handoff_shift = [0, 0]  # (sum of re-estimate minus original latest, later than original)
    months: dict[str, _Tally] = {}
    promised: dict[str, date] = {}

    orders: dict[str, _Order] = {}
    events: list[tuple[datetime, int, int, str, float]] = []
    seq = 0
    for key, d in records.items():
        reported = key in evaluated
        if reported or warm_from <= d.order_time < first_order:
            orders[key] = _Order(
                delivery=d,
                query=LaneQuery.of(d),
                order_day=_local_date(d.order_time, d.origin_tz),
                delivered_day=_local_date(d.delivered_at, d.dest_tz),
                reported=reported,
            )
        # every parcel is in flight from its order, handed over, then delivered
        events.append((d.order_time, _ORDER, seq, key, 0.0))
        if d.handoff_time is not None:
            events.append((d.handoff_time, _HANDOFF, seq + 1, key, 0.0))
        events.append((d.delivered_at, _DELIVERY, seq + 2, key, 0.0))
        seq += 3
    heapq.heapify(events)

    total = len(evaluated)
    done = 0
    estimates = 0
    main = round(config.confidence, 4)

    def resolve(order: _Order, lvl: float, on_time: bool) -> None:
        promise = order.promises[lvl]
        if not promise.resolved:
            promise.resolved = True
            correctors[lvl].record(on_time)

    while events:
        at, kind, _, key, lvl = heapq.heappop(events)
        if kind == _DELIVERY:
            lanes.add(records[key])
            order = orders.get(key)
            if order is not None and corr.feedback == "as_known":
                for level, promise in order.promises.items():
                    if at < promise.deadline:
                        resolve(order, level, True)
            continue
        if kind != _DEADLINE and model.censoring:
            d = records[key]
            lanes.add_in_flight(InFlight.of(d, handed_off=kind == _HANDOFF))
        order = orders.get(key)
        if order is None:
            continue
        d = order.delivery
        if kind == _DEADLINE:
            on_time = d.delivered_at < order.promises[lvl].deadline
            if corr.feedback == "at_deadline" or not on_time:
                resolve(order, lvl, on_time)
            continue
        q = order.query
        if kind == _HANDOFF:
            assert d.handoff_time is not None
            if not order.reported:
                continue
            blend = lanes.blend(q, at)
            if blend is None:
                continue
            win = reestimate(
                blend,
                q,
                calendars,
                handoff=d.handoff_time,
                confidence=main,
                level=correctors[main].level,
                origin_tz=d.origin_tz,
                earliest_level=model.earliest_level,
                percentiles=(),
            )
            assert win is not None  # only a later scan can leave no chance
            at_handoff.add(order.order_day, win.earliest, win.latest, order.delivered_day)
            original = order.promises.get(main)
            if original is not None:
                change = (win.latest - original.latest).days
                handoff_shift[0] += change
                handoff_shift[1] += change > 0
            continue
        # an order: one promise per level, each with its own correction
        blend = lanes.blend(q, at)
        if order.reported:
            done += 1
            if progress is not None:
                progress(done, total)
        if blend is None:
            continue
        origin = calendars.origin(q.origin_country, q.origin_subdivision)
        dest = calendars.destination(q.dest_country, q.dest_subdivision)
        ship = ship_days(blend, order.order_day, origin, dest)
        for level in levels:
            win = window_from(
                blend, ship, dest, level, correctors[level].level, model.earliest_level, ()
            )
            estimates += 1
            deadline = _end_of_day(win.latest, d.dest_tz)
            order.promises[level] = _Promise(win.latest, deadline)
            heapq.heappush(events, (deadline, _DEADLINE, seq, key, level))
            seq += 1
            if order.reported:
                tallies[level].add(order.order_day, win.earliest, win.latest, order.delivered_day)
                if level == main:
                    promised[key] = win.latest
                    month = months.setdefault(order.order_day.strftime("%Y-%m"), _Tally())
                    month.add(order.order_day, win.earliest, win.latest, order.delivered_day)
        if order.reported and d.promised_date is not None:
            baseline.add(order.order_day, None, d.promised_date, order.delivered_day)

    summary = tallies[main].figures()
    summary["confidence"] = main
    summary["calibration"] = {
        _level_key(lvl): {
            "on_time_rate": tallies[lvl].figures()["on_time_rate"],
            "mean_promise_days": tallies[lvl].figures()["mean_promise_days"],
        }
        for lvl in config.calibration_levels
    }
    base = baseline.figures()
    summary["frontier"] = frontier(
        [
            (
                lvl,
                tallies[round(lvl, 4)].figures()["on_time_rate"],
                tallies[round(lvl, 4)].figures()["mean_promise_days"],
            )
            for lvl in config.frontier_levels
        ],
        base["on_time_rate"],
        base["mean_promise_days"],
    )
    summary["baseline"] = base if baseline.orders else None
    handoff = at_handoff.figures()
    if at_handoff.orders:
        handoff["mean_change_vs_original_days"] = round(handoff_shift[0] / at_handoff.orders, 3)
        handoff["later_than_original_rate"] = round(handoff_shift[1] / at_handoff.orders, 4)
    summary["at_handoff"] = handoff
    summary["by_month"] = {m: t.figures() for m, t in sorted(months.items())}
    summary["corrected_level_at_end"] = {
        _level_key(lvl): round(correctors[round(lvl, 4)].level, 4)
        for lvl in config.calibration_levels
    }
    return BacktestResult(
        summary=summary, estimates=estimates, history_records=lanes.records, promises=promised
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


def _level_key(level: float) -> str:
    return f"{level:g}"


def frontier(
    points: Sequence[tuple[float, float | None, float | None]],
    baseline_rate: float | None,
    baseline_lead: float | None,
) -> dict[str, Any]:
    """On-time share and lead by level, and the lead at which we match the baseline's share.

    The lead is interpolated linearly between the two neighbouring levels whose on-time shares
    bracket the baseline's (the first such pair from the lowest level up); None when no pair
    brackets it (the note says which side).
    """
    levels = [
        {"level": lvl, "on_time_rate": rate, "mean_promise_days": lead}
        for lvl, rate, lead in points
    ]
    out: dict[str, Any] = {
        "levels": levels,
        "lead_at_baseline_on_time": None,
        "ratio": None,
    }
    usable = [(r, lead) for _, r, lead in points if r is not None and lead is not None]
    if baseline_rate is None or not baseline_lead or not usable:
        return out
    lead_at: float | None = None
    if usable[0][0] >= baseline_rate:
        out["note"] = "on time more often than the baseline already at the lowest level"
        if usable[0][0] == baseline_rate:
            lead_at = usable[0][1]
    for (r0, l0), (r1, l1) in pairwise(usable):
        if lead_at is not None:
            break
        if r0 <= baseline_rate <= r1:
            lead_at = l0 if r1 == r0 else l0 + (l1 - l0) * (baseline_rate - r0) / (r1 - r0)
    if lead_at is None and "note" not in out:
        out["note"] = "never as often on time as the baseline, even at the highest level"
    if lead_at is not None:
        out["lead_at_baseline_on_time"] = round(lead_at, 3)
        out["ratio"] = round(lead_at / baseline_lead, 4)
    return out
