"""The retry schedule and what an answer means (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracking_service.webhooks.config import DEFAULT_SCHEDULE
from tracking_service.webhooks.schedule import Verdict, next_delay, parse_retry_after, verdict

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def middle() -> float:
    return 0.5


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (200, Verdict.SUCCEEDED),
        (204, Verdict.SUCCEEDED),
        (299, Verdict.SUCCEEDED),
        (410, Verdict.GONE),
        (301, Verdict.RETRY),
        (400, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (None, Verdict.RETRY),
    ],
)
def test_verdict(code: int | None, expected: Verdict) -> None:
    assert verdict(code) is expected


def test_default_schedule_is_ten_attempts_over_about_75_hours() -> None:
    assert len(DEFAULT_SCHEDULE) == 10
    assert DEFAULT_SCHEDULE[0] == timedelta(0)
    total = sum(DEFAULT_SCHEDULE, timedelta())
    assert timedelta(hours=75) < total < timedelta(hours=76)


def test_delays_follow_the_schedule_without_jitter() -> None:
    delays = [next_delay(n, DEFAULT_SCHEDULE, jitter=0.0, rand=middle) for n in range(1, 10)]
    assert delays == list(DEFAULT_SCHEDULE[1:])
    assert next_delay(10, DEFAULT_SCHEDULE, jitter=0.0, rand=middle) is None


def test_jitter_stays_within_its_fraction() -> None:
    low = next_delay(2, DEFAULT_SCHEDULE, jitter=0.2, rand=lambda: 0.0)
    high = next_delay(2, DEFAULT_SCHEDULE, jitter=0.2, rand=lambda: 0.999999)
    assert low == timedelta(minutes=4)
    assert high is not None and timedelta(minutes=5) < high < timedelta(minutes=6)


def test_a_configured_schedule() -> None:
    short = (timedelta(0), timedelta(seconds=1), timedelta(seconds=2))
    assert next_delay(1, short, jitter=0, rand=middle) == timedelta(seconds=1)
    assert next_delay(3, short, jitter=0, rand=middle) is None


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_retry_after_is_honoured_on_busy_answers(code: int) -> None:
    delay = next_delay(
        1,
        DEFAULT_SCHEDULE,
        jitter=0,
        rand=middle,
        status_code=code,
        retry_after=timedelta(seconds=120),
    )
    assert delay == timedelta(seconds=120)


def test_retry_after_never_brings_an_attempt_forward_and_is_capped() -> None:
    early = next_delay(
        2,
        DEFAULT_SCHEDULE,
        jitter=0,
        rand=middle,
        status_code=503,
        retry_after=timedelta(seconds=1),
    )
    assert early == timedelta(minutes=5)
    capped = next_delay(
        1,
        DEFAULT_SCHEDULE,
        jitter=0,
        rand=middle,
        status_code=429,
        retry_after=timedelta(days=30),
        retry_after_max=timedelta(hours=24),
    )
    assert capped == timedelta(hours=24)


def test_retry_after_is_ignored_on_other_answers() -> None:
    delay = next_delay(
        1,
        DEFAULT_SCHEDULE,
        jitter=0,
        rand=middle,
        status_code=500,
        retry_after=timedelta(seconds=120),
    )
    assert delay == timedelta(seconds=5)


def test_parse_retry_after() -> None:
    assert parse_retry_after("30", NOW) == timedelta(seconds=30)
    assert parse_retry_after("Tue, 01 Dec 2026 10:02:00 GMT", NOW) == timedelta(minutes=2)
    assert parse_retry_after("Tue, 01 Dec 2026 09:00:00 GMT", NOW) == timedelta(0)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
