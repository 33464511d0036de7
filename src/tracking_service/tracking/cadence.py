"""When to poll a shipment next: by status, nearness of the expected date, failures, spread.

Pure. Polls cost carrier quota (DHL allows 250 calls a day by default), so a parcel is polled
as often as news is likely: every 30 minutes out for delivery, every few hours in transit and
more often as the expected date nears, daily while the carrier has not seen it, never once it
is final. Consecutive failures double the wait (up to `backoff_max`) so a carrier that is
down or refusing us is not hammered while others keep flowing, and a carrier's own
`Retry-After` is honoured. Every interval is stretched by a per-shipment fraction of
`spread` derived from the shipment's id: thousands registered in one batch come due spread
over a window instead of in one burst, and the same shipment always gets the same offset, so
the plan stays a pure function.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from tracking_service.carriers.status import Status
from tracking_service.tracking.config import TrackingConfig
from tracking_service.tracking.delays import local_date
from tracking_service.tracking.progress import FINAL

_NEAR_DAYS = 2  # the in-transit interval shortens over the last two days before the date
_MAX_DOUBLINGS = 20


def spread_fraction(shipment_id: int) -> float:
    """A stable number in [0, 1) for a shipment, evenly spread over ids."""
    digest = hashlib.blake2b(str(shipment_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def base_interval(
    status: Status,
    now: datetime,
    config: TrackingConfig,
    *,
    expected: date | None = None,
    dest_tz: str | None = None,
) -> timedelta:
    """The interval for a status with no failure. In transit, it goes from
    `poll_every[in_transit]` two days before the `expected` date (a local date at the
    destination) down to `poll_near` on that date and after it."""
    interval = config.interval(status)
    if status != Status.IN_TRANSIT or expected is None:
        return interval
    days_left = (expected - local_date(now, dest_tz)).days
    if days_left >= _NEAR_DAYS:
        return interval
    near = min(config.poll_near, interval)
    if days_left <= 0:
        return near
    return near + (interval - near) * (days_left / _NEAR_DAYS)


def backoff(interval: timedelta, failures: int, config: TrackingConfig) -> timedelta:
    """The interval after `failures` consecutive failures: doubled per failure, up to
    `backoff_max` (or the interval itself when that is longer)."""
    if failures <= 0:
        return interval
    ceiling = max(config.backoff_max, interval)
    doubled: timedelta = interval * (2 ** min(failures, _MAX_DOUBLINGS))
    return min(doubled, ceiling)


def next_poll_at(
    status: Status,
    shipment_id: int,
    now: datetime,
    config: TrackingConfig,
    *,
    expected: date | None = None,
    dest_tz: str | None = None,
    failures: int = 0,
    retry_after: float | None = None,
) -> datetime | None:
    """When to poll next; None after a final status (never again).

    `expected` is the estimate's earliest date, `failures` the consecutive failed polls so far
    (this one included), `retry_after` the seconds the carrier asked us to wait.
    """
    if status in FINAL:
        return None
    interval = base_interval(status, now, config, expected=expected, dest_tz=dest_tz)
    wait = backoff(interval, failures, config)
    if retry_after is not None and retry_after > 0:
        wait = max(wait, timedelta(seconds=retry_after))
    return now + wait * (1.0 + config.spread * spread_fraction(shipment_id))
