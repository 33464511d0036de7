"""A per-client request limit, held in the memory of one process.

A token bucket per client address: `per_minute` requests at once, refilled evenly over the
minute, so a customer refreshing a page a few times is never refused while a script trying
tokens is slowed to the limit's pace. `check` answers None (go on) or the seconds until the
next request would be allowed (the `Retry-After`).

PER PROCESS: each API process counts on its own, so N processes behind a load balancer allow
up to N times the limit to one address, and a restart forgets the counts. That is a deliberate
trade: the public page is the service's most frequent request, and a database round trip per
view to share counters would cost more than the page itself. A deployment of several
processes that needs one limit for all of them puts it in front of the service (a reverse
proxy's or a CDN's per-address limit, e.g. nginx `limit_req`), keyed on the same address.

The address is the ASGI client's host. Behind a proxy that is the proxy's address unless the
server is told to trust the proxy's forwarded headers (uvicorn `--proxy-headers
--forwarded-allow-ips=...`); without that every customer shares the proxy's bucket.

Memory stays bounded: past `max_clients` addresses, buckets idle long enough to be full again
are dropped (they hold no information), and if that is not enough the table is cleared.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """`per_minute` requests a minute per key, in this process (see the module docstring)."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def check(self, key: str) -> float | None:
        """Take one request for `key`: None when allowed, else seconds to wait."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self.max_clients:
                self._sweep(now)
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {
            k: (tokens, at) for k, (tokens, at) in self._buckets.items() if now - at < full_after
        }
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
