"""Intervals for figures of promises: a block bootstrap over weeks.

Promises made in the same week share their fate (a strike, a peak, one carrier's bad week), so
resampling single orders would make a small group look precise. Resampling whole weeks keeps
that dependence: a figure is a ratio of sums (on-time orders over orders, promised days over
orders), each week contributes its sums, and the interval is the percentile interval of the
ratio over resampled sets of weeks. Pure and deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

T = TypeVar("T")

RESAMPLES = 1000
LEVEL = 0.9


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure with its bootstrap interval; `low`/`high` None when there are too few weeks
    (fewer than two) to say anything about its spread."""

    value: float | None
    low: float | None
    high: float | None
    weeks: int

    def as_json(self, digits: int = 4) -> dict[str, float | int | None]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, digits)

        return {
            "value": r(self.value),
            "low": r(self.low),
            "high": r(self.high),
            "weeks": self.weeks,
        }


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week: the block a promise belongs to."""
    return day - timedelta(days=day.weekday())


def weekly_sums(
    items: Iterable[T], week_of: Callable[[T], date], value: Callable[[T], float]
) -> list[tuple[float, float]]:
    """Per week (in week order): (sum of `value`, number of items)."""
    sums: dict[date, list[float]] = {}
    for item in items:
        cell = sums.setdefault(week_start(week_of(item)), [0.0, 0.0])
        cell[0] += value(item)
        cell[1] += 1.0
    return [(s, n) for _, (s, n) in sorted(sums.items())]


def ratio_interval(
    blocks: Sequence[tuple[float, float]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """sum(numerators) / sum(denominators), with the percentile interval at `level` of that
    ratio over `resamples` draws of as many blocks as there are, with replacement."""
    blocks = [b for b in blocks if b[1] > 0]
    total_n = sum(n for _, n in blocks)
    if not blocks or total_n <= 0:
        return Interval(None, None, None, 0)
    value = sum(s for s, _ in blocks) / total_n
    if len(blocks) < 2:
        return Interval(value, None, None, len(blocks))
    rng = random.Random(seed)
    k = len(blocks)
    ratios: list[float] = []
    for _ in range(resamples):
        s = n = 0.0
        for _ in range(k):
            bs, bn = blocks[rng.randrange(k)]
            s += bs
            n += bn
        ratios.append(s / n)
    ratios.sort()
    tail = (1.0 - level) / 2.0
    lo = ratios[min(len(ratios) - 1, max(0, int(tail * len(ratios))))]
    hi = ratios[min(len(ratios) - 1, max(0, int((1.0 - tail) * len(ratios)) - 1))]
    return Interval(value, lo, hi, k)
