"""Figures of a backtest, computed from its rows: one row per evaluated order.

Pure (no I/O). The replay (`estimator.backtest.replay`) only states promises; everything it
reports is derived here from the rows, so a figure can be recomputed from `--orders` lines.

Every share or mean comes with a 90% interval from a block bootstrap over the weeks of the
order dates (`estimator.bootstrap`): orders of one week share their fate, so a month of a
few weeks does not look precise. Intervals are `[low, high]` (None when there are fewer
than two weeks), listed under `intervals` next to the figures, with the number of `weeks`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import Any, NamedTuple

from tracking_service.estimator.bootstrap import (
    LEVEL,
    RESAMPLES,
    Interval,
    ratio_interval,
    week_start,
    weekly_sums,
)

TRUNCATION_DAYS = 45  # orders placed this close to the data's last delivery are flagged


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One evaluated order: what was promised at every asked level, and what happened.

    Levels are the asked confidences rounded to 4 digits. `level_used` is the quantile level
    the window was read at after any correction of the asked one; `drift_*` the drift
    factors the model applied at the order instant (1.0: none).
    """

    key: str
    order_day: date  # local at the origin
    delivered_day: date  # local at the destination
    latest: Mapping[float, date]
    earliest: Mapping[float, date]
    level_used: Mapping[float, float]
    drift_handling: float = 1.0
    drift_transit: float = 1.0
    promised: date | None = None  # the promise recorded in the file (Olist's own)
    handoff_latest: date | None = None  # re-estimate at hand-off, headline level
    handoff_earliest: date | None = None
    truncated: bool = False  # placed within TRUNCATION_DAYS of the data's last delivery
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def month(self) -> str:
        return self.order_day.strftime("%Y-%m")


class Promise(NamedTuple):
    """One promise as the figures see it."""

    order_day: date
    earliest: date | None
    latest: date
    delivered_day: date


def level_key(level: float) -> str:
    return f"{level:g}"


def _at(rows: Iterable[OrderRow], level: float) -> list[Promise]:
    return [
        Promise(r.order_day, r.earliest.get(level), r.latest[level], r.delivered_day)
        for r in rows
        if level in r.latest
    ]


