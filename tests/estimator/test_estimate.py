"""The promise on real dates: cutoffs, DST in both hemispheres, holidays, pre-orders."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from history_helpers import delivery, sp_history

from tracking_service.estimator.estimate import (
    Destination,
    EstimateInputError,
    Estimator,
    Item,
    LaneBasis,
    OptionEstimate,
    delivery_window,
    history_day,
    processing_day,
)
from tracking_service.estimator.history import LaneQuery
from tracking_service.estimator.option_history import OptionHistories, build_option_histories
from tracking_service.estimator.rules import load_rules, parse_rules
from tracking_service.settings import bundled_rules_path

NY = ZoneInfo("America/New_York")
SP = ZoneInfo("America/Sao_Paulo")
MANHATTAN = Destination("US", "10001")
RIO = Destination("BR", "20040-020")


@pytest.fixture(scope="module")
def us() -> Estimator:
    return Estimator(load_rules(bundled_rules_path("us_shop.toml")))


@pytest.fixture(scope="module")
def br() -> Estimator:
    return Estimator(load_rules(bundled_rules_path("br_shop.toml")))


def by_option(estimator: Estimator, when: datetime, dest: Destination, **kw: object) -> dict:
    result = estimator.estimate(destination=dest, order_time=when, **kw)  # type: ignore[arg-type]
    return {e.option: e for e in result.estimates}


def window(e: OptionEstimate) -> tuple[date, date, date]:
    return e.ship_date, e.earliest, e.latest


# --- cutoff ---------------------------------------------------------------------------------


def test_cutoff_to_the_second(us: Estimator) -> None:
    before = by_option(us, datetime(2024, 3, 5, 13, 59, 59, tzinfo=NY), MANHATTAN)["next-day"]
    at = by_option(us, datetime(2024, 3, 5, 14, 0, 0, tzinfo=NY), MANHATTAN)["next-day"]
    assert window(before) == (date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 6))
    assert before.order_by == datetime(2024, 3, 5, 19, 0, tzinfo=UTC)
    assert before.explanation[0].startswith("ordered before the 14:00 cutoff in America/New_York")
    assert window(at) == (date(2024, 3, 6), date(2024, 3, 7), date(2024, 3, 7))
    assert at.order_by == datetime(2024, 3, 6, 19, 0, tzinfo=UTC)
    assert at.explanation[0] == (
        "ordered after the 14:00 cutoff in America/New_York: processed Wed 6 Mar"
    )


def test_option_cutoff_overrides_origin(us: Estimator) -> None:
    at_noon = by_option(us, datetime(2024, 3, 5, 12, 0, tzinfo=NY), MANHATTAN)
    assert at_noon["same-day"].ship_date == date(2024, 3, 6)  # courier cutoff 11:00 passed
    assert at_noon["same-day"].order_by == datetime(2024, 3, 6, 16, 0, tzinfo=UTC)
    assert at_noon["next-day"].ship_date == date(2024, 3, 5)  # warehouse cutoff 14:00 not yet


# --- DST ------------------------------------------------------------------------------------


def test_new_york_spring_forward(us: Estimator) -> None:
    # Fri 8 Mar 2024 after the cutoff: processed Mon 11 Mar, when New York is on EDT (UTC-4)
    friday = by_option(us, datetime(2024, 3, 8, 15, 0, tzinfo=NY), MANHATTAN)["next-day"]
    assert friday.ship_date == date(2024, 3, 11)
    assert friday.order_by == datetime(2024, 3, 11, 18, 0, tzinfo=UTC)
    # Mon 11 Mar 18:30 UTC is 14:30 EDT: after the cutoff (it would be 13:30 on EST)
    monday = by_option(us, datetime(2024, 3, 11, 18, 30, tzinfo=UTC), MANHATTAN)["next-day"]
    assert monday.ship_date == date(2024, 3, 12)


def test_new_york_fall_back(us: Estimator) -> None:
    # Fri 1 Nov 2024 18:30 UTC is 14:30 EDT: after the cutoff; Mon 4 Nov's cutoff is on EST
    friday = by_option(us, datetime(2024, 11, 1, 18, 30, tzinfo=UTC), MANHATTAN)["next-day"]
    assert friday.ship_date == date(2024, 11, 4)
    assert friday.order_by == datetime(2024, 11, 4, 19, 0, tzinfo=UTC)
    # Mon 4 Nov 18:30 UTC is 13:30 EST: before the cutoff
    monday = by_option(us, datetime(2024, 11, 4, 18, 30, tzinfo=UTC), MANHATTAN)["next-day"]
    assert monday.ship_date == date(2024, 11, 4)
    # Election Day (Tue 5 Nov) is a NY holiday the warehouse works (open_on in the rules)
    tuesday = by_option(us, datetime(2024, 11, 5, 10, 0, tzinfo=NY), MANHATTAN)["next-day"]
    assert tuesday.ship_date == date(2024, 11, 5)


def test_sao_paulo_2018_dst_start(br: Estimator) -> None:
    # São Paulo moved to UTC-2 on Sun 4 Nov 2018. Mon 5 Nov 17:30 UTC is 15:30 local: after
    # the 15:00 cutoff (on the old UTC-3 it would have been 14:30, before it).
    monday = by_option(br, datetime(2018, 11, 5, 17, 30, tzinfo=UTC), RIO)["standard"]
    assert monday.ship_date == date(2018, 11, 7)  # processed Tue 6, one handling day
    assert monday.order_by == datetime(2018, 11, 6, 17, 0, tzinfo=UTC)
    # Thu 1 Nov 2018 after the cutoff (UTC-3): Fri 2 Nov is All Souls' Day, processed Mon 5
    thursday = by_option(br, datetime(2018, 11, 1, 18, 30, tzinfo=UTC), RIO)["standard"]
    assert thursday.ship_date == date(2018, 11, 6)
    assert thursday.order_by == datetime(2018, 11, 5, 17, 0, tzinfo=UTC)  # cutoff on UTC-2
    assert "All Souls' Day Fri 2 Nov skipped at sp-mooca" in thursday.explanation


# --- holidays -------------------------------------------------------------------------------


def test_friday_evening_before_memorial_day(us: Estimator) -> None:
    friday_evening = datetime(2024, 5, 24, 19, 0, tzinfo=NY)
    options = by_option(us, friday_evening, MANHATTAN)
    assert window(options["next-day"]) == (date(2024, 5, 28), date(2024, 5, 29), date(2024, 5, 29))
    assert window(options["standard"]) == (date(2024, 5, 28), date(2024, 5, 29), date(2024, 5, 31))
    assert options["next-day"].order_by == datetime(2024, 5, 28, 18, 0, tzinfo=UTC)
    assert "Memorial Day Mon 27 May skipped at nyc-queens" in options["next-day"].explanation


def test_thanksgiving(us: Estimator) -> None:
    options = by_option(us, datetime(2020, 11, 25, 15, 30, tzinfo=NY), MANHATTAN)
    next_day = options["next-day"]
    assert window(next_day) == (date(2020, 11, 27), date(2020, 11, 28), date(2020, 11, 28))
    assert next_day.explanation[:3] == (
        "ordered after the 14:00 cutoff in America/New_York: processed Fri 27 Nov",
        "Thanksgiving Day Thu 26 Nov skipped at nyc-queens",
        "ships Fri 27 Nov",
    )
    # economy: one handling day, Mon-Fri delivery, 2-4 days to the northeast
    assert window(options["economy"]) == (date(2020, 11, 30), date(2020, 12, 2), date(2020, 12, 4))


def test_christmas(us: Estimator) -> None:
    options = by_option(us, datetime(2024, 12, 24, 10, 0, tzinfo=NY), MANHATTAN)
    christmas_eve, boxing_day = date(2024, 12, 24), date(2024, 12, 26)
    assert window(options["next-day"]) == (christmas_eve, boxing_day, boxing_day)
    assert "Christmas Day Wed 25 Dec skipped (no ups delivery)" in options["next-day"].explanation
    assert window(options["standard"]) == (christmas_eve, boxing_day, date(2024, 12, 28))


def test_carnival(br: Estimator) -> None:
    friday = datetime(2024, 2, 9, 16, 0, tzinfo=SP)  # after the cutoff, Carnival Mon-Tue next
    sedex = by_option(br, friday, RIO)["standard"]
    assert window(sedex) == (date(2024, 2, 15), date(2024, 2, 19), date(2024, 2, 20))
    assert sedex.order_by == datetime(2024, 2, 14, 18, 0, tzinfo=UTC)
    assert "Carnival Mon 12 Feb skipped at sp-mooca" in sedex.explanation
    assert "Carnival Tue 13 Feb skipped at sp-mooca" in sedex.explanation


def test_good_friday_and_tiradentes(br: Estimator) -> None:
    thursday = datetime(2025, 4, 17, 16, 0, tzinfo=SP)
    sedex = by_option(br, thursday, RIO)["standard"]
    assert sedex.ship_date == date(2025, 4, 23)  # processed Tue 22 Apr, one handling day
    assert "Good Friday Fri 18 Apr skipped at sp-mooca" in sedex.explanation
    assert "Tiradentes' Day Mon 21 Apr skipped at sp-mooca" in sedex.explanation


def test_tiradentes_at_the_destination(br: Estimator) -> None:
    # shipped Wed 16 Apr 2025, 2-3 days to Rio: Good Friday, the weekend, Tiradentes and Rio
    # state's St. George's Day (Wed 23 Apr) pass before delivery
    tuesday = datetime(2025, 4, 15, 10, 0, tzinfo=SP)
    sedex = by_option(br, tuesday, RIO)["standard"]
    assert window(sedex) == (date(2025, 4, 16), date(2025, 4, 22), date(2025, 4, 24))
    assert "Tiradentes' Day Mon 21 Apr skipped (no correios delivery)" in sedex.explanation
    assert "Saint George's Day Wed 23 Apr skipped (no correios delivery)" in sedex.explanation
    # the same parcel to São Paulo state (1-2 days) is not held by Rio's holiday
    campinas = by_option(br, tuesday, Destination("BR", "13010-000"))["standard"]
    assert window(campinas) == (date(2025, 4, 16), date(2025, 4, 17), date(2025, 4, 22))


def test_state_holiday_applies_to_its_state_only(br: Estimator) -> None:
    # 9 July (Wed in 2025) is a São Paulo state holiday, not a Rio one
    monday = datetime(2025, 7, 7, 10, 0, tzinfo=SP)
    campinas = by_option(br, monday, Destination("BR", "13010-000"))["express"]
    rio = by_option(br, monday, RIO)["express"]
    assert window(campinas) == (date(2025, 7, 8), date(2025, 7, 10), date(2025, 7, 11))
    assert window(rio) == (date(2025, 7, 8), date(2025, 7, 9), date(2025, 7, 10))
    assert any("Constitutionalist Revolution Wed 9 Jul" in s for s in campinas.explanation)


def test_us_state_holiday_from_postal_code(us: Estimator) -> None:
    # Patriots' Day (Mon 21 Apr 2025) closes Massachusetts, not Connecticut
    friday = datetime(2025, 4, 18, 10, 0, tzinfo=NY)
    boston = by_option(us, friday, Destination("US", "02108"))["standard"]
    hartford = by_option(us, friday, Destination("US", "06103"))["standard"]
    assert window(boston) == (date(2025, 4, 18), date(2025, 4, 19), date(2025, 4, 23))
    assert window(hartford) == (date(2025, 4, 18), date(2025, 4, 19), date(2025, 4, 22))


# --- local day vs UTC day, pre-orders -------------------------------------------------------


def test_order_on_another_calendar_day_in_utc() -> None:
    data = tomllib.loads(bundled_rules_path("us_shop.toml").read_text())
    data["origins"][0]["cutoff"] = "22:00"
    late = Estimator(parse_rules(data))
    # Tue 5 Mar 2024 21:30 in New York is Wed 6 Mar 02:30 UTC: the local day and time count
    order = datetime(2024, 3, 6, 2, 30, tzinfo=UTC)
    next_day = by_option(late, order, MANHATTAN)["next-day"]
    assert next_day.ship_date == date(2024, 3, 5)
    assert next_day.order_by == datetime(2024, 3, 6, 3, 0, tzinfo=UTC)
    # Tue 31 Dec 2024 22:30 local is already New Year's Day in UTC
    nye = by_option(late, datetime(2025, 1, 1, 3, 30, tzinfo=UTC), MANHATTAN)["next-day"]
    assert nye.explanation[0].startswith("ordered after the 22:00 cutoff")
    assert nye.ship_date == date(2025, 1, 2)


def test_same_instant_any_offset(us: Estimator) -> None:
    instant = datetime(2024, 3, 5, 18, 59, 59, tzinfo=UTC)
    tokyo = instant.astimezone(timezone(timedelta(hours=9)))
    assert by_option(us, instant, MANHATTAN) == by_option(us, tokyo, MANHATTAN)


def test_pre_order_ready_next_month(us: Estimator) -> None:
    items = [
        Item("MUG-01", 1),
        Item("BOOK-PRE", 1, available_on=date(2024, 12, 14)),  # a Saturday
        Item("OLD", 1, available_on=date(2024, 10, 1)),  # already in stock
    ]
    order = datetime(2024, 11, 5, 10, 0, tzinfo=NY)
    next_day = by_option(us, order, MANHATTAN, items=items)["next-day"]
    assert window(next_day) == (date(2024, 12, 16), date(2024, 12, 17), date(2024, 12, 17))
    assert next_day.order_by == datetime(2024, 12, 16, 19, 0, tzinfo=UTC)
    assert next_day.explanation[0] == "items ready on Sat 14 Dec: processed Mon 16 Dec"
    in_stock = by_option(us, order, MANHATTAN, items=items[2:])["next-day"]
    assert in_stock.ship_date == date(2024, 11, 5)


def test_processing_day_without_ready_date_keeps_order_day(us: Estimator) -> None:
    cal = us.origin_calendar("nyc-queens")
    local = datetime(2024, 3, 9, 10, 0, tzinfo=NY)  # a Saturday
    p = processing_day(cal, local, local.time().replace(hour=14))
    assert (p.day, p.reason) == (date(2024, 3, 11), "closed_day")


def test_history_day_is_the_order_day_unless_items_hold_it_back(us: Estimator) -> None:
    """After the cutoff or on a closed day the history is still asked about the order's own
    day; only items not yet ready move it, to the day they are processed."""
    cal = us.origin_calendar("nyc-queens")
    cutoff = datetime(2024, 11, 8, 14, 0).time()
    friday_evening = datetime(2024, 11, 8, 20, 0, tzinfo=NY)
    late = processing_day(cal, friday_evening, cutoff)
    assert late.reason == "after_cutoff" and late.day == date(2024, 11, 11)
    assert history_day(late, friday_evening) == date(2024, 11, 8)
    held = processing_day(cal, friday_evening, cutoff, ready_on=date(2024, 12, 14))
    assert held.reason == "items_ready"
    assert history_day(held, friday_evening) == date(2024, 12, 16)
    early = processing_day(cal, friday_evening, cutoff, ready_on=date(2024, 11, 9))
    assert early.reason == "after_cutoff"  # ready before processing starts: no move
    assert history_day(early, friday_evening) == date(2024, 11, 8)


# --- destinations, options, unavailability ------------------------------------------------


def test_unavailable_options_with_reason(us: Estimator) -> None:
    result = us.estimate(
        destination=Destination("US", "99501"), order_time=datetime(2024, 3, 5, 10, tzinfo=NY)
    )
    assert [e.option for e in result.estimates] == ["next-day", "standard"]
    assert {u.option: u.reason for u in result.unavailable} == {
        "same-day": "does not deliver to US 99501 (AK)",
        "economy": "does not deliver to US 99501 (AK)",
    }
    abroad = us.estimate(
        destination=Destination("DE", "10115"), order_time=datetime(2024, 3, 5, 10, tzinfo=NY)
    )
    assert abroad.estimates == ()
    assert len(abroad.unavailable) == 4


def test_most_specific_zone_per_option(us: Estimator) -> None:
    result = us.estimate(destination=MANHATTAN, order_time=datetime(2024, 3, 5, 10, tzinfo=NY))
    assert result.destination.zones == ("nyc", "northeast")
    zones = {e.option: e.zone for e in result.estimates}
    assert zones == {
        "same-day": "nyc",
        "next-day": "nyc",
        "standard": "northeast",
        "economy": "northeast",
    }


def test_options_filter_and_errors(us: Estimator) -> None:
    when = datetime(2024, 3, 5, 10, tzinfo=NY)
    only = us.estimate(destination=MANHATTAN, order_time=when, options=["economy", "same-day"])
    assert [e.option for e in only.estimates] == ["economy", "same-day"]
    cases = [
        ({"options": ["standard", "teleport"]}, "options.1"),
        ({"origin": "nowhere"}, "origin"),
        ({"destination": Destination("XX", "10001")}, "destination.country"),
        ({"destination": Destination("US", "1000")}, "destination.postal_code"),
        ({"destination": Destination("US", "10001", "CA")}, "destination.subdivision"),
        ({"order_time": datetime(2024, 3, 5, 10)}, "order_time"),
        ({"confidence": 1.5}, "confidence"),
        (
            {"order_time": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14)))},
            "order_time",
        ),
        ({"order_time": datetime(1, 1, 1, tzinfo=UTC)}, "order_time"),
        ({"items": [Item("A"), Item("B", 1, date(2030, 1, 1))]}, "items.1.available_on"),
    ]
    for override, field in cases:
        kwargs: dict = {"destination": MANHATTAN, "order_time": when} | override
        with pytest.raises(EstimateInputError) as info:
            us.estimate(**kwargs)
        assert info.value.field == field


def test_repeated_estimates_hit_the_cache(us: Estimator) -> None:
    first = us.estimate(destination=MANHATTAN, order_time=datetime(2023, 6, 6, 9, 0, tzinfo=NY))
    answers = us._answers.hits
    later = us.estimate(destination=MANHATTAN, order_time=datetime(2023, 6, 6, 9, 7, tzinfo=NY))
    assert us._answers.hits == answers + 1  # the whole request: one lookup
    assert later.estimates == first.estimates
    # another ZIP in the same zones: a new request, the option outcomes are shared
    outcomes = us._outcome.cache_info().hits
    other = us.estimate(
        destination=Destination("US", "10002"), order_time=datetime(2023, 6, 6, 9, 7, tzinfo=NY)
    )
    assert us._outcome.cache_info().hits == outcomes + len(first.estimates)
    assert other.estimates == first.estimates


# --- the history seam -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def br_history(br: Estimator) -> OptionHistories:
    return build_option_histories(
        br.rules, sp_history(), now=datetime(2025, 1, 1, tzinfo=UTC), warm_up=False
    )


def test_history_gives_window_and_percentiles(br: Estimator, br_history: OptionHistories) -> None:
    when = datetime(2024, 11, 5, 10, tzinfo=SP)  # a Tuesday, before the cutoff
    options = by_option(br, when, RIO, history=br_history)
    standard = options["standard"]
    assert standard.basis == "history"
    assert standard.confidence == 0.85
    days = [d for _, d in standard.percentiles]
    assert [p for p, _ in standard.percentiles] == [50, 75, 85, 90, 95, 97, 99]
    assert days == sorted(days)
    assert standard.earliest <= days[0] <= standard.latest <= days[-1]
    # ordered Tue 5 Nov, handed over Wed 6 Nov: 2 delivery days for half of the parcels
    assert dict(standard.percentiles)[50] == date(2024, 11, 8)
    assert standard.latest == dict(standard.percentiles)[85]
    # for a shopper: the rules' steps up to the ship date, then the history in words
    assert standard.explanation[:3] == (
        "ordered before the 15:00 cutoff in America/Sao_Paulo: processed Tue 5 Nov",
        "1 handling day",
        "ships Wed 6 Nov",
    )
    basis = standard.explanation[3]
    assert basis.startswith("based on 300 recent deliveries from SP to RJ ")
    assert "data up to Sun 3 Nov 2024: 85% arrive by Tue 12 Nov, half by Fri 8 Nov" in basis
    assert standard.explanation[-1] == "basis: history (past deliveries, stated at 85%)"
    assert not any("t:" in step or "h:" in step for step in standard.explanation)
    # the lane ids are for machines, in their own field
    assert standard.lanes == (
        LaneBasis("handling", "h:postal BR SP 03178", 300),
        LaneBasis("transit", "t:postal * BR SP BR RJ 200", 300),
    )
    # the rules still say when it is processed and until when the promise holds
    assert standard.explanation[0].startswith("ordered before the 15:00 cutoff")
    assert standard.order_by == datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
    # unlabelled parcels teach only the option that asks for them
    for code in ("express", "economy"):
        assert options[code].basis == "rules"
        assert options[code].percentiles == ()
        assert options[code].explanation[-1].startswith("basis: rules")
        assert options[code].lanes == ()


def test_history_after_the_cutoff_holds_until_midnight(
    br: Estimator, br_history: OptionHistories
) -> None:
    late = by_option(br, datetime(2024, 11, 5, 16, tzinfo=SP), RIO, history=br_history)
    early = by_option(br, datetime(2024, 11, 5, 10, tzinfo=SP), RIO, history=br_history)
    assert late["standard"].latest == early["standard"].latest  # same order date
    assert late["standard"].order_by == datetime(2024, 11, 6, 3, 0, tzinfo=UTC)  # midnight SP
    assert late["economy"].order_by == datetime(2024, 11, 6, 18, 0, tzinfo=UTC)  # rules cutoff


def test_higher_confidence_never_earlier(br: Estimator, br_history: OptionHistories) -> None:
    when = datetime(2024, 11, 5, 10, tzinfo=SP)
    latest = []
    for level in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99):
        standard = by_option(br, when, RIO, history=br_history, confidence=level)["standard"]
        assert standard.confidence == level
        latest.append(standard.latest)
    assert latest == sorted(latest)
    assert latest[0] < latest[-1]


def test_labelled_records_teach_their_own_option(br: Estimator) -> None:
    records = sp_history(120, "Correios", " PAC ") + sp_history(50, "loggi", "Same Day")
    histories = build_option_histories(br.rules, records, warm_up=False)
    assert set(histories.options) == {"economy"}  # same-day does not serve Rio
    assert histories.options["economy"].records == 120
    when = datetime(2024, 6, 4, 10, tzinfo=SP)
    options = by_option(br, when, RIO, history=histories)
    assert options["economy"].basis == "history"
    assert options["standard"].basis == "rules"


def test_repeated_estimate_reads_the_window_cache(
    br: Estimator, br_history: OptionHistories
) -> None:
    when = datetime(2024, 12, 2, 9, tzinfo=SP)
    first = by_option(br, when, RIO, history=br_history)
    hits, misses = br_history.cache_hits
    # the same request an hour later: answered whole by the estimator, no window read
    again = by_option(br, when + timedelta(hours=1), RIO, history=br_history)
    assert br_history.cache_hits == (hits, misses)
    # another CEP with the same lane keys: a miss on the query, a hit on the lanes, and the
    # estimate assembled around that window is reused
    neighbour = by_option(br, when, Destination("BR", "20040-900"), history=br_history)
    assert br_history.cache_hits == (hits + 2, misses + 1)
    assert again["standard"] == first["standard"]
    assert neighbour["standard"].latest == first["standard"].latest


def test_confidence_override_without_history(us: Estimator) -> None:
    when = datetime(2024, 3, 5, 10, tzinfo=NY)
    plain = us.estimate(destination=MANHATTAN, order_time=when)
    asked = us.estimate(destination=MANHATTAN, order_time=when, confidence=0.95)
    for a, p in zip(asked.estimates, plain.estimates, strict=True):
        assert a.confidence == p.confidence != 0.95  # the configured level, honestly
        assert (a.earliest, a.latest) == (p.earliest, p.latest)
        assert a.basis == "rules"
        assert "asked for 95%" in a.explanation[-1]
        assert "asked for" not in p.explanation[-1]


def test_delivery_window_is_a_separate_step(us: Estimator) -> None:
    cal = us.delivery_calendar("standard", "US", "MA")
    assert delivery_window(date(2025, 4, 18), 1, 3, cal) == (date(2025, 4, 19), date(2025, 4, 23))
    assert delivery_window(date(2025, 4, 19), 0, 0, cal) == (date(2025, 4, 19), date(2025, 4, 19))
    assert delivery_window(date(2025, 4, 20), 0, 1, cal) == (date(2025, 4, 22), date(2025, 4, 22))


def test_result_is_plain_data(us: Estimator) -> None:
    result = us.estimate(destination=MANHATTAN, order_time=datetime(2024, 3, 5, 10, tzinfo=NY))
    assert result.order_time.tzinfo is UTC
    e = result.estimates[0]
    assert replace(e, confidence=0.5).confidence == 0.5
    assert all(x.order_by.tzinfo is UTC for x in result.estimates)


# --- explanations for a shopper, and windows that respect the rules --------------------------


def test_a_pre_order_explains_only_the_days_that_moved_it(us: Estimator) -> None:
    order = datetime(2026, 11, 23, 10, 0, tzinfo=NY)  # Mon 23 Nov, Thanksgiving is Thu 26 Nov
    ready_15 = [Item("BOOK-PRE", 1, available_on=date(2026, 12, 15))]
    for e in us.estimate(destination=MANHATTAN, order_time=order, items=ready_15).estimates:
        assert e.ship_date >= date(2026, 12, 15)
        assert not any("Thanksgiving" in step for step in e.explanation), e.explanation
    # a closed day from the ready day on does move it, and is explained
    ready_25 = [Item("BOOK-PRE", 1, available_on=date(2026, 12, 25))]
    next_day = by_option(us, order, MANHATTAN, items=ready_25)["next-day"]
    assert next_day.explanation[:3] == (
        "items ready on Fri 25 Dec: processed Mon 28 Dec",
        "Christmas Day Fri 25 Dec skipped at nyc-queens",
        "ships Mon 28 Dec",
    )
    # an order in stock still names the holiday its processing waits for
    in_stock = by_option(us, datetime(2026, 11, 25, 15, 0, tzinfo=NY), MANHATTAN)["next-day"]
    assert "Thanksgiving Day Thu 26 Nov skipped at nyc-queens" in in_stock.explanation


def sao_paulo_history() -> OptionHistories:
    """Unlabelled parcels within the city of Sao Paulo, handed over a few hours after the order
    and delivered the next day or the one after: history faster than the rules' handling."""
    records = [
        delivery(
            f"sp{i}",
            datetime(2026, 1, 5, 10, tzinfo=SP) + timedelta(days=i),
            (1, 1, 2)[i % 3],
            handling=timedelta(hours=5),
            dest_subdivision="SP",
            dest_postal="01310-100",
        )
        for i in range(300)
    ]
    rules = load_rules(bundled_rules_path("br_shop.toml"))
    return build_option_histories(
        rules, records, now=datetime(2026, 11, 1, tzinfo=UTC), warm_up=False
    )


