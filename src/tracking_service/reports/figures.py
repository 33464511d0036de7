"""The promise report's figures, from ledger rows (pure).

"Are we keeping our word?" per group of orders (lane, carrier, option, origin, destination
region or order week): how many orders, how many are resolved, the share kept on time against
the confidence stated at checkout, how far ahead the promise was, and how early or late the
parcels came.

Resolved means the latest promised date has passed at the destination, so the outcome is final
(on time or late). The on-time share is over resolved orders only: counting an order as soon as
it arrives early, while its slower neighbours are still open, would flatter the recent weeks.
Its 90% interval is the weekly block bootstrap of `estimator.bootstrap` (orders grouped by the
week they were placed), so a group of a few weeks does not look precise; one week alone has no
interval. The stated confidence and the days early and late are of the same resolved orders; a
late order still on its way counts the days late so far (a lower bound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from tracking_service.estimator.bootstrap import Interval, ratio_interval, week_start, weekly_sums
from tracking_service.reports.ledger import LedgerRow

GroupBy = Literal["lane", "carrier", "option", "origin", "destination_region", "week"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
NO_CARRIER = "none"
"""The carrier key of orders with no parcel attached yet."""

CONFIDENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
"""Bins of the stated confidence for the reliability table: [0, 0.5), [0.5, 0.6) ... [0.95, 1]."""
LEAD_CAP = 21
"""Lead-time histograms count 0..LEAD_CAP-1 days one by one and LEAD_CAP or more together."""
WORST_LANES = 8
WORST_LANES_MIN_RESOLVED = 5
"""A lane needs this many resolved orders to be ranked among those that miss most."""


@dataclass(frozen=True, slots=True)
class GroupFigures:
    key: str
    orders: int
    on_time: int  # outcome counts over every order of the group
    late: int  # (a late order is always resolved)
    open: int
    resolved: int  # latest date passed: the orders the share and the means below are of
    on_time_share: Interval
    stated_confidence: float | None
    mean_promised_lead: float | None  # days, order date to latest promised date, every order
    mean_delivered_lead: float | None  # days, order date to delivery, resolved and delivered
    mean_days_early: float | None  # resolved on-time orders
    mean_days_late: float | None  # resolved late orders

    @property
    def miss_share(self) -> Interval:
        """1 - the on-time share, with its interval turned around."""
        s = self.on_time_share

        def flip(x: float | None) -> float | None:
            return None if x is None else 1.0 - x

        return Interval(flip(s.value), flip(s.high), flip(s.low), s.weeks)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "orders": self.orders,
            "on_time": self.on_time,
            "late": self.late,
            "open": self.open,
            "resolved": self.resolved,
            "on_time_share": self.on_time_share.as_json(),
            "stated_confidence": _round(self.stated_confidence, 4),
            "mean_promised_lead_days": _round(self.mean_promised_lead, 2),
            "mean_delivered_lead_days": _round(self.mean_delivered_lead, 2),
            "mean_days_early": _round(self.mean_days_early, 2),
            "mean_days_late": _round(self.mean_days_late, 2),
        }


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Resolved orders whose stated confidence lies in [low, high): what was said (the mean
    stated confidence) against what happened (the on-time share, with its interval)."""

    low: float
    high: float
    resolved: int
    stated: float
    observed: Interval

    def as_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "resolved": self.resolved,
            "stated": round(self.stated, 4),
            "observed": self.observed.as_json(),
        }


@dataclass(frozen=True, slots=True)
class LeadDistribution:
    """Resolved orders by lead in days (index = days; the last count is LEAD_CAP or more):
    promised (to the latest date) and delivered (to the delivery; `undelivered` were not)."""

    promised: tuple[int, ...]
    delivered: tuple[int, ...]
    undelivered: int

    def as_json(self) -> dict[str, Any]:
        return {
            "days": list(range(len(self.promised))),
            "promised": list(self.promised),
            "delivered": list(self.delivered),
            "undelivered": self.undelivered,
            "last_is_or_more": True,
        }


@dataclass(frozen=True, slots=True)
class PromiseReport:
    start: date
    end: date
    group_by: str
    as_of: datetime
    total: GroupFigures
    groups: tuple[GroupFigures, ...]
    reliability: tuple[ReliabilityBin, ...]
    weeks: tuple[GroupFigures, ...]
    leads: LeadDistribution
    worst_lanes: tuple[GroupFigures, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "group_by": self.group_by,
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "total": self.total.as_json(),
            "groups": [g.as_json() for g in self.groups],
            "reliability": [b.as_json() for b in self.reliability],
            "weeks": [w.as_json() for w in self.weeks],
            "leads": self.leads.as_json(),
            "worst_lanes": [g.as_json() for g in self.worst_lanes],
        }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _mean(values: Iterable[float]) -> float | None:
    total = count = 0.0
    for v in values:
        total += v
        count += 1
    return total / count if count else None


def group_key(row: LedgerRow, group_by: str) -> str:
    """The key of `row`'s group: the lane "origin -> US-CA", the carrier (`none` before any
    parcel), the option, the origin, the destination region, or the Monday of the order week."""
    if group_by == "lane":
        return row.lane
    if group_by == "carrier":
        return row.carrier or NO_CARRIER
    if group_by == "option":
        return row.option
    if group_by == "origin":
        return row.origin
    if group_by == "destination_region":
        return row.destination_region
    if group_by == "week":
        return week_start(row.order_date).isoformat()
    raise ValueError(f"unknown group_by {group_by!r}; choose one of {', '.join(GROUP_BY)}")


