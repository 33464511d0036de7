"""What the HTTP seam reports about every carrier call, and what it asks before one.

carriers/ know no database, yet every call must be counted and the carrier accounts' limits
must hold for all the processes of a deployment together. So `CarrierHttp` is handed two
small protocols by whoever builds the registry:

- a `CallObserver`, told about every HTTP request sent to a carrier (one `CallRecord` per
  attempt, retries included: the carrier counts each one). `record` is synchronous and must not
  block: the service's observer only appends to a buffer that a job writes in batches;
- a `CallGate`, asked before every request. It waits for a per-second permit shared by every
  process and spends one call of the carrier's daily quota; when the day's quota is spent it
  answers the seconds until it renews, and the call is a `rate_limited` failure instead of a
  request (the worker backs off until then).

Both default to doing nothing (`track` on the command line without a database, tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

OK = "ok"
NOT_FOUND = "not_found"
# Outcomes that are not the carrier's fault: a found or a not-yet-known parcel.
NOT_ERRORS: frozenset[str] = frozenset({OK, NOT_FOUND})


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One HTTP request to a carrier: what for, how it went, how long it took.

    `endpoint` is what the call was for (`track`, `token`); `outcome` is `ok`, `not_found`,
    `rate_limited` (429), `auth_failed` (401/403), `http_4xx`, `http_5xx`, `timeout` or
    `unavailable` (no answer); `numbers` is how many tracking numbers the request carried.
    """

    carrier: str
    endpoint: str
    outcome: str
    latency_ms: float
    numbers: int
    at: datetime  # aware UTC, when the request was sent


def outcome_of_status(status: int) -> str:
    """The outcome of a call the carrier answered with HTTP `status`."""
    if status < 400:
        return OK
    if status == 404:
        return NOT_FOUND
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth_failed"
    return "http_5xx" if status >= 500 else "http_4xx"


def outcome_of_error(exc: httpx.TransportError) -> str:
    """The outcome of a call that got no answer."""
    return "timeout" if isinstance(exc, httpx.TimeoutException) else "unavailable"


class CallObserver(Protocol):
    """Told about every carrier call; must return at once (buffer, never I/O)."""

    def record(self, call: CallRecord) -> None: ...


class CallGate(Protocol):
    """Asked before every carrier call, shared by every process of a deployment."""

    async def admit(
        self, carrier: str, *, per_second: float, daily_limit: int | None
    ) -> float | None:
        """Wait for a permit within `per_second` calls a second for all processes together,
        then take one call of today's `daily_limit` (None: unlimited). None: go ahead; a
        number: refused, the seconds until the daily quota renews."""
        ...


class NoObserver:
    """Counts nothing."""

    def record(self, call: CallRecord) -> None:
        return None


class OpenGate:
    """Admits every call at once (the per-process token bucket still applies)."""

    async def admit(
        self, carrier: str, *, per_second: float, daily_limit: int | None
    ) -> float | None:
        return None
