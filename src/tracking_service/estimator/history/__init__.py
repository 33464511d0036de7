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
`recalibration` does it from the censored outcomes of recent promises instead (each promise's
predictive distribution stored when made, open promises censored): one product-limit curve
of the observed on-time share by level, read for every asked level.

Two ways to use it:

* `LaneHistory`: mutable, `add(delivery)` in O(lanes per record); `window(...)` computes a
  lane's blended distributions on demand (the backtest replays with it);
* `LaneHistory.freeze(now)` -> `HistoryModel`: immutable, every chain of lanes a record went
  through pre-blended (keyed by the whole chain: a lane can have several parents), so it
  answers exactly what the builder would at `now`; a lookup at request time is a handful of
  dict lookups plus a short search (the estimate route uses it).

Modules, by idea: `config` (HistoryConfig), `calendars` (day indexes), `lanes` (lane keys and
what a delivery says in days), `hazards` (a lane's evidence and its blend with its parent),
`window` (the window and the delivery date's distribution read from a blend), `drift` (the
fast drift signal), `learning` (`LaneHistory`), `model` (`HistoryModel`), `correction`
(`LevelCorrector`), `recalibration` (`recalibrate`). Import from this
package; the modules are its layout, not its interface.
"""

from __future__ import annotations

from tracking_service.estimator.history.calendars import Calendars, DayIndex, holiday_calendars
from tracking_service.estimator.history.config import (
    HANDLING_LEVELS,
    PERCENTILES,
    TRANSIT_LEVELS,
    HistoryConfig,
    LaneKey,
)
from tracking_service.estimator.history.correction import LevelCorrector
from tracking_service.estimator.history.drift import NO_DRIFT, Drift
from tracking_service.estimator.history.hazards import LaneCounts, RulesPrior
from tracking_service.estimator.history.lanes import (
    LaneQuery,
    LaneUse,
    Observation,
    describe_lane,
    distance_km,
    handling_chain,
    lane_in_words,
    observe,
    transit_chain,
)
from tracking_service.estimator.history.learning import InFlight, LaneHistory
from tracking_service.estimator.history.model import HistoryModel
from tracking_service.estimator.history.recalibration import (
    IDENTITY,
    PromiseOutcome,
    Recalibration,
    RecalibrationConfig,
    recalibrate,
)
from tracking_service.estimator.history.window import (
    Blend,
    HistoryWindow,
    ShipDay,
    delivery_cdf,
    order_delivery_cdf,
    ship_days,
    window_from,
)

__all__ = [
    "HANDLING_LEVELS",
    "IDENTITY",
    "NO_DRIFT",
    "PERCENTILES",
    "TRANSIT_LEVELS",
    "Blend",
    "Calendars",
    "DayIndex",
    "Drift",
    "HistoryConfig",
    "HistoryModel",
    "HistoryWindow",
    "InFlight",
    "LaneCounts",
    "LaneHistory",
    "LaneKey",
    "LaneQuery",
    "LaneUse",
    "LevelCorrector",
    "Observation",
    "PromiseOutcome",
    "Recalibration",
    "RecalibrationConfig",
    "RulesPrior",
    "ShipDay",
    "delivery_cdf",
    "describe_lane",
    "distance_km",
    "handling_chain",
    "holiday_calendars",
    "lane_in_words",
    "observe",
    "order_delivery_cdf",
    "recalibrate",
    "ship_days",
    "transit_chain",
    "window_from",
]
