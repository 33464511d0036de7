"""The fast drift signal: how much faster or slower the recent cohorts are than their lanes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tracking_service.estimator.history.calendars import DayIndex
from tracking_service.estimator.history.config import HistoryConfig, LaneKey
from tracking_service.estimator.history.hazards import LaneCounts, chain_hazard, cumulative_hazard


@dataclass(slots=True)
class Exposure:
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


def measure_drift(
    cfg: HistoryConfig,
    exposures: dict[str, dict[str, Exposure]],
    counts_of: Callable[[LaneKey], LaneCounts | None],
    priors: Mapping[str, list[float] | None],
    now: datetime,
) -> Drift:
    """The speed of the recent cohorts against their lanes, as known at `now`.

    Every parcel whose clock started (order for handling, hand-off for transit) in the
    last `drift_window_days` before `now` counts: done by `now` adds one observed event
    and the cumulative hazard its lane expected up to the day it was done; still waiting
    adds the cumulative hazard up to the days already passed. theta = (observed + a) /
    (expected + a), `a` = `drift_prior`, within `drift_bounds`: the maximum-likelihood
    hazard ratio of the recent cohorts, shrunk toward 1. Clocks older than the window are
    dropped from `exposures` (they are of no use any more). `priors`: the rules' prior
    hazard of each part ("handling", "transit").
    """
    assert cfg.drift_window_days is not None
    cutoff = now - timedelta(days=cfg.drift_window_days)
    cache: dict[tuple[LaneKey, ...], list[float]] = {}
    cumulative: dict[tuple[LaneKey, ...], list[float]] = {}
    lo, hi = cfg.drift_bounds
    a = cfg.drift_prior
    thetas: dict[str, float] = {"handling": 1.0, "transit": 1.0}
    observed: dict[str, float] = {"handling": 0.0, "transit": 0.0}
    expected: dict[str, float] = {"handling": 0.0, "transit": 0.0}
    for part in cfg.drift_parts:
        prior = priors[part]
        book = exposures[part]
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
                hazard = chain_hazard(chain, counts_of, k, prior, cache)
                cum = cumulative[tuple(chain)] = cumulative_hazard(hazard)
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
    return Drift(
        handling=thetas["handling"],
        transit=thetas["transit"],
        observed=(observed["handling"], observed["transit"]),
        expected=(round(expected["handling"], 3), round(expected["transit"], 3)),
    )