def share_interval(resolved: Sequence[LedgerRow], *, seed: int = 0) -> Interval:
    """The on-time share of resolved orders, with the weekly block bootstrap's 90% interval."""
    blocks = weekly_sums(
        resolved,
        lambda r: r.order_date,
        lambda r: 1.0 if r.outcome == "on_time" else 0.0,
    )
    return ratio_interval(blocks, seed=seed)


def figures(key: str, rows: Sequence[LedgerRow]) -> GroupFigures:
    """The figures of one group of ledger rows."""
    resolved = [r for r in rows if r.due]
    kept = [r for r in resolved if r.outcome == "on_time"]
    missed = [r for r in resolved if r.outcome == "late"]
    counts = {o: 0 for o in ("on_time", "late", "open")}
    for r in rows:
        counts[r.outcome] += 1
    return GroupFigures(
        key=key,
        orders=len(rows),
        on_time=counts["on_time"],
        late=counts["late"],
        open=counts["open"],
        resolved=len(resolved),
        on_time_share=share_interval(resolved),
        stated_confidence=_mean(r.confidence for r in resolved),
        mean_promised_lead=_mean(r.promised_lead for r in rows),
        mean_delivered_lead=_mean(
            r.delivered_lead for r in resolved if r.delivered_lead is not None
        ),
        mean_days_early=_mean(r.days_early for r in kept if r.days_early is not None),
        mean_days_late=_mean(r.days_late for r in missed if r.days_late is not None),
    )


def groups(rows: Iterable[LedgerRow], group_by: str) -> tuple[GroupFigures, ...]:
    """Figures per group: weeks in calendar order, other groups largest first."""
    by_key: dict[str, list[LedgerRow]] = {}
    for row in rows:
        by_key.setdefault(group_key(row, group_by), []).append(row)
    out = [figures(key, members) for key, members in by_key.items()]
    order: Callable[[GroupFigures], Any] = (
        (lambda g: g.key) if group_by == "week" else (lambda g: (-g.orders, g.key))
    )
    return tuple(sorted(out, key=order))


def reliability(rows: Iterable[LedgerRow]) -> tuple[ReliabilityBin, ...]:
    """Stated confidence against observed on-time share, per confidence bin with resolved
    orders (a confidence of 1.0 falls in the last bin)."""
    bins: list[list[LedgerRow]] = [[] for _ in CONFIDENCE_EDGES[:-1]]
    for row in rows:
        if not row.due:
            continue
        for i, high in enumerate(CONFIDENCE_EDGES[1:]):
            if row.confidence < high or i == len(bins) - 1:
                bins[i].append(row)
                break
    out = []
    for i, members in enumerate(bins):
        if members:
            stated = _mean(r.confidence for r in members)
            assert stated is not None
            out.append(
                ReliabilityBin(
                    CONFIDENCE_EDGES[i],
                    CONFIDENCE_EDGES[i + 1],
                    len(members),
                    stated,
                    share_interval(members),
                )
            )
    return tuple(out)


def leads(rows: Iterable[LedgerRow]) -> LeadDistribution:
    """Promised and delivered leads of resolved orders (see `LeadDistribution`)."""
    promised = [0] * (LEAD_CAP + 1)
    delivered = [0] * (LEAD_CAP + 1)
    undelivered = 0
    for row in rows:
        if not row.due:
            continue
        promised[min(max(row.promised_lead, 0), LEAD_CAP)] += 1
        lead = row.delivered_lead
        if lead is None:
            undelivered += 1
        else:
            delivered[min(max(lead, 0), LEAD_CAP)] += 1
    return LeadDistribution(tuple(promised), tuple(delivered), undelivered)


def worst_lanes(
    lanes: Iterable[GroupFigures],
    *,
    limit: int = WORST_LANES,
    min_resolved: int = WORST_LANES_MIN_RESOLVED,
) -> tuple[GroupFigures, ...]:
    """The lanes that miss most: highest late share among lanes with `min_resolved` resolved
    orders and at least one miss, then most misses."""
    ranked = [g for g in lanes if g.resolved >= min_resolved and g.late > 0]
    ranked.sort(key=lambda g: (g.on_time_share.value or 0.0, -g.late, g.key))
    return tuple(ranked[:limit])


def build_report(
    rows: Sequence[LedgerRow], *, start: date, end: date, group_by: str, as_of: datetime
) -> PromiseReport:
    """Every figure of the report for the ledger `rows` of [start, end] (see the module)."""
    if group_by not in GROUP_BY:
        raise ValueError(f"unknown group_by {group_by!r}; choose one of {', '.join(GROUP_BY)}")
    by_lane = groups(rows, "lane")
    return PromiseReport(
        start=start,
        end=end,
        group_by=group_by,
        as_of=as_of,
        total=figures("all", rows),
        groups=by_lane if group_by == "lane" else groups(rows, group_by),
        reliability=reliability(rows),
        weeks=groups(rows, "week"),
        leads=leads(rows),
        worst_lanes=worst_lanes(by_lane),
    )