def test_history_never_starts_before_the_minimum_transit(br: Estimator) -> None:
    history = sao_paulo_history()
    order = datetime(2027, 2, 5, 16, 0, tzinfo=SP)  # Fri after the cutoff; Carnival 8-9 Feb
    paulista = Destination("BR", "01310-100")
    standard = by_option(br, order, paulista, history=history, options=["standard"])["standard"]
    rules = by_option(br, order, paulista, options=["standard"])["standard"]
    assert standard.basis == "history"
    assert standard.zone == "sp-capital"
    assert standard.ship_date == date(2027, 2, 11)  # Thu, after Carnival and Ash Wednesday
    # on its own the history would promise before the carrier has the parcel
    alone = history.window("standard", "sp-capital", standard_query(br), date(2027, 2, 5), 0.85)
    assert alone is not None and alone.earliest <= standard.ship_date
    # ship date plus the option's minimum transit (1 delivery day) is the rules' earliest
    assert rules.earliest == date(2027, 2, 12)
    assert standard.earliest == date(2027, 2, 12)
    assert standard.latest >= standard.earliest
    assert all(day >= standard.earliest for _, day in standard.percentiles)
    assert "not before 1 delivery day after it ships" in standard.explanation[-2]
    assert "ships Thu 11 Feb" in standard.explanation
    assert "Carnival Mon 8 Feb skipped at sp-mooca" in standard.explanation


