"""Business-day arithmetic over real holiday calendars."""

from __future__ import annotations

from datetime import date

import pytest

from tracking_service.estimator.calendar import (
    BusinessCalendar,
    HolidaySource,
    add_business_days,
    business_days_between,
    closures_between,
    holidays_for,
    is_business_day,
    next_business_day,
    roll_forward,
)


@pytest.fixture
def ny() -> BusinessCalendar:
    return BusinessCalendar(
        name="ny",
        sources=(HolidaySource("US", "NY"),),
        closed_dates={date(2024, 12, 27): "stock-taking"},
    )


def test_holidays_are_cached_and_named() -> None:
    first = holidays_for("US", None, 2020)
    assert first is holidays_for("US", None, 2020)
    assert first[date(2020, 11, 26)] == ("Thanksgiving Day",)


def test_unknown_subdivision_falls_back_to_national_holidays() -> None:
    assert holidays_for("US", "ZZ", 2024) == holidays_for("US", None, 2024)


def test_weekends_holidays_and_closed_dates(ny: BusinessCalendar) -> None:
    assert is_business_day(ny, date(2024, 12, 23))  # Monday
    assert not is_business_day(ny, date(2024, 12, 21))  # Saturday
    assert not is_business_day(ny, date(2024, 12, 25))  # Christmas
    assert not is_business_day(ny, date(2024, 12, 27))  # stock-taking
    assert ny.closure_name(date(2024, 12, 27)) == "stock-taking"
    assert ny.closure_name(date(2024, 12, 26)) is None


def test_next_and_roll_forward(ny: BusinessCalendar) -> None:
    assert next_business_day(ny, date(2024, 12, 24)) == date(2024, 12, 26)
    assert roll_forward(ny, date(2024, 12, 24)) == date(2024, 12, 24)
    assert roll_forward(ny, date(2024, 12, 25)) == date(2024, 12, 26)
    # across the year boundary: New Year's Day closed, next year's holidays built lazily
    assert next_business_day(ny, date(2024, 12, 31)) == date(2025, 1, 2)


def test_add_business_days(ny: BusinessCalendar) -> None:
    # Wed 25 Nov 2020 + 1: Thanksgiving Thursday skipped
    assert add_business_days(ny, date(2020, 11, 25), 1) == date(2020, 11, 27)
    assert add_business_days(ny, date(2020, 11, 25), 3) == date(2020, 12, 1)
    # n == 0 rolls a closed day forward, keeps an open one
    assert add_business_days(ny, date(2020, 11, 26), 0) == date(2020, 11, 27)
    assert add_business_days(ny, date(2020, 11, 25), 0) == date(2020, 11, 25)
    # counting starts after the day, even when that day is closed (a Saturday)
    assert add_business_days(ny, date(2020, 11, 28), 1) == date(2020, 11, 30)
    with pytest.raises(ValueError):
        add_business_days(ny, date(2020, 11, 25), -1)


def test_business_days_between_inverts_add(ny: BusinessCalendar) -> None:
    start = date(2024, 12, 20)
    for n in range(1, 15):
        assert business_days_between(ny, start, add_business_days(ny, start, n)) == n
    assert business_days_between(ny, date(2024, 12, 24), date(2024, 12, 24)) == 0
    assert business_days_between(ny, date(2024, 12, 30), date(2024, 12, 23)) == -3  # 24, 26, 30


def test_closures_between_names_weekday_holidays_only(ny: BusinessCalendar) -> None:
    assert closures_between(ny, date(2024, 12, 20), date(2025, 1, 3)) == [
        (date(2024, 12, 25), "Christmas Day"),
        (date(2024, 12, 27), "stock-taking"),
        (date(2025, 1, 1), "New Year's Day"),
    ]


def test_open_on_and_closed_on_by_name() -> None:
    plain = BusinessCalendar(name="ny", sources=(HolidaySource("US", "NY"),))
    works_election_day = BusinessCalendar(
        name="ny", sources=(HolidaySource("US", "NY", open_on=frozenset({"Election Day"})),)
    )
    assert not plain.is_open(date(2024, 11, 5))
    assert works_election_day.is_open(date(2024, 11, 5))

    sp = BusinessCalendar(name="sp", sources=(HolidaySource("BR", "SP"),))
    sp_carnival = BusinessCalendar(
        name="sp", sources=(HolidaySource("BR", "SP", closed_on=frozenset({"Carnival"})),)
    )
    assert sp.is_open(date(2024, 2, 12))  # Carnival is not a public holiday...
    assert not sp_carnival.is_open(date(2024, 2, 12))  # ...unless the calendar says so
    assert sp_carnival.closure_name(date(2024, 2, 13)) == "Carnival"
    assert not sp.is_open(date(2024, 7, 9))  # São Paulo state: Constitutionalist Revolution


def test_state_holiday_only_in_its_state() -> None:
    ma = BusinessCalendar(name="ma", sources=(HolidaySource("US", "MA"),))
    ct = BusinessCalendar(name="ct", sources=(HolidaySource("US", "CT"),))
    patriots_day = date(2025, 4, 21)
    assert not ma.is_open(patriots_day)
    assert ct.is_open(patriots_day)


def test_saturday_delivery_calendar() -> None:
    cal = BusinessCalendar(
        name="ups", weekdays=frozenset(range(6)), sources=(HolidaySource("US", "NY"),)
    )
    assert add_business_days(cal, date(2020, 11, 27), 1) == date(2020, 11, 28)  # Saturday
