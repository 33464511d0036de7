"""Quiet hours: evening, night and morning in the customer's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tracking_service.notifications.quiet_hours import is_quiet, not_before

SP = "America/Sao_Paulo"
NY = "America/New_York"


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("hour", "minute", "held_until"),
    [
        (20, 59, None),  # evening, before the quiet hours: now
        (21, 0, (2025, 6, 11, 8)),  # the first quiet minute: tomorrow morning
        (23, 30, (2025, 6, 11, 8)),
        (0, 0, (2025, 6, 10, 8)),  # past midnight: this morning
        (7, 59, (2025, 6, 10, 8)),
        (8, 0, None),  # the morning hour itself: now
        (13, 0, None),
    ],
)
def test_evening_night_and_morning_in_sao_paulo(
    hour: int, minute: int, held_until: tuple[int, int, int, int] | None
) -> None:
    at = local(SP, 2025, 6, 10, hour, minute)
    expected = None if held_until is None else local(SP, *held_until).astimezone(UTC)
    assert not_before(at, SP, 21, 8) == expected
    if expected is not None:
        assert expected.tzinfo == UTC and expected > at


def test_sao_paulo_has_kept_utc_minus_3_since_2019_and_not_before_it() -> None:
    # January 2025: no summer time any more, 08:00 is 11:00 UTC
    assert not_before(local(SP, 2025, 1, 15, 23, 0), SP, 21, 8) == datetime(
        2025, 1, 16, 11, tzinfo=UTC
    )
    # January 2019 still had summer time (UTC-2): 08:00 was 10:00 UTC
    assert not_before(local(SP, 2019, 1, 15, 23, 0), SP, 21, 8) == datetime(
        2019, 1, 16, 10, tzinfo=UTC
    )


def test_a_us_zone_around_the_spring_and_autumn_changes() -> None:
    # Saturday 8 March 2025, 22:00 EST; clocks go forward at 02:00 on Sunday 9 March
    spring = not_before(local(NY, 2025, 3, 8, 22, 0), NY, 21, 8)
    assert spring == datetime(2025, 3, 9, 12, tzinfo=UTC)  # 08:00 EDT (UTC-4)
    assert spring is not None and spring - local(NY, 2025, 3, 8, 22, 0) == timedelta(hours=9)
    # Saturday 1 November 2025, 22:00 EDT; clocks go back at 02:00 on Sunday 2 November
    autumn = not_before(local(NY, 2025, 11, 1, 22, 0), NY, 21, 8)
    assert autumn == datetime(2025, 11, 2, 13, tzinfo=UTC)  # 08:00 EST (UTC-5)
    assert autumn is not None and autumn - local(NY, 2025, 11, 1, 22, 0) == timedelta(hours=11)


def test_a_morning_hour_inside_the_spring_gap_lands_just_after_it() -> None:
    # 02:00 does not exist on 9 March 2025 in New York: held until 03:00 EDT (07:00 UTC)
    at = local(NY, 2025, 3, 9, 1, 30)
    assert not_before(at, NY, 23, 2) == datetime(2025, 3, 9, 7, tzinfo=UTC)
    # the repeated hour on 2 November: its first occurrence (01:00 EDT = 05:00 UTC)
    assert not_before(local(NY, 2025, 11, 2, 0, 30), NY, 23, 1) == datetime(
        2025, 11, 2, 5, tzinfo=UTC
    )


def test_no_zone_or_an_unknown_one_is_utc() -> None:
    at = datetime(2025, 6, 10, 22, 0, tzinfo=UTC)
    morning = datetime(2025, 6, 11, 8, tzinfo=UTC)
    assert not_before(at, None, 21, 8) == morning
    assert not_before(at, "Mars/Olympus_Mons", 21, 8) == morning
    assert not_before(datetime(2025, 6, 10, 12, tzinfo=UTC), None, 21, 8) is None
    # the same instant is afternoon in Sao Paulo (19:00): sent at once
    assert not_before(at, SP, 21, 8) is None


def test_quiet_spans_within_one_night_and_none_at_all() -> None:
    assert sorted(h for h in range(24) if is_quiet(h, 21, 8)) == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        21,
        22,
        23,
    ]
    assert [h for h in range(24) if is_quiet(h, 1, 6)] == [1, 2, 3, 4, 5]
    assert [h for h in range(24) if is_quiet(h, 8, 8)] == []
    at = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
    assert not_before(at, None, 1, 6) == datetime(2025, 6, 10, 6, tzinfo=UTC)
    assert not_before(datetime(2025, 6, 10, 23, 0, tzinfo=UTC), None, 1, 6) is None