def _bounds(iv: Interval, digits: int) -> list[float | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return [r(iv.low), r(iv.high)]


# name, value of one promise, digits
_Measure = tuple[str, Callable[[Promise], float], int]
_ON_TIME: _Measure = ("on_time_rate", lambda p: float(p.delivered_day <= p.latest), 4)
_LEAD: _Measure = ("mean_promise_days", lambda p: float((p.latest - p.order_day).days), 3)
_EARLY: _Measure = ("mean_days_early", lambda p: float((p.latest - p.delivered_day).days), 3)


def _window_days(p: Promise) -> float:
    assert p.earliest is not None
    return float((p.latest - p.earliest).days)


_WINDOW: _Measure = ("mean_window_days", _window_days, 3)


def promise_figures(promises: Sequence[Promise], *, seed: int = 0) -> dict[str, Any]:
    """orders, on_time_rate, mean_promise_days, mean_window_days (None when a promise has
    no window), mean_days_early, and their `intervals` over `weeks`."""
    n = len(promises)
    windows = all(p.earliest is not None for p in promises)
    out: dict[str, Any] = {"orders": n}
    intervals: dict[str, list[float | None]] = {}
    weeks = 0
    for name, value, digits in (_ON_TIME, _LEAD, _WINDOW, _EARLY):
        if not n or (name == "mean_window_days" and not windows):
            out[name] = None
            continue
        out[name] = round(sum(value(p) for p in promises) / n, digits)
        iv = ratio_interval(
            weekly_sums(promises, lambda p: p.order_day, value), level=LEVEL, seed=seed
        )
        intervals[name] = _bounds(iv, digits)
        weeks = iv.weeks
    out["intervals"] = intervals
    out["weeks"] = weeks
    return out


def _draws(weeks: int, resamples: int, seed: int) -> list[list[int]]:
    """The weeks drawn by each resample, as `ratio_interval` draws them."""
    rng = random.Random(seed)
    return [[rng.randrange(weeks) for _ in range(weeks)] for _ in range(resamples)]


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    """The percentile interval at `level`, indexed as `ratio_interval` does."""
    values = sorted(values)
    tail = (1.0 - level) / 2.0
    last = len(values) - 1
    lo = values[min(last, max(0, int(tail * len(values))))]
    hi = values[min(last, max(0, int((1.0 - tail) * len(values)) - 1))]
    return lo, hi


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
    lead_at, note = _lead_at(points, baseline_rate, baseline_lead)
    if note is not None:
        out["note"] = note
    if lead_at is not None and baseline_lead:
        out["lead_at_baseline_on_time"] = round(lead_at, 3)
        out["ratio"] = round(lead_at / baseline_lead, 4)
    return out


def _lead_at(
    points: Sequence[tuple[float, float | None, float | None]],
    baseline_rate: float | None,
    baseline_lead: float | None,
) -> tuple[float | None, str | None]:
    usable = [(r, lead) for _, r, lead in points if r is not None and lead is not None]
    if baseline_rate is None or not baseline_lead or not usable:
        return None, None
    lead_at: float | None = None
    note: str | None = None
    if usable[0][0] >= baseline_rate:
        note = "on time more often than the baseline already at the lowest level"
        if usable[0][0] == baseline_rate:
            lead_at = usable[0][1]
    for (r0, l0), (r1, l1) in pairwise(usable):
        if lead_at is not None:
            break
        if r0 <= baseline_rate <= r1:
            lead_at = l0 if r1 == r0 else l0 + (l1 - l0) * (baseline_rate - r0) / (r1 - r0)
    if lead_at is None and note is None:
        note = "never as often on time as the baseline, even at the highest level"
    return lead_at, note


def frontier_interval(
    rows: Sequence[OrderRow],
    levels: Sequence[float],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Intervals of the frontier's lead and ratio: resample weeks of orders (the same weeks
    for every level and for the baseline) and recompute the frontier. `unmatched` is the
    share of resamples in which no pair of levels brackets the baseline's share."""
    mine = [r for r in rows if r.promised is not None and all(x in r.latest for x in levels)]
    by_week: dict[date, list[float]] = {}
    width = 2 * len(levels) + 3
    for r in mine:
        cell = by_week.setdefault(week_start(r.order_day), [0.0] * width)
        for i, x in enumerate(levels):
            latest = r.latest[x]
            cell[2 * i] += r.delivered_day <= latest
            cell[2 * i + 1] += (latest - r.order_day).days
        assert r.promised is not None
        cell[-3] += r.delivered_day <= r.promised
        cell[-2] += (r.promised - r.order_day).days
        cell[-1] += 1
    blocks = [cell for _, cell in sorted(by_week.items())]
    out: dict[str, Any] = {"lead_at_baseline_on_time": None, "ratio": None, "weeks": len(blocks)}
    if len(blocks) < 2:
        return out
    leads: list[float] = []
    ratios: list[float] = []
    for drawn in _draws(len(blocks), resamples, seed):
        total = [0.0] * width
        for w in drawn:
            for j, v in enumerate(blocks[w]):
                total[j] += v
        n = total[-1]
        points = [(x, total[2 * i] / n, total[2 * i + 1] / n) for i, x in enumerate(levels)]
        base_rate, base_lead = total[-3] / n, total[-2] / n
        lead_at, _ = _lead_at(points, base_rate, base_lead)
        if lead_at is not None and base_lead:
            leads.append(lead_at)
            ratios.append(lead_at / base_lead)
    if leads:
        lo, hi = _percentiles(leads, level)
        out["lead_at_baseline_on_time"] = [round(lo, 3), round(hi, 3)]
        lo, hi = _percentiles(ratios, level)
        out["ratio"] = [round(lo, 4), round(hi, 4)]
    out["unmatched"] = round(1.0 - len(leads) / resamples, 4)
    return out


class _Figures:
    """Figures of one set of rows, each level's computed once."""

    def __init__(self, rows: Sequence[OrderRow], seed: int) -> None:
        self.rows = rows
        self.seed = seed
        self._by_level: dict[float, dict[str, Any]] = {}

    def at(self, level: float) -> dict[str, Any]:
        found = self._by_level.get(level)
        if found is None:
            found = self._by_level[level] = promise_figures(_at(self.rows, level), seed=self.seed)
        return found

    def baseline(self) -> dict[str, Any] | None:
        promises = [
            Promise(r.order_day, None, r.promised, r.delivered_day)
            for r in self.rows
            if r.promised is not None
        ]
        return promise_figures(promises, seed=self.seed) if promises else None


def _core(
    figures: _Figures,
    confidence: float,
    calibration_levels: Sequence[float],
    frontier_levels: Sequence[float],
) -> dict[str, Any]:
    """The headline at `confidence`, the calibration, the baseline and the frontier."""
    main = round(confidence, 4)
    out = dict(figures.at(main))
    out["confidence"] = main
    out["calibration"] = {
        level_key(x): _calibration(figures.at(round(x, 4))) for x in calibration_levels
    }
    base = figures.baseline()
    frontier_points = [
        (x, figures.at(round(x, 4))["on_time_rate"], figures.at(round(x, 4))["mean_promise_days"])
        for x in frontier_levels
    ]
    out["frontier"] = frontier(
        frontier_points,
        None if base is None else base["on_time_rate"],
        None if base is None else base["mean_promise_days"],
    )
    for item, x in zip(out["frontier"]["levels"], frontier_levels, strict=True):
        found = figures.at(round(x, 4))["intervals"]
        item["intervals"] = {
            k: found[k] for k in ("on_time_rate", "mean_promise_days") if k in found
        }
    out["frontier"]["intervals"] = frontier_interval(
        figures.rows, [round(x, 4) for x in frontier_levels], seed=figures.seed
    )
    out["baseline"] = base
    return out


def _calibration(figures: Mapping[str, Any]) -> dict[str, Any]:
    """A level's calibration entry: its share and lead first (the keys clients read)."""
    out = {
        "on_time_rate": figures["on_time_rate"],
        "mean_promise_days": figures["mean_promise_days"],
    }
    out.update((k, v) for k, v in figures.items() if k not in out)
    return out


def _at_handoff(rows: Sequence[OrderRow], main: float, seed: int) -> dict[str, Any]:
    """The re-estimate at hand-off against the real delivery, and against the promise it
    replaces (the order-time promise at the headline level)."""
    handed = [r for r in rows if r.handoff_latest is not None]
    promises = [
        Promise(r.order_day, r.handoff_earliest, r.handoff_latest, r.delivered_day)
        for r in handed
        if r.handoff_latest is not None
    ]
    out = promise_figures(promises, seed=seed)
    with_original = [r for r in handed if main in r.latest]
    if not with_original:
        return out

    def change(r: OrderRow) -> float:
        assert r.handoff_latest is not None
        return float((r.handoff_latest - r.latest[main]).days)

    n = len(with_original)
    out["mean_change_vs_original_days"] = round(sum(change(r) for r in with_original) / n, 3)
    out["later_than_original_rate"] = round(sum(change(r) > 0 for r in with_original) / n, 4)
    for name, value, digits in (
        ("mean_change_vs_original_days", change, 3),
        ("later_than_original_rate", lambda r: float(change(r) > 0), 4),
    ):
        iv = ratio_interval(weekly_sums(with_original, lambda r: r.order_day, value), seed=seed)
        out["intervals"][name] = _bounds(iv, digits)
    return out


def summarize(
    rows: Sequence[OrderRow],
    *,
    confidence: float,
    calibration_levels: Sequence[float],
    frontier_levels: Sequence[float],
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of the backtest from its rows, shaped like `backtest --json`.

    `calibration_by_month` gives each calendar month of order dates at every calibration
    level; `truncation` the same headline, calibration and frontier without the orders
    flagged as right-truncated."""
    main = round(confidence, 4)
    figures = _Figures(rows, seed)
    out = _core(figures, confidence, calibration_levels, frontier_levels)
    out["at_handoff"] = _at_handoff(rows, main, seed)
    months: dict[str, list[OrderRow]] = {}
    for r in rows:
        months.setdefault(r.month, []).append(r)
    by_month: dict[str, Any] = {}
    calibration_by_month: dict[str, Any] = {}
    for month, mine in sorted(months.items()):
        month_figures = _Figures(mine, seed)
        by_month[month] = month_figures.at(main)
        calibration_by_month[month] = {
            level_key(x): _calibration(month_figures.at(round(x, 4))) for x in calibration_levels
        }
    out["by_month"] = by_month
    out["calibration_by_month"] = calibration_by_month
    kept = [r for r in rows if not r.truncated]
    flagged = len(rows) - len(kept)
    without = figures if not flagged else _Figures(kept, seed)
    out["truncation"] = {
        "days": TRUNCATION_DAYS,
        "flagged_orders": flagged,
        "without_flagged": _core(without, confidence, calibration_levels, frontier_levels),
    }
    return out


ORDER_COLUMNS = (
    "order_id",
    "order_date",
    "delivered_date",
    "file_promised_date",
    "truncated",
    "drift_handling",
    "drift_transit",
)


def order_lines(rows: Iterable[OrderRow], levels: Sequence[float]) -> Iterable[list[str]]:
    """`--orders` CSV: a header, then one line per order: its dates, the file's promise,
    the truncation flag, the drift factors, and at every level the promised latest date and
    the level used after any correction (empty where the order got no promise)."""
    keys = [round(x, 4) for x in levels]
    header = list(ORDER_COLUMNS)
    for x in keys:
        header += [f"latest_{level_key(x)}", f"level_used_{level_key(x)}"]
    yield header
    for r in rows:
        line = [
            r.key,
            r.order_day.isoformat(),
            r.delivered_day.isoformat(),
            "" if r.promised is None else r.promised.isoformat(),
            "1" if r.truncated else "0",
            f"{r.drift_handling:.4f}",
            f"{r.drift_transit:.4f}",
        ]
        for x in keys:
            latest = r.latest.get(x)
            used = r.level_used.get(x)
            line += [
                "" if latest is None else latest.isoformat(),
                "" if used is None else f"{used:.4f}",
            ]
        yield line
