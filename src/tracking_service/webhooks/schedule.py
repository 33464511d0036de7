"""What a receiver's answer means and when to try again, purely.

Any 2xx is success. 410 Gone disables the endpoint at once (the delivery keeps its place: it
is sent again if someone enables the endpoint). Anything else (another status, a timeout, a
refused connection, a redirect, which is never followed) is a failure retried on the
schedule: the delay before attempt n+1 is `schedule[n]`, scaled by a random factor within
the jitter so receivers coming back are not hit by a burst; after `len(schedule)` attempts
the delivery is failed. On 429, 502, 503 and 504 a `Retry-After` (seconds or an HTTP date)
is honoured: the next attempt is never earlier than it asks (capped at `retry_after_max`),
and never earlier than the schedule either.

Delays are service-clock time. Retry-After is the receiver's real time, so the caller converts
it with the clock's speed (`clock.simulated`) before passing it here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})


class Verdict(enum.StrEnum):
    SUCCEEDED = "succeeded"
    GONE = "gone"
    """410: the receiver says the endpoint is gone; disable it."""
    RETRY = "retry"


def verdict(status_code: int | None) -> Verdict:
    """What an answer means (None: no answer at all: timeout, refused, reset)."""
    if status_code is not None and 200 <= status_code < 300:
        return Verdict.SUCCEEDED
    if status_code == 410:
        return Verdict.GONE
    return Verdict.RETRY


def parse_retry_after(value: str | None, now_real: datetime) -> timedelta | None:
    """A Retry-After header as a real duration from `now_real` (None: absent or unreadable)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - now_real)


def jittered(delay: timedelta, jitter: float, rand: Callable[[], float]) -> timedelta:
    """`delay` scaled by a factor in [1 - jitter, 1 + jitter] (`rand()` in [0, 1))."""
    if delay <= timedelta(0) or jitter <= 0:
        return delay
    return delay * (1 + jitter * (2 * rand() - 1))


def next_delay(
    attempts: int,
    schedule: Sequence[timedelta],
    *,
    jitter: float,
    rand: Callable[[], float],
    status_code: int | None = None,
    retry_after: timedelta | None = None,
    retry_after_max: timedelta = timedelta(hours=24),
) -> timedelta | None:
    """The wait before the next attempt after `attempts` attempts failed, or None when that
    was the last one. `retry_after` (service-clock time) counts only on 429/502/503/504."""
    if attempts >= len(schedule):
        return None
    delay = jittered(schedule[attempts], jitter, rand)
    if retry_after is not None and status_code in RETRY_AFTER_STATUSES:
        delay = max(delay, min(retry_after, retry_after_max))
    return delay
