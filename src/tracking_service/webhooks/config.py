"""The webhook dispatcher's settings as one plain object (`Settings.webhook_config()`).

Retry delays, the rotation overlap and the five days after which a failing endpoint is
disabled are service-clock time (a fast demo clock shrinks them); the timeout, the lease and
the job's interval are real seconds, as receivers and leases live in real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

DEFAULT_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
"""Standard Webhooks' example: the delay before each attempt (the first is immediate)."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """What the URL guard, the signer and the dispatcher need."""

    allow_http: bool = False
    allow_hosts: tuple[str, ...] = ()
    """Host names or IP/CIDR ranges allowed although loopback, private or link-local."""
    timeout_seconds: float = 10.0
    schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    """Each retry delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""
    retry_after_max: timedelta = timedelta(hours=24)
    """A receiver's Retry-After is honoured up to this."""
    rotation_overlap: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=5)
    """An endpoint whose every attempt failed this long is disabled."""
    batch_size: int = 200
    concurrency: int = 64
    lease_seconds: float = 60.0
    dispatch_every_seconds: float = 1.0
    fanout_batch_size: int = 1000
    response_head_bytes: int = 1024
