"""Business and delivery calendars: which local dates a warehouse works and a carrier delivers.

A `BusinessCalendar` is a set of working weekdays minus closed dates (public holidays from the
`holidays` package, named extra holidays, explicit closed dates). Closed dates are computed per
year on first use and kept as frozensets, so every question below is a set lookup.

The plain functions (`is_business_day`, `next_business_day`, `roll_forward`, `add_business_days`,
`business_days_between`, `closures_between`) take any calendar: the origin's business calendar
and a carrier's delivery calendar at a destination are the same type.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import holidays

if TYPE_CHECKING:
    from tracking_service.estimator.rules import Origin, ShippingOption

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MON_FRI = frozenset(range(5))
OBSERVED_SUFFIX = " (observed)"
_LANGUAGE = "en_US"  # stable English names for explanations and for names in rules files


def supported_holiday_countries() -> Mapping[str, tuple[str, ...]]:
    """Countries the `holidays` package knows, with their subdivision codes."""
    return _supported()


@lru_cache(maxsize=1)
def _supported() -> Mapping[str, tuple[str, ...]]:
    return {code: tuple(subdivs) for code, subdivs in holidays.list_supported_countries().items()}


@lru_cache(maxsize=512)
def holiday_categories(country: str) -> tuple[str, ...]:
    """The holiday categories the `holidays` package offers for a country."""
    if country not in _supported():
        return ()
    return tuple(holidays.country_holidays(country).supported_categories)


@lru_cache(maxsize=4096)
def holidays_for(
    country: str, subdivision: str | None, year: int, categories: tuple[str, ...] = ("public",)
) -> Mapping[date, tuple[str, ...]]:
    """Holidays of one country/subdivision and year, each date with its English name(s).

    Built once per key and cached for the life of the process. A country the `holidays`
    package does not know has no holidays (rules validation refuses it where it matters).
    """
    if country not in _supported():
        return {}
    subdiv = subdivision if subdivision in _supported()[country] else None
    wanted = tuple(c for c in categories if c in holiday_categories(country))
    if not wanted:
        return {}
    book = holidays.country_holidays(
        country, subdiv=subdiv, years=year, categories=wanted, language=_LANGUAGE
    )
    return {d: tuple(book.get_list(d)) for d in sorted(book)}


def base_name(name: str) -> str:
    """`Independence Day (observed)` -> `Independence Day`: rules name holidays without it."""
    return name.removesuffix(OBSERVED_SUFFIX)


def known_holiday_names(
    country: str, subdivision: str | None, years: Iterable[int]
) -> frozenset[str]:
    """Every holiday name (all categories) of a place over some years, for validating rules."""
    names: set[str] = set()
    cats = holiday_categories(country)
    for year in years:
        for day_names in holidays_for(country, subdivision, year, cats).values():
            names.update(base_name(n) for n in day_names)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class HolidaySource:
    """Holidays of one place: the `categories` counted, minus `open_on`, plus `closed_on`.

    `open_on` names holidays the business works anyway (a carrier delivering on Columbus Day);
    `closed_on` names holidays of other categories it closes on (Carnival is "optional" in
    Brazil for the `holidays` package, but neither Correios nor most warehouses work then).
    """

    country: str
    subdivision: str | None = None
    categories: tuple[str, ...] = ("public",)
    open_on: frozenset[str] = frozenset()
    closed_on: frozenset[str] = frozenset()

    def closures(self, year: int) -> dict[date, str]:
        """Closed dates of the year with the name shown in explanations."""
        out: dict[date, str] = {}
        counted = holidays_for(self.country, self.subdivision, year, self.categories)
        for day, names in counted.items():
            kept = [n for n in names if base_name(n) not in self.open_on]
            if kept:
                out[day] = "; ".join(kept)
        if self.closed_on:
            extra_cats = holiday_categories(self.country)
            for day, names in holidays_for(
                self.country, self.subdivision, year, extra_cats
            ).items():
                kept = [n for n in names if base_name(n) in self.closed_on]
                if kept and day not in out:
                    out[day] = "; ".join(kept)
        return out


@dataclass(eq=False, slots=True)
class BusinessCalendar:
    """Working weekdays minus closed dates; closed dates are materialized lazily per year."""

    name: str
    weekdays: frozenset[int] = MON_FRI
    sources: tuple[HolidaySource, ...] = ()
    closed_dates: Mapping[date, str] = field(default_factory=dict)
    _closed: dict[int, frozenset[date]] = field(default_factory=dict, repr=False)
    _names: dict[date, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def closed_in(self, year: int) -> frozenset[date]:
        """Closed dates (holidays and explicit closures, whatever the weekday) of a year."""
        closed = self._closed.get(year)
        if closed is None:
            closed = self._build_year(year)
        return closed

    def _build_year(self, year: int) -> frozenset[date]:
        with self._lock:
            if year in self._closed:
                return self._closed[year]
            names: dict[date, str] = {}
            for source in self.sources:
                for day, name in source.closures(year).items():
                    names[day] = f"{names[day]}; {name}" if day in names else name
            for day, reason in self.closed_dates.items():
                if day.year == year:
                    names.setdefault(day, reason)
            self._names.update(names)
            closed = frozenset(names)
            self._closed[year] = closed
            return closed

    def closure_name(self, day: date) -> str | None:
        """Why a date is closed (holiday or closure name); None when it is not a closed date."""
        if day in self.closed_in(day.year):
            return self._names[day]
        return None

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.closed_in(day.year)


# --- plain functions over any calendar -------------------------------------------------------

_MAX_SCAN_DAYS = 3 * 366  # a calendar closed for three years is a configuration error


def is_business_day(cal: BusinessCalendar, day: date) -> bool:
    """True when the calendar works (or delivers) on that local date."""
    return cal.is_open(day)


def next_business_day(cal: BusinessCalendar, day: date) -> date:
    """The first business day strictly after `day`."""
    return roll_forward(cal, day + timedelta(days=1))


def roll_forward(cal: BusinessCalendar, day: date) -> date:
    """`day` itself when it is a business day, else the next one."""
    for _ in range(_MAX_SCAN_DAYS):
        if cal.is_open(day):
            return day
        day += timedelta(days=1)
    raise ValueError(f"calendar {cal.name!r} has no business day for {_MAX_SCAN_DAYS} days")


def add_business_days(cal: BusinessCalendar, day: date, n: int) -> date:
    """The n-th business day strictly after `day`; for n == 0, `roll_forward(cal, day)`.

    `day` need not be a business day: a parcel handed over on a Saturday with one transit day
    arrives on the next business day after it.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return roll_forward(cal, day)
    for _ in range(n):
        day = next_business_day(cal, day)
    return day


