"""Keeping the stated confidence true: recalibrate the quantile level from recent promises.

Pure (no I/O). Every promise stores the predictive distribution of its delivery date when it
is made (`PromiseOutcome.cdf`, from `window.delivery_cdf`): recomputing it later from the
current model would leak what was learned since. A promise read at level q is on time exactly
when its delivery's POSITION, U = F(day before delivery), is below q (the latest date at q is
the first day with F >= q). So the observed on-time share at any level q is G(q) = P(U < q),
one curve for every level, and the level that keeps an asked confidence p true is G^-1(p).

G is estimated from the promises made in the last `window_days` (open and closed alike): a
delivered promise is an event at its position; an open one is right-censored at F(day before
today) on the destination's delivery calendar (it is known not to have arrived by the end of
yesterday there; closed days carry the previous delivery day's F, so no off-by-one at a
weekend). The product-limit (Kaplan-Meier) estimate uses both, so the recent, mostly open
promises already speak for the low levels while the high levels lean on the promises about
one lead time old.

Then, in that order:

* tail: beyond the last delivered position the estimate knows nothing (with a window of a
  few weeks the product-limit curve often ends below 0.95: the promises whose high positions
  would show are still open); `tail="model"` spreads what is left uniformly up to 1 (the
  model is trusted where nothing was seen), `tail="hold"` keeps the last observed gap between
  level and share;
* shrinkage toward the asked level: weight n / (n + prior_promises), n the promises in the
  window, so a quiet option keeps its model's own level;
* bound: at most `bound` from the asked level, within [floor, ceiling].

Computed off the request path (with each history rebuild in the service, on the replay's
clock in the backtest); `Recalibration.level` is a short search.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tracking_service.timezones import zone

TAILS = ("model", "hold")


@dataclass(frozen=True, slots=True)
class PromiseOutcome:
    """One promise as the recalibration reads it: its distribution when made, and its fate."""

    made_at: datetime  # UTC instant the promise was made
    start: date  # first destination-local date of `cdf`
    cdf: tuple[float, ...]  # P(delivered by start + k days), k = 0..; 1 after its end
    delivered_on: date | None  # destination-local delivery date; None while open
    dest_tz: str | None
    option: str = ""  # one recalibration per option in the service

    def at(self, day: date) -> float:
        """F(day): the promised probability of a delivery by the end of `day`."""
        k = (day - self.start).days
        if k < 0:
            return 0.0
        return self.cdf[k] if k < len(self.cdf) else 1.0

    def position(self, now: datetime) -> tuple[float, bool]:
        """(position, delivered) as known at `now`: F(day before delivery) for a delivery
        known by today (destination local), else F(day before today), censored."""
        today = now.astimezone(zone(self.dest_tz or "UTC")).date()
        if self.delivered_on is not None and self.delivered_on <= today:
            return self.at(self.delivered_on - timedelta(days=1)), True
        return self.at(today - timedelta(days=1)), False


@dataclass(frozen=True, slots=True)
class RecalibrationConfig:
    """How the level is recalibrated. One configuration, fixed before any replay."""

    # chosen on the earlier splits (Jun-Aug and Sep-Nov 2017; the README's backtest section):
    # on Olist's volume (about 200 promises in 3 weeks) the moves a lighter shrinkage made did
    # not foretell the next weeks' misses, so a shop must have about 1000 promises in the
    # window before the observed curve speaks as much as its model
    window_days: float = 21.0  # promises made this many days before `now` are read
    prior_promises: float = 1000.0  # shrinkage toward the asked level: weight n / (n + this)
    bound: float = 0.10  # at most this far from the asked level
    tail: str = "model"  # beyond the last observed position (see the module docstring)
    floor: float = 0.5
    ceiling: float = 0.995

    def __post_init__(self) -> None:
        if self.window_days <= 0:
            raise ValueError("window_days must be positive")
        if self.prior_promises < 0 or self.bound < 0:
            raise ValueError("prior_promises and bound must be >= 0")
        if self.tail not in TAILS:
            raise ValueError(f"tail must be one of {', '.join(TAILS)}")
        if not 0 < self.floor <= self.ceiling < 1:
            raise ValueError("floor and ceiling must satisfy 0 < floor <= ceiling < 1")


@dataclass(frozen=True, slots=True)
class Recalibration:
    """The observed on-time share by level of recent promises, and the level to use.

    `levels`/`shares` are the knots of G (ascending, see `product_limit`): at level
    `levels[i]` the promises were on time `shares[i]` of the time; G is linear between knots,
    from (0, 0), and follows the tail rule after the last ("model": on to (1, 1), so the last
    step and any censored share left are spread evenly). No knot (or weight 0): the asked
    level is used as is.
    """

    levels: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()
    weight: float = 0.0  # shrinkage weight of the observed curve (0: the asked level)
    bound: float = 0.10
    tail: str = "model"
    floor: float = 0.5
    ceiling: float = 0.995
    promises: int = 0  # promises in the window
    delivered: int = 0  # of which delivered (the others censored)

    def on_time_share(self, level: float) -> float:
        """G(level): the observed share on time at `level` (the tail rule past the knots)."""
        if not self.levels:
            return level
        qs, gs = self.levels, self.shares
        if level >= qs[-1]:
            q, g = qs[-1], gs[-1]
            if self.tail == "hold":
                return min(1.0, level - (q - g))
            return 1.0 if q >= 1.0 else g + (1.0 - g) * (level - q) / (1.0 - q)
        i = bisect_left(qs, level)
        q0, g0 = (0.0, 0.0) if i == 0 else (qs[i - 1], gs[i - 1])
        q1, g1 = qs[i], gs[i]
        return g0 if q1 == q0 else g0 + (g1 - g0) * (level - q0) / (q1 - q0)

    def raw_level(self, asked: float) -> float:
        """G^-1(asked): the level at which the recent promises were on time `asked` of the
        time, before shrinkage and bounds."""
        if not self.levels:
            return asked
        qs, gs = self.levels, self.shares
        q, g = qs[-1], gs[-1]
        if asked > g:
            if self.tail == "hold" or g >= 1.0:
                return asked + (q - g)
            return q + (asked - g) * (1.0 - q) / (1.0 - g)
        i = bisect_left(gs, asked)
        q0, g0 = (0.0, 0.0) if i == 0 else (qs[i - 1], gs[i - 1])
        q1, g1 = qs[i], gs[i]
        return q1 if g1 == g0 else q0 + (q1 - q0) * (asked - g0) / (g1 - g0)

    def level(self, asked: float) -> float:
        """The quantile level to read for an asked confidence."""
        if not self.levels or self.weight <= 0:
            return asked
        moved = self.weight * (self.raw_level(asked) - asked)
        moved = max(-self.bound, min(self.bound, moved))
        return min(self.ceiling, max(self.floor, asked + moved))


IDENTITY = Recalibration()


def product_limit(positions: Iterable[tuple[float, bool]]) -> tuple[tuple[float, float], ...]:
    """Kaplan-Meier estimate of G(q) = P(U < q) from (position, delivered) pairs: the knots
    (u, G(u)) at every delivered position u, the share on time when the level is exactly u.

    G is a step function, flat on (u, next u] at P(U <= u); the line through the knots is
    below it, so its inverse is the knot's own level when asked a knot's share and otherwise
    at most one step high. A censored position c means U >= c: at risk at c and below
    (censoring after events at the same value)."""
    ordered = sorted(positions, key=lambda x: (x[0], x[1] is False))
    at_risk = len(ordered)
    survival = 1.0
    knots: list[tuple[float, float]] = []
    i = 0
    while i < len(ordered):
        u = ordered[i][0]
        events = censored = 0
        while i < len(ordered) and ordered[i][0] == u:
            if ordered[i][1]:
                events += 1
            else:
                censored += 1
            i += 1
        if events:
            knots.append((u, 1.0 - survival))
            survival *= 1.0 - events / at_risk
        at_risk -= events + censored
    return tuple(knots)


def recalibrate(
    promises: Iterable[PromiseOutcome], now: datetime, config: RecalibrationConfig
) -> Recalibration:
    """The recalibration as known at `now` from the promises made in the window before it
    (only what is known then: a delivery after today is not)."""
    since = now - timedelta(days=config.window_days)
    positions = [p.position(now) for p in promises if since < p.made_at <= now]
    knots = product_limit(positions)
    if not knots:
        return IDENTITY
    n = len(positions)
    weight = n / (n + config.prior_promises) if n + config.prior_promises > 0 else 0.0
    return Recalibration(
        levels=tuple(q for q, _ in knots),
        shares=tuple(g for _, g in knots),
        weight=weight,
        bound=config.bound,
        tail=config.tail,
        floor=config.floor,
        ceiling=config.ceiling,
        promises=n,
        delivered=sum(1 for _, done in positions if done),
    )
