"""The re-estimate of a parcel the carrier has: at hand-off, after a later scan, on holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from history_helpers import SP, every_day, sp_history, sp_to_rio

from tracking_service.estimator.history import (
    Calendars,
    HistoryConfig,
    LaneHistory,
    LaneQuery,
    holiday_calendars,
)
from tracking_service.estimator.option_history import build_option_histories
from tracking_service.estimator.reestimate import reestimate
from tracking_service.estimator.rules import load_rules
from tracking_service.settings import bundled_rules_path

# plain counting: every record weighs the same, no drift signal
PLAIN = HistoryConfig(half_life_days=None, drift_window_days=None)
NOW = datetime(2024, 12, 1, tzinfo=UTC)


def learned(records: list, calendars: Calendars) -> tuple[LaneHistory, LaneQuery]:
    lanes = LaneHistory(PLAIN, calendars)
    for d in records:
        lanes.add(d)
    return lanes, LaneQuery.of(records[0])


@pytest.fixture(scope="module")
def two_or_six() -> tuple[LaneHistory, LaneQuery]:
    """Half the parcels 2 days in transit, half 6, on a calendar open every day."""
    return learned(sp_to_rio((2, 6), 200), every_day())


def at(lanes: LaneHistory, query: LaneQuery, handoff: datetime, **kw: object) -> tuple:
    blend = lanes.blend(query, NOW)
    assert blend is not None
    win = reestimate(
        blend,
        query,
        lanes.calendars,
        handoff=handoff,
        confidence=0.9,
        **kw,  # type: ignore[arg-type]
    )
    return None if win is None else (win.earliest, win.latest, dict(win.percentiles)[50])


HANDOFF = datetime(2024, 6, 3, 13, tzinfo=SP)  # Mon 3 Jun


def test_at_handoff_only_transit_remains(two_or_six: tuple[LaneHistory, LaneQuery]) -> None:
    lanes, query = two_or_six
    # 2 days for half, 6 for the other half: the window spans both, half arrive by day 2
    assert at(lanes, query, HANDOFF, origin_tz="America/Sao_Paulo") == (
        date(2024, 6, 5),
        date(2024, 6, 9),
        date(2024, 6, 5),
    )


def test_the_handoff_date_is_local_to_the_origin(
    two_or_six: tuple[LaneHistory, LaneQuery],
) -> None:
    lanes, query = two_or_six
    late_evening = datetime(2024, 6, 3, 22, 30, tzinfo=SP)  # already Tue 4 Jun in UTC
    assert at(lanes, query, late_evening, origin_tz="America/Sao_Paulo")[:2] == (
        date(2024, 6, 5),
        date(2024, 6, 9),
    )
    assert at(lanes, query, late_evening)[:2] == (date(2024, 6, 6), date(2024, 6, 10))  # UTC


def test_a_later_scan_cuts_off_the_days_that_have_passed(
    two_or_six: tuple[LaneHistory, LaneQuery],
) -> None:
    lanes, query = two_or_six
    kw = {"origin_tz": "America/Sao_Paulo", "dest_tz": "America/Sao_Paulo"}
    # seen in transit the next day: nothing is known yet that the hand-off did not say
    next_day = at(lanes, query, HANDOFF, last_scan=HANDOFF + timedelta(days=1), **kw)
    assert next_day == at(lanes, query, HANDOFF, **kw)
    # seen in transit on day 2 itself: it may still arrive that day
    day_two = at(lanes, query, HANDOFF, last_scan=HANDOFF + timedelta(days=2), **kw)
    assert day_two == (date(2024, 6, 5), date(2024, 6, 9), date(2024, 6, 5))
    # still in transit on day 3: it is one of the slow ones, the window is day 6
    day_three = at(lanes, query, HANDOFF, last_scan=HANDOFF + timedelta(days=3), **kw)
    assert day_three == (date(2024, 6, 9), date(2024, 6, 9), date(2024, 6, 9))


def test_a_scan_past_every_transit_known_has_no_window(
    two_or_six: tuple[LaneHistory, LaneQuery],
) -> None:
    lanes, query = two_or_six
    kw = {"origin_tz": "America/Sao_Paulo", "dest_tz": "America/Sao_Paulo"}
    assert at(lanes, query, HANDOFF, last_scan=HANDOFF + timedelta(days=7), **kw) is None


def test_holidays_in_the_window_are_not_delivery_days() -> None:
    # handed over on Mondays, delivered on Wednesdays: 2 delivery days on a Mon-Fri calendar
    records = sp_to_rio((2,), 45, first_order=datetime(2024, 1, 7, 13, tzinfo=SP), every=WEEK)
    lanes, query = learned(records, holiday_calendars())
    kw = {"origin_tz": "America/Sao_Paulo", "dest_tz": "America/Sao_Paulo"}
    christmas_week = datetime(2024, 12, 23, 13, tzinfo=SP)  # Mon 23 Dec; Wed 25 is Christmas
    assert at(lanes, query, christmas_week, **kw)[1] == date(2024, 12, 26)
    # handed over on Christmas Day: counts from the next open day, Thu 26 Dec
    assert at(lanes, query, christmas_week + timedelta(days=2), **kw)[1] == date(2024, 12, 30)
    # a scan on Christmas Day (closed) waits for the next delivery day
    scanned = at(lanes, query, christmas_week, last_scan=christmas_week + timedelta(days=2), **kw)
    assert scanned is not None and scanned[1] == date(2024, 12, 26)


WEEK = timedelta(days=7)


def test_the_service_reestimates_an_option_in_its_zone() -> None:
    rules = load_rules(bundled_rules_path("br_shop.toml"))
    histories = build_option_histories(rules, sp_history(), now=NOW, warm_up=False)
    zone = next(z for (option, z) in histories.models if option == "standard")
    query = LaneQuery("BR", "SP", "03178", "BR", "RJ", "20040", origin_id="sp-main")
    handoff = datetime(2024, 11, 4, 15, tzinfo=SP)  # Mon 4 Nov
    kw = {"origin_tz": "America/Sao_Paulo", "dest_tz": "America/Sao_Paulo"}
    win = histories.reestimate("standard", zone, query, handoff=handoff, confidence=0.9, **kw)
    assert win is not None
    assert win.confidence == 0.9
    assert date(2024, 11, 5) <= win.earliest <= win.latest
    later = histories.reestimate(
        "standard", zone, query, handoff=handoff, confidence=0.9,
        last_scan=handoff + timedelta(days=3), **kw,
    )  # fmt: skip
    assert later is not None
    assert later.earliest >= date(2024, 11, 7)
    assert later.earliest > win.earliest
    assert (
        histories.reestimate("express", "nowhere", query, handoff=handoff, confidence=0.9) is None
    )