def business_days_between(cal: BusinessCalendar, start: date, end: date) -> int:
    """Business days in (start, end]; negative when end < start.

    The inverse of `add_business_days`: for n >= 1, `business_days_between(cal, d,
    add_business_days(cal, d, n)) == n`. History uses it to measure handling and transit.
    """
    if end < start:
        return -business_days_between(cal, end, start)
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        if cal.is_open(day):
            count += 1
        day += timedelta(days=1)
    return count


def closures_between(cal: BusinessCalendar, start: date, end: date) -> list[tuple[date, str]]:
    """Closed dates in (start, end] that fall on working weekdays, with their names.

    These are the days that pushed a date later: the explanation says "Thanksgiving Day Thu
    26 Nov skipped".
    """
    out: list[tuple[date, str]] = []
    day = start + timedelta(days=1)
    while day <= end:
        if day.weekday() in cal.weekdays:
            name = cal.closure_name(day)
            if name is not None:
                out.append((day, name))
        day += timedelta(days=1)
    return out


def format_day(day: date) -> str:
    """`Thu 26 Nov`: how explanations show a local date."""
    return f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {day:%b}"


def origin_calendar(origin: Origin) -> BusinessCalendar:
    """The warehouse's business days: working weekdays minus its holidays and closed dates."""
    spec = origin.holidays
    return BusinessCalendar(
        name=f"origin {origin.id}",
        weekdays=frozenset(origin.working_weekdays),
        sources=(
            HolidaySource(
                country=origin.holiday_country,
                subdivision=origin.holiday_subdivision,
                categories=spec.categories,
                open_on=frozenset(spec.open_on),
                closed_on=frozenset(spec.closed_on),
            ),
        ),
        closed_dates={c.date: c.reason for c in spec.closed_dates},
    )


def delivery_calendar(
    option: ShippingOption, country: str, subdivision: str | None
) -> BusinessCalendar:
    """The carrier's delivery days at a destination: its weekdays, the destination's national
    and state holidays (minus those it delivers on), its own non-delivery days."""
    spec = option.holidays
    return BusinessCalendar(
        name=f"{option.code} to {country}-{subdivision or '*'}",
        weekdays=frozenset(option.delivery_weekdays),
        sources=(
            HolidaySource(
                country=country,
                subdivision=subdivision,
                categories=spec.categories,
                open_on=frozenset(spec.open_on),
                closed_on=frozenset(spec.closed_on),
            ),
        ),
        closed_dates={c.date: c.reason for c in spec.closed_dates},
    )
