"""The estimator's request-level cache: one lookup per request, and never a wrong answer.

The reference is the same rules compiled without that cache (`answer_cache_size=0`): every
cached answer must equal the reference's for the same instant, and requests that differ in
anything the promise depends on must not share an answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from history_helpers import sp_to_rio

from tracking_service.estimator.estimate import (
    Destination,
    EstimateInputError,
    EstimateResult,
    Estimator,
    Item,
)
from tracking_service.estimator.option_history import OptionHistories, build_option_histories
from tracking_service.estimator.rules import Rules, load_rules
from tracking_service.settings import bundled_rules_path

NY = ZoneInfo("America/New_York")
SP = ZoneInfo("America/Sao_Paulo")
MANHATTAN = Destination("US", "10001")
RIO = Destination("BR", "20040-020")


@pytest.fixture(scope="module")
def us_rules() -> Rules:
    return load_rules(bundled_rules_path("us_shop.toml"))


@pytest.fixture(scope="module")
def br_rules() -> Rules:
    return load_rules(bundled_rules_path("br_shop.toml"))


def uncached(rules: Rules) -> Estimator:
    """The same rules without the request-level cache: the answer to compare with."""
    return Estimator(rules, answer_cache_size=0)


def snapshot(br_rules: Rules, transit: tuple[int, ...]) -> OptionHistories:
    """What unlabelled parcels Sao Paulo -> Rio (200, one ordered a day) teach the BR shop."""
    return build_option_histories(
        br_rules, sp_to_rio(transit, 200), now=datetime(2025, 1, 1, tzinfo=UTC), warm_up=False
    )


def sweep(day: date, tz: ZoneInfo, cutoffs: tuple[time, ...]) -> Iterator[datetime]:
    """Instants over a local day: every 37 minutes, and one second either side of each cutoff
    and of local midnight."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    for minutes in range(0, 24 * 60, 37):
        yield (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(tz)
    for cutoff in cutoffs:
        at = datetime.combine(day, cutoff, tzinfo=tz)
        yield from (at - timedelta(seconds=1), at, at + timedelta(seconds=1))
    yield start - timedelta(seconds=1)


# --- cached answers are the uncached ones -----------------------------------------------------


def test_cutoffs_to_the_second_per_option(us_rules: Rules) -> None:
    cached, reference = Estimator(us_rules), uncached(us_rules)
    day = date(2024, 3, 5)
    # The same-day courier's 11:00 and the warehouse's 14:00: each splits the day.
    for hour in (11, 14):
        before = datetime(2024, 3, 5, hour - 1, 59, 59, tzinfo=NY)
        at = datetime(2024, 3, 5, hour, tzinfo=NY)
        first = cached.estimate(destination=MANHATTAN, order_time=before)
        second = cached.estimate(destination=MANHATTAN, order_time=at)
        assert first == reference.estimate(destination=MANHATTAN, order_time=before)
        assert second == reference.estimate(destination=MANHATTAN, order_time=at)
        assert first.estimates != second.estimates
    same_day = [
        cached.estimate(destination=MANHATTAN, order_time=when).estimates[0]
        for when in (
            datetime(2024, 3, 5, 10, 59, 59, tzinfo=NY),
            datetime(2024, 3, 5, 11, tzinfo=NY),
        )
    ]
    assert [e.option for e in same_day] == ["same-day", "same-day"]
    assert [e.ship_date for e in same_day] == [day, day + timedelta(days=1)]


@pytest.mark.parametrize(
    ("day", "where"),
    [
        (date(2024, 3, 10), "US spring forward"),
        (date(2024, 11, 3), "US fall back"),
        (date(2024, 11, 27), "the day before Thanksgiving"),
        (date(2024, 11, 29), "Black Friday, a Friday"),
        (date(2024, 12, 24), "Christmas Eve"),
    ],
)
def test_us_sweep_matches_uncached(us_rules: Rules, day: date, where: str) -> None:
    cached, reference = Estimator(us_rules), uncached(us_rules)
    places = [MANHATTAN, Destination("US", "94103"), Destination("US", "99501")]
    for place in places:
        for when in sweep(day, NY, (time(11), time(14))):
            got = cached.estimate(destination=place, order_time=when)
            assert got == reference.estimate(destination=place, order_time=when), (where, when)
    assert cached._answers.hits > 0  # the sweep did exercise the cache


def test_brazil_dst_and_history_sweep_matches_uncached(br_rules: Rules) -> None:
    history = snapshot(br_rules, (2, 2, 3, 6))
    cached, reference = Estimator(br_rules), uncached(br_rules)
    # São Paulo had DST until 2019: clocks went forward at midnight on 4 Nov 2018.
    for day in (date(2018, 11, 3), date(2018, 11, 4), date(2024, 11, 5), date(2024, 11, 8)):
        for when in sweep(day, SP, (time(12), time(15))):
            for history_or_not in (None, history):
                got = cached.estimate(destination=RIO, order_time=when, history=history_or_not)
                want = reference.estimate(destination=RIO, order_time=when, history=history_or_not)
                assert got == want, (when, history_or_not is not None)


def test_local_date_not_utc_date(us_rules: Rules) -> None:
    """Both after every cutoff and on the same UTC date, but on two local dates."""
    cached = Estimator(us_rules)
    tuesday_night = datetime(2024, 3, 5, 23, 30, tzinfo=NY)  # Wed 04:30 UTC
    wednesday = datetime(2024, 3, 6, 15, 0, tzinfo=NY)  # Wed 20:00 UTC
    assert tuesday_night.astimezone(UTC).date() == wednesday.astimezone(UTC).date()
    a = cached.estimate(destination=MANHATTAN, order_time=tuesday_night)
    b = cached.estimate(destination=MANHATTAN, order_time=wednesday)
    assert a.estimates[0].ship_date == date(2024, 3, 6)
    assert b.estimates[0].ship_date == date(2024, 3, 7)


# --- what shares an answer and what does not --------------------------------------------------


def test_same_day_same_side_is_one_lookup(us_rules: Rules) -> None:
    cached = Estimator(us_rules)
    first = cached.estimate(destination=MANHATTAN, order_time=datetime(2024, 3, 5, 9, tzinfo=NY))
    hits, outcomes = cached._answers.hits, cached._outcome.cache_info()
    later = datetime(2024, 3, 5, 10, 59, 59, tzinfo=UTC).astimezone(NY)  # 05:59:59 local
    second = cached.estimate(destination=MANHATTAN, order_time=later)
    assert cached._answers.hits == hits + 1
    assert cached._outcome.cache_info() == outcomes  # no per-option work at all
    assert second.estimates is first.estimates
    assert second.order_time == later.astimezone(UTC)  # the instant is the request's own


def test_history_refresh_invalidates(br_rules: Rules) -> None:
    fast, slow = snapshot(br_rules, (2,)), snapshot(br_rules, (9,))
    cached = Estimator(br_rules)
    when = datetime(2024, 11, 5, 10, tzinfo=SP)
    before = cached.estimate(destination=RIO, order_time=when, history=fast)
    assert cached.estimate(destination=RIO, order_time=when, history=fast) == before
    after = cached.estimate(destination=RIO, order_time=when, history=slow)
    assert after == uncached(br_rules).estimate(destination=RIO, order_time=when, history=slow)
    standard = {e.option: e for e in after.estimates}["standard"]
    assert standard.latest > {e.option: e for e in before.estimates}["standard"].latest
    assert len(cached._answers) == 1  # the old snapshot's answers are gone
    # and without history, the rules' answer again
    rules_only = cached.estimate(destination=RIO, order_time=when)
    assert {e.basis for e in rules_only.estimates} == {"rules"}


def test_confidence_is_part_of_the_answer(br_rules: Rules) -> None:
    history = snapshot(br_rules, (1, 2, 3, 4, 5, 6, 7, 8))
    cached = Estimator(br_rules)
    when = datetime(2024, 11, 5, 10, tzinfo=SP)
    low = cached.estimate(destination=RIO, order_time=when, history=history, confidence=0.5)
    high = cached.estimate(destination=RIO, order_time=when, history=history, confidence=0.99)
    by_low = {e.option: e for e in low.estimates}
    by_high = {e.option: e for e in high.estimates}
    assert by_low["standard"].latest < by_high["standard"].latest
    assert by_high["standard"].confidence == 0.99
    # on the rules: the same window, but the explanation says what was asked
    plain = cached.estimate(destination=RIO, order_time=when)
    asked = cached.estimate(destination=RIO, order_time=when, confidence=0.95)
    assert plain.estimates != asked.estimates
    assert "asked for 95%" in asked.estimates[0].explanation[-1]


def test_ready_dates_of_items_matter(us_rules: Rules) -> None:
    cached, reference = Estimator(us_rules), uncached(us_rules)
    when = datetime(2024, 3, 5, 9, tzinfo=NY)
    plain = cached.estimate(destination=MANHATTAN, order_time=when)
    for ready in (date(2024, 3, 20), date(2024, 4, 2), date(2024, 3, 6)):
        items = [Item("A"), Item("B", 2, ready)]
        got = cached.estimate(destination=MANHATTAN, order_time=when, items=items)
        assert got == reference.estimate(destination=MANHATTAN, order_time=when, items=items)
        assert got.estimates[0].ship_date >= ready
        assert got.estimates != plain.estimates
    # ready on or before the order date: the same promise as no date at all
    for ready in (date(2024, 3, 5), date(2024, 2, 1)):
        items = [Item("A", 1, ready)]
        assert cached.estimate(destination=MANHATTAN, order_time=when, items=items) == plain


def test_options_filter_and_destination_as_given(us_rules: Rules) -> None:
    cached = Estimator(us_rules)
    when = datetime(2024, 3, 5, 9, tzinfo=NY)
    everything = cached.estimate(destination=MANHATTAN, order_time=when)
    only = cached.estimate(destination=MANHATTAN, order_time=when, options=["economy"])
    assert [e.option for e in only.estimates] == ["economy"]
    assert len(everything.estimates) > 1
    alaska = cached.estimate(destination=Destination("US", "99501"), order_time=when)
    assert alaska.destination.subdivision == "AK"
    assert "same-day" in [u.option for u in alaska.unavailable]
    assert "same-day" in [e.option for e in everything.estimates]
    # the same place written with a state: validated like any new request
    with_state = cached.estimate(destination=Destination("US", "10001", "NY"), order_time=when)
    assert with_state.estimates == everything.estimates


def test_errors_are_not_cached(us_rules: Rules) -> None:
    cached = Estimator(us_rules)
    when = datetime(2024, 3, 5, 9, tzinfo=NY)
    cached.estimate(destination=MANHATTAN, order_time=when)
    for kwargs, field in (
        ({"options": ["nope"]}, "options.0"),
        ({"destination": Destination("US", "1000")}, "destination.postal_code"),
        ({"destination": Destination("US", "10001", "CA")}, "destination.subdivision"),
    ):
        for _ in range(2):
            with pytest.raises(EstimateInputError) as info:
                cached.estimate(**({"destination": MANHATTAN, "order_time": when} | kwargs))
            assert info.value.field == field


def test_cache_is_bounded(us_rules: Rules) -> None:
    cached = Estimator(us_rules, answer_cache_size=8)
    start = datetime(2024, 1, 2, 9, tzinfo=NY)
    results: list[EstimateResult] = [
        cached.estimate(destination=MANHATTAN, order_time=start + timedelta(days=i))
        for i in range(30)
    ]
    assert len(cached._answers) == 8
    assert len({r.estimates[0].ship_date for r in results}) > 8
