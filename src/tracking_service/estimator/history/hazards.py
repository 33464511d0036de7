"""Discrete-time hazards: a lane's evidence, its blend with its parent, and conversions.

A hazard h(k) is the share, of the parcels still waiting after k days, done on day k. A lane
is blended with its parent day by day as a Beta prior of `k` pseudo-records:

    h_lane(k) = (done(k) + k * h_parent(k)) / (at_risk(k) + k)

Under the root lane sits the rules' own min-max (`RulesPrior`), uniform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracking_service.estimator.history.config import HistoryConfig, LaneKey
from tracking_service.estimator.history.lanes import LaneUse, describe_lane


@dataclass(frozen=True, slots=True)
class RulesPrior:
    """The shipping option's own ranges: uniform over min..max, the root's parent."""

    handling_min: int
    handling_max: int
    transit_min: int
    transit_max: int


def prior_hazard(prior: RulesPrior | None, cfg: HistoryConfig, part: str) -> list[float] | None:
    """The rules' min-max of a part ("h" or "t") as a hazard: the root lane's parent."""
    if prior is None:
        return None
    if part == "h":
        pmf = _uniform(prior.handling_min, prior.handling_max, cfg.max_handling_days + 1)
    else:
        pmf = _uniform(prior.transit_min, prior.transit_max, cfg.max_transit_days + 1)
    return pmf_to_hazard(pmf)


def _uniform(lo: int, hi: int, size: int) -> list[float]:
    lo, hi = max(0, min(lo, size - 1)), max(0, min(hi, size - 1))
    lo, hi = min(lo, hi), max(lo, hi)
    p = 1.0 / (hi - lo + 1)
    return [p if lo <= i <= hi else 0.0 for i in range(size)]


@dataclass(frozen=True, slots=True)
class LaneCounts:
    """A lane's own evidence at one instant: recency-weighted done and at-risk per day."""

    done: tuple[float, ...]
    at_risk: tuple[float, ...]  # delivered or in flight, still waiting at the start of the day
    use: LaneUse | None  # records and weight (lane name left empty); None: no delivered record


def _lane_hazard(counts: LaneCounts, k: float, parent: Sequence[float] | None) -> list[float]:
    """The lane's hazard blended with its parent's: a Beta prior of `k` pseudo-records."""
    done, at_risk = counts.done, counts.at_risk
    size = len(done)
    if parent is None:
        out = [done[d] / at_risk[d] if at_risk[d] > 0 else 1.0 for d in range(size)]
    else:
        out = [(done[d] + k * parent[d]) / (at_risk[d] + k) for d in range(size)]
    out[-1] = 1.0
    return out


def chain_hazard(
    chain: Sequence[LaneKey],
    counts_of: Callable[[LaneKey], LaneCounts | None],
    k: float,
    prior: list[float] | None,
    cache: dict[tuple[LaneKey, ...], list[float]] | None = None,
) -> list[float]:
    """The hazard of the chain's most specific lane, blended down from the root (the rules'
    prior under it). Lanes never seen are skipped; `cache` shares blends by chain suffix."""
    hazard = prior
    for i in range(len(chain) - 1, -1, -1):
        counts = counts_of(chain[i])
        if counts is None:
            continue
        suffix = tuple(chain[i:])
        found = cache.get(suffix) if cache is not None else None
        if found is None:
            found = _lane_hazard(counts, k, hazard)
            if cache is not None:
                cache[suffix] = found
        hazard = found
    return hazard if hazard is not None else [1.0]


def chain_use(
    chain: Sequence[LaneKey], counts_of: Callable[[LaneKey], LaneCounts | None]
) -> LaneUse:
    """The most specific lane of the chain with delivered records (what the estimate says)."""
    for key in chain:
        counts = counts_of(key)
        if counts is not None and counts.use is not None:
            return LaneUse(describe_lane(key), counts.use.records, counts.use.weight, key)
    return LaneUse("rules", 0, 0.0)


def is_handling(key: LaneKey) -> bool:
    kind = key[0] or ""
    return kind == "handling" or kind.startswith("h:")


def hazard_to_pmf(hazard: Sequence[float]) -> list[float]:
    out = []
    alive = 1.0
    for h in hazard:
        out.append(alive * h)
        alive *= 1.0 - h
    out[-1] += alive
    return out


def pmf_to_hazard(pmf: Sequence[float]) -> list[float]:
    out = []
    alive = 1.0
    for p in pmf:
        out.append(min(1.0, p / alive) if alive > 1e-12 else 1.0)
        alive -= p
    out[-1] = 1.0
    return out


def sparse(pmf: Sequence[float]) -> tuple[tuple[int, float], ...]:
    total = sum(pmf)
    if total <= 0:
        return ((0, 1.0),)
    return tuple((i, p / total) for i, p in enumerate(pmf) if p > 1e-9)


def cdf(pmf: Sequence[float]) -> tuple[float, ...]:
    total = sum(pmf) or 1.0
    out, acc = [], 0.0
    for p in pmf:
        acc += p
        out.append(min(1.0, acc / total))
    out[-1] = 1.0
    return tuple(out)


def powered(hazard: Sequence[float], theta: float) -> list[float]:
    """The hazard whose survival is the original's to the power `theta`."""
    if theta == 1.0:
        return list(hazard)
    out = [1.0 - (1.0 - min(1.0, max(0.0, h))) ** theta for h in hazard]
    out[-1] = 1.0
    return out


def cumulative_hazard(hazard: Sequence[float]) -> list[float]:
    """Expected done events of one parcel at risk on days 0..k (Nelson-Aalen style)."""
    out, acc = [], 0.0
    for h in hazard:
        acc += h
        out.append(acc)
    return out
