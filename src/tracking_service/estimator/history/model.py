"""`HistoryModel`: the frozen, immutable snapshot the estimate route reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

from tracking_service.estimator.history.calendars import Calendars
from tracking_service.estimator.history.config import PERCENTILES, HistoryConfig, LaneKey
from tracking_service.estimator.history.drift import NO_DRIFT, Drift
from tracking_service.estimator.history.hazards import (
    LaneCounts,
    RulesPrior,
    cdf,
    chain_hazard,
    chain_use,
    hazard_to_pmf,
    powered,
    prior_hazard,
    sparse,
)
from tracking_service.estimator.history.lanes import (
    LaneQuery,
    LaneUse,
    handling_chain,
    transit_chain,
)
from tracking_service.estimator.history.window import Blend, HistoryWindow, order_window


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
        prior = prior_hazard(self.prior, cfg, part)
        hazard = chain_hazard(chain, self.lanes.get, cfg.strength(part), prior)
        use = chain_use(chain, self.lanes.get)
        if part == "h":
            found = (sparse(hazard_to_pmf(powered(hazard, self.drift.handling))), use)
        else:
            found = (cdf(hazard_to_pmf(powered(hazard, self.drift.transit))), use)
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
        return order_window(
            self.blend(query),
            query,
            order_date,
            self.calendars,
            self.config,
            confidence,
            level,
            percentiles,
        )
