"""Re-estimate a parcel the carrier already has: the window given its hand-off, or a later scan.

Pure (no I/O). At order time the window mixes every handling outcome (when the warehouse may
hand the parcel over) with the lane's transit distribution. Once the carrier has the parcel,
handling is known: the hand-off day is the only ship day, and only transit remains. A later
scan that shows the parcel still in transit says more: it has not been delivered before the
scan's local day at the destination, so the window is the transit distribution CONDITIONAL on
that (the days already passed are cut off and what is left is renormalised):

    P(delivered by day j | not delivered before day m) = (F(j) - F(m - 1)) / (1 - F(m - 1))

for delivery days j >= m, F being the transit CDF counted from the hand-off day on the
destination's delivery days.

One function, `reestimate`, answers both from a lane's blended distributions (`Blend`, from
`LaneHistory.blend` in the backtest or `HistoryModel.blend` in the service);
`OptionHistories.reestimate` is the service's entry point (option, zone and lane in, window
out). The backtest's "re-estimate at hand-off" figures are this function's answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from types import MappingProxyType

from tracking_service.estimator.history import (
    PERCENTILES,
    Blend,
    Calendars,
    DayIndex,
    HistoryWindow,
    LaneQuery,
    ShipDay,
    window_from,
)
from tracking_service.timezones import zone

# a parcel the history gives less than this chance of still being on its way is beyond what
# the history knows: no window (the caller falls back on the rules, or calls it late)
_NO_CHANCE_LEFT = 1e-9


def handoff_day(handoff: datetime, origin: DayIndex, origin_tz: str | None) -> date:
    """The ship day of a parcel handed over at `handoff`: its local date at the origin, or the
    next open day of the origin's calendar when that date is closed (as the model learns it)."""
    local = handoff.astimezone(zone(origin_tz or "UTC")).date()
    return origin.day(origin.ceil(local))


def reestimate(
    blend: Blend,
    query: LaneQuery,
    calendars: Calendars,
    *,
    handoff: datetime,
    confidence: float,
    level: float | None = None,
    last_scan: datetime | None = None,
    origin_tz: str | None = None,
    dest_tz: str | None = None,
    earliest_level: float = 0.1,
    percentiles: Iterable[int] = PERCENTILES,
) -> HistoryWindow | None:
    """The delivery window of a parcel handed to the carrier at `handoff` (aware instant).

    `blend` is the lane's blended distributions for `query` (the option's lane) as known now;
    `level` is the quantile level after any correction (default: `confidence`); `origin_tz`
    and `dest_tz` are the IANA zones of the origin and destination (None: UTC) that local
    dates are read in.

    With `last_scan` (an instant at or after the hand-off at which the parcel was seen still
    in transit), the window is conditional on no delivery before the scan's local day at the
    destination: the days already passed are no longer possible and the window narrows and
    moves later as the parcel waits. None when the history gives a parcel that has waited
    this long no chance of still being on its way (past the longest transit it knows).
    """
    origin = calendars.origin(query.origin_country, query.origin_subdivision)
    dest = calendars.destination(query.dest_country, query.dest_subdivision)
    ship_day = handoff_day(handoff, origin, origin_tz)
    start = dest.ceil(ship_day)
    lvl = confidence if level is None else level
    ship: list[ShipDay] = [(start, 1.0, ship_day.weekday())]
    if last_scan is not None:
        seen = last_scan.astimezone(zone(dest_tz or "UTC")).date()
        waited = dest.ceil(seen) - start  # delivery days known to have passed without delivery
        if waited > 0:
            cdf = blend.transit_for(ship_day.weekday())
            if waited >= len(cdf):
                return None
            before = cdf[waited - 1]
            left = 1.0 - before
            if left < _NO_CHANCE_LEFT:
                return None
            rest = [min(1.0, max(0.0, (c - before) / left)) for c in cdf[waited:]]
            rest[-1] = 1.0
            blend = replace(blend, transit_cdf=tuple(rest), transit_by_weekday=MappingProxyType({}))
            ship = [(start + waited, 1.0)]
    return window_from(blend, ship, dest, confidence, lvl, earliest_level, percentiles)
