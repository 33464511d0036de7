"""The pipeline's tunable numbers, as one plain object (built by `Settings.tracking_config()`).

Kept apart from `Settings` so the pure rules take exactly what they use and tests can build
one with a keyword or two. All durations are in the service's clock time, which a
simulation may run faster (`TRACKING_CLOCK_SPEED`): a 48-hour stall threshold is 48 simulated
hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from tracking_service.carriers.status import Status

S = Status

DEFAULT_STALL_HOURS: Mapping[Status, float] = MappingProxyType(
    {
        S.INFO_RECEIVED: 72.0,
        S.IN_TRANSIT: 48.0,
        S.OUT_FOR_DELIVERY: 24.0,
        S.FAILED_ATTEMPT: 48.0,
        S.EXCEPTION: 48.0,
        S.AVAILABLE_FOR_PICKUP: 120.0,
    }
)
"""Business hours (weekends at the destination do not count) without a new scan after which
a shipment in that status is `stalled`. A status absent here never stalls: `pending` has the
expiry instead, final statuses have nothing left to wait for."""

DEFAULT_POLL_EVERY: Mapping[Status, timedelta] = MappingProxyType(
    {
        S.PENDING: timedelta(hours=24),
        S.INFO_RECEIVED: timedelta(hours=6),
        S.IN_TRANSIT: timedelta(hours=4),
        S.OUT_FOR_DELIVERY: timedelta(minutes=30),
        S.AVAILABLE_FOR_PICKUP: timedelta(hours=6),
        S.FAILED_ATTEMPT: timedelta(hours=2),
        S.EXCEPTION: timedelta(hours=4),
    }
)
"""How often a shipment is polled in each non-final status with no failure. In transit, this
is the interval while the expected date is two or more days away (see `poll_near`)."""


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """Stall thresholds, polling cadence and expiry.

    - `stall_hours`: per status, business hours without a scan before `stalled`.
    - `poll_every`: per non-final status, the polling interval (a status missing here is
      polled like `in_transit`).
    - `poll_near`: the in-transit interval once the expected date is today or has passed; it
      shortens linearly from `poll_every[in_transit]` two days before.
    - `backoff_max`: the longest wait after repeated failures (the interval doubles with each
      consecutive failure up to this, or up to the status's own interval if that is longer).
    - `spread`: a fraction of the interval added per shipment (deterministic, from its id), so
      shipments registered together do not all come due at the same instant.
    - `expiry_days`: a shipment the carrier still does not know this many days after its
      registration is `expired` (carriers answer "not found" until a label is first scanned).
    """

    stall_hours: Mapping[Status, float] = field(default_factory=lambda: DEFAULT_STALL_HOURS)
    poll_every: Mapping[Status, timedelta] = field(default_factory=lambda: DEFAULT_POLL_EVERY)
    poll_near: timedelta = timedelta(hours=2)
    backoff_max: timedelta = timedelta(hours=12)
    spread: float = 0.1
    expiry_days: int = 30

    def interval(self, status: Status) -> timedelta:
        """The base polling interval of a status."""
        return self.poll_every.get(status, self.poll_every.get(S.IN_TRANSIT, timedelta(hours=4)))
