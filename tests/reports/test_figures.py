"""The report's figures from ledger rows (pure)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tracking_service.reports.figures import (
    GROUP_BY,
    LEAD_CAP,
    build_report,
    figures,
    group_key,
    groups,
    leads,
    reliability,
    share_interval,
    worst_lanes,
)
from tracking_service.reports.ledger import outcome

from .rows import AS_OF, TODAY, row, weeks_of

MONDAY = date(2025, 9, 1)


# --- one promise's outcome ---------------------------------------------------------------------


def test_on_time_late_and_open() -> None:
    latest = date(2025, 11, 20)
    assert outcome(latest, latest, TODAY) == "on_time"  # on the latest day itself
    assert outcome(latest, latest - timedelta(days=3), TODAY) == "on_time"
    assert outcome(latest, latest + timedelta(days=1), TODAY) == "late"
    assert outcome(latest, None, latest + timedelta(days=1)) == "late"  # passed, not delivered
    assert outcome(latest, None, latest) == "open"  # the latest day is not over


def test_days_early_and_late_of_a_row() -> None:
    early = row(date(2025, 11, 3), lead=5, took=2)
    assert (early.outcome, early.days_early, early.days_late) == ("on_time", 3, None)
    assert (early.promised_lead, early.delivered_lead) == (5, 2)
    late = row(date(2025, 11, 3), lead=5, took=8)
    assert (late.outcome, late.days_early, late.days_late) == ("late", None, 3)
    # still on its way on 1 Dec, promised by 8 Nov: late by the days that have ended since
    lost = row(date(2025, 11, 3), lead=5, took=None)
    assert (lost.outcome, lost.days_late, lost.delivered_lead) == ("late", 22, None)


# --- a group ------------------------------------------------------------------------------------


def test_only_orders_past_their_latest_date_count_in_the_share() -> None:
    """An order delivered early while its latest date is still ahead is on time but not yet
    resolved: counting it would flatter the recent weeks against the slower ones still open."""
    old = [row(date(2025, 11, 3), took=3), row(date(2025, 11, 3), took=6)]
    recent_early = row(TODAY - timedelta(days=1), lead=4, took=0)
    recent_open = row(TODAY - timedelta(days=1), lead=4, took=None)
    g = figures("all", [*old, recent_early, recent_open])
    assert (g.orders, g.on_time, g.late, g.open, g.resolved) == (4, 2, 1, 1, 2)
    assert g.on_time_share.value == 0.5


def test_means_of_a_group() -> None:
    rows = [
        row(date(2025, 11, 3), lead=4, took=2, confidence=0.8),  # 2 days early
        row(date(2025, 11, 3), lead=4, took=4, confidence=0.9),  # on the day
        row(date(2025, 11, 3), lead=6, took=9, confidence=1.0),  # 3 days late
        row(TODAY, lead=10, took=None, confidence=0.5),  # open: only in the promised lead
    ]
    g = figures("all", rows)
    assert g.stated_confidence == pytest.approx(0.9)  # of the three resolved
    assert g.mean_promised_lead == pytest.approx((4 + 4 + 6 + 10) / 4)
    assert g.mean_delivered_lead == pytest.approx((2 + 4 + 9) / 3)
    assert g.mean_days_early == pytest.approx(1.0)
    assert g.mean_days_late == pytest.approx(3.0)
    assert g.on_time_share.value == pytest.approx(2 / 3)


def test_a_group_with_nothing_resolved_has_no_share() -> None:
    g = figures("all", [row(TODAY, lead=3, took=None)])
    assert g.resolved == 0
    assert g.on_time_share.value is None
    assert g.stated_confidence is None and g.mean_days_late is None
    assert g.mean_promised_lead == 3


# --- the interval -----------------------------------------------------------------------------


def test_one_week_has_a_share_but_no_interval() -> None:
    i = share_interval(weeks_of(MONDAY, [(8, 2)]))
    assert (i.value, i.low, i.high, i.weeks) == (0.8, None, None, 1)


def test_the_interval_holds_the_share_and_narrows_with_more_weeks() -> None:
    pattern = [(10, 0), (5, 5), (8, 2), (9, 1)]
    few = share_interval(weeks_of(MONDAY, pattern))
    many = share_interval(weeks_of(MONDAY, pattern * 6))
    assert few.value == many.value == pytest.approx(0.8)
    for i in (few, many):
        assert i.low is not None and i.high is not None
        assert i.low <= 0.8 <= i.high
    assert few.weeks == 4 and many.weeks == 24
    assert (many.high - many.low) < (few.high - few.low)  # type: ignore[operator]


def test_weeks_are_the_blocks_not_orders() -> None:
    """Many orders in two weeks of opposite fortune are as uncertain as two orders: the
    interval spans both weeks' shares (a bootstrap over single orders would be narrow)."""
    i = share_interval(weeks_of(MONDAY, [(100, 0), (50, 50)]))
    assert i.weeks == 2
    assert i.low == pytest.approx(0.5) and i.high == pytest.approx(1.0)


def test_the_interval_is_the_same_every_time() -> None:
    rows = weeks_of(MONDAY, [(7, 3), (9, 1), (4, 4), (10, 2)])
    assert share_interval(rows) == share_interval(list(reversed(rows)))


# --- groups -----------------------------------------------------------------------------------


def test_every_group_by_has_its_key() -> None:
    r = row(date(2025, 11, 6), destination_region="US-TX", option="express", origin="nj-1")
    assert {g: group_key(r, g) for g in GROUP_BY} == {
        "lane": "nj-1 -> US-TX",
        "carrier": "usps",
        "option": "express",
        "origin": "nj-1",
        "destination_region": "US-TX",
        "week": "2025-11-03",  # the Monday of the order's week
    }
    assert group_key(row(date(2025, 11, 6), carrier=None), "carrier") == "none"
    with pytest.raises(ValueError, match="lane, carrier, option, origin"):
        group_key(r, "postal_code")


