"""Day indexes of the origin's business days and the destination's delivery days.

The model counts days as open days of a calendar; these indexes make counting O(1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from tracking_service.estimator.calendar import MON_FRI, BusinessCalendar, HolidaySource


class DayIndex:
    """Numbers the open days of a calendar so counting days between two dates is O(1).

    `is_open` is the calendar's own predicate (e.g. `calendar.is_business_day` bound to an
    origin, or the carrier's delivery days at a destination); this class only indexes it.
    A closed day takes the index of the next open day: a parcel handed over or delivered on
    a Saturday counts as Monday's, which keeps dates and counts consistent both ways.
    """

    __slots__ = ("_ceil", "_days", "_first", "_is_open", "_last")

    def __init__(self, is_open: Callable[[date], bool], first: date, last: date) -> None:
        self._is_open = is_open
        self._first = first
        self._last = last
        self._ceil: list[int] = []
        self._days: list[date] = []
        self._build(first, last)

    def _build(self, first: date, last: date) -> None:
        days: list[date] = []
        ceil: list[int] = []
        pending = 0
        span = (last - first).days + 1
        for offset in range(span):
            d = first + timedelta(days=offset)
            if self._is_open(d):
                days.append(d)
                ceil.extend([len(days) - 1] * (pending + 1))
                pending = 0
            else:
                pending += 1
        # closed days at the very end point past the last open day
        ceil.extend([len(days)] * pending)
        if not days:
            raise ValueError("a calendar with no open day between {first} and {last}")
        self._first, self._last, self._ceil, self._days = first, last, ceil, days

    def _cover(self, d: date) -> None:
        if d < self._first or d > self._last:
            first = min(self._first, date(d.year - 1, 1, 1))
            last = max(self._last, date(d.year + 1, 12, 31))
            self._build(first, last)

    def ceil(self, d: date) -> int:
        """Index of the first open day on or after `d`."""
        self._cover(d)
        if self._ceil[(d - self._first).days] >= len(self._days):
            self._cover(self._last + timedelta(days=400))
        return self._ceil[(d - self._first).days]

    def day(self, index: int) -> date:
        """The open day with this index (extends the index when needed)."""
        while index >= len(self._days):
            self._cover(self._last + timedelta(days=400))
        if index < 0:
            raise IndexError("before the start of the calendar index")
        return self._days[index]


class Calendars:
    """Origin and destination day indexes, built once per place from calendar predicates.

    `origin(country, subdivision)` must return a "business day" predicate of the origin,
    `destination(country, subdivision)` a "delivery day" predicate of the destination.
    """

    def __init__(
        self,
        origin: Callable[[str, str | None], Callable[[date], bool]],
        destination: Callable[[str, str | None], Callable[[date], bool]],
        first: date = date(2015, 1, 1),
        last: date = date(2019, 12, 31),
    ) -> None:
        self._origin_factory = origin
        self._dest_factory = destination
        self._first, self._last = first, last
        self._origin: dict[tuple[str, str | None], DayIndex] = {}
        self._dest: dict[tuple[str, str | None], DayIndex] = {}

    def origin(self, country: str, subdivision: str | None) -> DayIndex:
        return self._index(self._origin, self._origin_factory, country, subdivision)

    def destination(self, country: str, subdivision: str | None) -> DayIndex:
        return self._index(self._dest, self._dest_factory, country, subdivision)

    def _index(
        self,
        cache: dict[tuple[str, str | None], DayIndex],
        factory: Callable[[str, str | None], Callable[[date], bool]],
        country: str,
        subdivision: str | None,
    ) -> DayIndex:
        """The place's index from `cache`, built from `factory`'s predicate the first time."""
        key = (country, subdivision)
        index = cache.get(key)
        if index is None:
            index = DayIndex(factory(country, subdivision), self._first, self._last)
            cache[key] = index
        return index


def holiday_calendars(weekdays: frozenset[int] = MON_FRI, state_holidays: bool = True) -> Calendars:
    """Mon-Fri calendars with the national (and state) public holidays of each place.

    For history files that say nothing about a warehouse's or a carrier's own days off (the
    backtest); the running service builds its calendars from the rules instead.
    """

    def make(country: str, subdivision: str | None) -> Callable[[date], bool]:
        sub = subdivision if state_holidays else None
        name = f"{country}-{sub}" if sub else country
        return BusinessCalendar(name, weekdays, (HolidaySource(country, sub),)).is_open

    return Calendars(make, make)
