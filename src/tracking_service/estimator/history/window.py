"""The delivery window: the combined distribution of the delivery date, searched for a level.

For each handling outcome (a ship day on the origin's calendar) the transit distribution is
laid on the destination's delivery days from that ship day; `latest` is the smallest delivery
day with P(delivered by then) >= the level, `earliest` a low quantile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

from tracking_service.estimator.history.calendars import Calendars, DayIndex
from tracking_service.estimator.history.config import PERCENTILES, HistoryConfig
from tracking_service.estimator.history.lanes import LaneQuery, LaneUse


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


ShipDay = tuple[int, float] | tuple[int, float, int]
"""(delivery-day index of the ship day, probability[, ship weekday when transit depends on it])"""


_Row = tuple[int, float, tuple[float, ...]]


def _rows(blend: Blend, ship: Sequence[ShipDay]) -> list[_Row]:
    """Each ship day with the transit CDF that applies from it."""
    return [(s[0], s[1], blend.transit_for(s[2] if len(s) > 2 else None)) for s in ship]


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


def delivery_cdf(
    blend: Blend, ship: Sequence[ShipDay], dest: DayIndex, digits: int = 6
) -> tuple[date, tuple[float, ...]]:
    """The predictive distribution of the delivery date on the destination's calendar days:
    (start, cdf) with cdf[k] = P(delivered by start + k days), `start` the first possible
    delivery day. A closed day carries the previous delivery day's value, so the first day
    reaching a level is the window's `latest` at that level, and a delivery on day d was on
    time at level q exactly when cdf at d - 1 < q (what recalibration reads). The list ends
    once the probability is 1 (rounded to `digits`); later days are 1."""
    rows = _rows(blend, ship)
    lo = min(j for j, _, _ in rows)
    hi = max(j + len(cdf) - 1 for j, _, cdf in rows)
    by_index: list[float] = []
    for i in range(lo, hi + 1):
        total = 0.0
        for j, p, cdf in rows:
            k = i - j
            if k >= 0:
                total += p * (cdf[k] if k < len(cdf) else 1.0)
        by_index.append(min(1.0, round(total, digits)))
        if by_index[-1] >= 1.0:
            break
    start = dest.day(lo)
    end = dest.day(lo + len(by_index) - 1)
    out: list[float] = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        i = dest.ceil(day)
        if dest.day(i) != day:  # closed: the last delivery day before it
            i -= 1
        out.append(by_index[i - lo])
    return start, tuple(out)


def order_delivery_cdf(
    blend: Blend | None, query: LaneQuery, order_date: date, calendars: Calendars
) -> tuple[date, tuple[float, ...]] | None:
    """`delivery_cdf` for an order placed on `order_date` (origin local), on the query's
    calendars: what a promise stores when it is made. None without a blend."""
    if blend is None:
        return None
    origin = calendars.origin(query.origin_country, query.origin_subdivision)
    dest = calendars.destination(query.dest_country, query.dest_subdivision)
    return delivery_cdf(blend, ship_days(blend, order_date, origin, dest), dest)


def order_window(
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