@pytest.mark.parametrize("group_by", GROUP_BY)
def test_groups_split_every_order_once(group_by: str) -> None:
    rows = [
        row(date(2025, 10, 6), took=3, destination_region="US-TX", carrier="ups"),
        row(date(2025, 10, 14), took=3, option="express", origin="nj-1"),
        row(date(2025, 10, 14), took=9),
        row(date(2025, 10, 22), took=2, destination_region="US-NY"),
    ]
    out = groups(rows, group_by)
    assert sum(g.orders for g in out) == len(rows)
    assert len({g.key for g in out}) == len(out)
    assert {g.key for g in out} == {group_key(r, group_by) for r in rows}


def test_weeks_come_in_calendar_order_and_others_largest_first() -> None:
    rows = [row(date(2025, 10, 20)), row(date(2025, 10, 6), destination_region="US-TX")]
    rows += [row(date(2025, 10, 13), destination_region="US-TX")]
    assert [g.key for g in groups(rows, "week")] == ["2025-10-06", "2025-10-13", "2025-10-20"]
    assert [g.key for g in groups(rows, "destination_region")] == ["US-TX", "US-CA"]


# --- reliability, leads, worst lanes ----------------------------------------------------------


def test_reliability_bins_by_stated_confidence() -> None:
    rows = [
        row(date(2025, 11, 3), took=3, confidence=0.9),
        row(date(2025, 11, 3), took=9, confidence=0.92),
        row(date(2025, 11, 3), took=3, confidence=0.85),
        row(date(2025, 11, 3), took=3, confidence=1.0),
        row(TODAY, took=None, confidence=0.6),  # open: in no bin
    ]
    bins = reliability(rows)
    assert [(b.low, b.high, b.resolved) for b in bins] == [
        (0.85, 0.9, 1),
        (0.9, 0.95, 2),
        (0.95, 1.0, 1),
    ]
    assert bins[1].stated == pytest.approx(0.91)
    assert bins[1].observed.value == 0.5


def test_lead_histograms_of_resolved_orders() -> None:
    rows = [
        row(date(2025, 10, 1), lead=3, took=2),
        row(date(2025, 10, 1), lead=3, took=5),
        row(date(2025, 10, 1), lead=40, took=None, today=date(2025, 12, 1)),  # 21+ days
        row(TODAY, lead=3, took=None),  # open: not counted
    ]
    d = leads(rows)
    assert len(d.promised) == LEAD_CAP + 1
    assert d.promised[3] == 2 and d.promised[LEAD_CAP] == 1 and sum(d.promised) == 3
    assert d.delivered[2] == 1 and d.delivered[5] == 1 and sum(d.delivered) == 2
    assert d.undelivered == 1


def test_worst_lanes_rank_by_late_share_among_lanes_with_enough_orders() -> None:
    def lane(region: str, kept: int, late: int) -> list:  # type: ignore[type-arg]
        return weeks_of(MONDAY, [(kept, late)], destination_region=region)

    rows = (
        lane("US-TX", 6, 4)  # 40%
        + lane("US-WA", 3, 2)  # 40%, fewer misses
        + lane("US-NY", 9, 1)  # 10%
        + lane("US-FL", 10, 0)  # never misses: not shown
        + lane("US-AK", 1, 3)  # 75% but only 4 resolved
    )
    ranked = worst_lanes(groups(rows, "lane"))
    assert [g.key for g in ranked] == [
        "nyc-queens -> US-TX",
        "nyc-queens -> US-WA",
        "nyc-queens -> US-NY",
    ]
    assert ranked[0].miss_share.value == pytest.approx(0.4)
    assert len(worst_lanes(groups(rows, "lane"), limit=1)) == 1


# --- the report ---------------------------------------------------------------------------------


def test_the_report_as_json() -> None:
    rows = weeks_of(MONDAY, [(9, 1), (8, 2), (10, 0)], carrier="ups")
    report = build_report(
        rows, start=MONDAY, end=MONDAY + timedelta(days=20), group_by="carrier", as_of=AS_OF
    )
    out = report.as_json()
    assert out["from"] == "2025-09-01" and out["to"] == "2025-09-21"
    assert out["group_by"] == "carrier" and out["as_of"] == "2025-12-01T17:00:00Z"
    assert [g["key"] for g in out["groups"]] == ["ups"]
    total = out["total"]
    assert total["orders"] == total["resolved"] == 30
    assert total["on_time_share"]["value"] == 0.9
    assert total["on_time_share"]["weeks"] == 3
    assert total["stated_confidence"] == 0.9
    assert [w["key"] for w in out["weeks"]] == ["2025-09-01", "2025-09-08", "2025-09-15"]
    assert out["reliability"][0]["resolved"] == 30
    assert sum(out["leads"]["promised"]) == 30
    assert out["worst_lanes"][0]["key"] == "nyc-queens -> US-CA"


def test_an_unknown_group_by_is_refused() -> None:
    with pytest.raises(ValueError, match="destination_region, week"):
        build_report([], start=MONDAY, end=MONDAY, group_by="zone", as_of=AS_OF)


def test_an_empty_report() -> None:
    out = build_report([], start=MONDAY, end=MONDAY, group_by="lane", as_of=AS_OF).as_json()
    assert out["total"]["orders"] == 0 and out["total"]["on_time_share"]["value"] is None
    assert out["groups"] == out["weeks"] == out["reliability"] == out["worst_lanes"] == []