def standard_query(br: Estimator) -> LaneQuery:
    origin = br.rules.origins[0]
    return LaneQuery(
        origin.country, origin.subdivision, origin.postal_code, "BR", "SP", "01310-100",
        origin_id=origin.id,
    )  # fmt: skip


def test_history_keeps_the_holiday_steps(br: Estimator, br_history: OptionHistories) -> None:
    when = datetime(2024, 11, 14, 16, tzinfo=SP)  # Thu after the cutoff; Fri 15 Nov a holiday
    standard = by_option(br, when, RIO, history=br_history)["standard"]
    assert standard.basis == "history"
    assert standard.explanation[:4] == (
        "ordered after the 15:00 cutoff in America/Sao_Paulo: processed Mon 18 Nov",
        "Republic Proclamation Day Fri 15 Nov skipped at sp-mooca",
        "1 handling day",
        "ships Tue 19 Nov",
    )
    assert (
        "National Day of Zumbi and Black Awareness Wed 20 Nov skipped (no correios delivery)"
        in standard.explanation
    )


def test_full_width_postal_code_is_the_ascii_one(us: Estimator) -> None:
    when = datetime(2024, 3, 5, 10, tzinfo=NY)
    full_width = us.estimate(
        destination=Destination("US", "\uff11\uff10\uff10\uff10\uff11"), order_time=when
    )
    ascii_ = us.estimate(destination=MANHATTAN, order_time=when)
    assert full_width.destination == ascii_.destination
    assert full_width.destination.postal_code == "10001"
    assert full_width.destination.zones == ("nyc", "northeast")
    assert full_width.estimates == ascii_.estimates
