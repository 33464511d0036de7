"""How the history model learns: one configuration, fixed before any replay or build."""

from __future__ import annotations

from dataclasses import dataclass

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
    # recent cohorts it reads (None: off), its pseudo-count toward "no drift", its bounds.
    # Handling too: on the earlier splits (Jun-Aug, Sep-Nov 2017) it cost no sharpness and
    # brought each month closer to its level (the README's backtest section)
    drift_parts: tuple[str, ...] = ("handling", "transit")
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
