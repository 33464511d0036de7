"""The HTTP edge every carrier adapter shares: one client, limits, retries, typed call errors.

`CarrierHttp` wraps one `httpx.AsyncClient` per carrier with
- a timeout on every call,
- a token-bucket rate limiter and a semaphore on concurrent requests (per carrier, per process),
- retries of 429, 5xx and transport errors (timeouts, refused connections) with exponential
  backoff and full jitter, honouring `Retry-After` (seconds or HTTP date) up to a cap.

Anything that is not retried (2xx, 3xx, 4xx other than 429) is returned to the caller. When
retries run out, `CarrierCallError` says why with a `FailureKind` (`rate_limited` or
`unavailable`), so adapters turn it into a typed failure. `sleep`, `clock` and `rand` are
injectable: tests never sleep for real. The simulated carrier reuses this class as it is.

Every request is reported to a `CallObserver` and admitted first by a `CallGate`
(`carriers.usage`): the gate holds the carrier account's limits for all processes together
(per second and per day), the token bucket and the semaphore only smooth this process's share.
A call the gate refuses (the daily quota is spent) is never sent: it raises `rate_limited` with
the seconds until the quota renews, without retries.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tracking_service import __version__
from tracking_service.carriers.base import FailureKind
from tracking_service.carriers.usage import (
    CallGate,
    CallObserver,
    CallRecord,
    NoObserver,
    OpenGate,
    outcome_of_error,
    outcome_of_status,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
USER_AGENT = f"tracking-service/{__version__}"


@dataclass(frozen=True, slots=True)
class CarrierLimits:
    """How hard one process may lean on one carrier, and how patiently it retries."""

    requests_per_second: float = 5.0
    burst: int = 5  # token bucket capacity
    max_concurrency: int = 4
    timeout: float = 15.0  # seconds, every call (connect capped at 5 s)
    max_attempts: int = 4  # first try included
    backoff_base: float = 0.5  # seconds; attempt n waits up to base * 2**n
    backoff_cap: float = 20.0
    retry_after_cap: float = 60.0  # a longer Retry-After gives up at once (rate_limited)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CarrierCallError(Exception):
    """A call that could not get a usable answer; `kind` is the failure to report."""

    def __init__(self, kind: FailureKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (0 = first retry).

    Full jitter (`rand` in [0, 1) times min(cap, base * 2**attempt)) spreads out clients that
    failed together; a server's `Retry-After` wins over our own schedule.
    """
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling: float = min(cap, base * (2**attempt))
    return max(0.0, min(1.0, rand)) * ceiling


class TokenBucket:
    """Async token bucket: `rate` tokens per second, up to `capacity` saved for bursts."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._tokens = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Take one token, waiting (in order of arrival) until one is there."""
        async with self._lock:
            self._refill()
            while self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain (httpx wraps httpcore wraps OSError wraps ...)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def transport_problem(exc: httpx.TransportError, target: str) -> str:
    """What went wrong, in words a user can act on: `cannot connect to <target>: connection
    refused`, `no answer from <target> (read timeout)`, ... `target` names the URL and, when
    known, the setting that chose it."""
    root = _root_cause(exc)
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connect",
            httpx.ReadTimeout: "read",
            httpx.WriteTimeout: "write",
            httpx.PoolTimeout: "pool",
        }.get(type(exc), "")
        return f"no answer from {target} ({phase + ' ' if phase else ''}timeout)"
    if isinstance(exc, httpx.ConnectError):
        if isinstance(root, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(root, socket.gaierror):
            reason = f"host name not found ({root.strerror or root})"
        else:
            reason = str(root) or str(exc) or type(root).__name__
        return f"cannot connect to {target}: {reason}"
    detail = str(root) or str(exc) or type(exc).__name__
    return f"transport error talking to {target}: {detail}"


def _describe(response: httpx.Response) -> str:
    text = response.text[:200].strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


class CarrierHttp:
    """One carrier's HTTP client with its limits; `request` retries what is worth retrying."""

    def __init__(
        self,
        carrier: str,
        limits: CarrierLimits | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        base_url: str = "",
        base_url_setting: str = "",
        observer: CallObserver | None = None,
        gate: CallGate | None = None,
        daily_limit: int | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """`observer`/`gate`: see `carriers.usage` (default: count nothing, admit all);
        `daily_limit`: calls per UTC day for all processes together (None: unlimited); `now`:
        the wall clock of the call records (real time: carriers count real days)."""
        self.carrier = carrier
        self.observer: CallObserver = observer or NoObserver()
        self.gate: CallGate = gate or OpenGate()
        self.daily_limit = daily_limit
        self._now = now or _utc_now
        self.base_url = base_url
        self.base_url_setting = base_url_setting
        self.limits = limits or CarrierLimits()
        timeout = httpx.Timeout(self.limits.timeout, connect=min(5.0, self.limits.timeout))
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        self._timeout = timeout
        self._sleep = sleep
        self._rand = rand
        self._bucket = TokenBucket(
            self.limits.requests_per_second, max(1, self.limits.burst), sleep=sleep
        )
        self._slots = asyncio.Semaphore(self.limits.max_concurrency)

    async def _send_once(
        self, method: str, url: str, endpoint: str, numbers: int, **kwargs: Any
    ) -> httpx.Response:
        await self._bucket.acquire()
        refused = await self.gate.admit(
            self.carrier,
            per_second=self.limits.requests_per_second,
            daily_limit=self.daily_limit,
        )
        if refused is not None:
            raise CarrierCallError(
                FailureKind.RATE_LIMITED,
                f"{self.carrier}: the daily limit of {self.daily_limit} calls is spent; "
                f"it renews in {refused:.0f} s",
                refused,
            )
        async with self._slots:
            at, started = self._now(), time.monotonic()
            try:
                response = await self.client.request(method, url, timeout=self._timeout, **kwargs)
            except httpx.TransportError as exc:
                self._record(endpoint, outcome_of_error(exc), at, started, numbers)
                raise
            self._record(endpoint, outcome_of_status(response.status_code), at, started, numbers)
            return response

    def _record(
        self, endpoint: str, outcome: str, at: datetime, started: float, numbers: int
    ) -> None:
        call = CallRecord(
            carrier=self.carrier,
            endpoint=endpoint,
            outcome=outcome,
            latency_ms=(time.monotonic() - started) * 1000.0,
            numbers=numbers,
            at=at,
        )
        try:
            self.observer.record(call)
        except Exception:  # counting must never fail a call
            log.exception("%s: could not record a call", self.carrier)

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str = "track",
        numbers: int = 0,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; returns any non-retryable response, raises `CarrierCallError`.

        `endpoint` (what the call is for: `track`, `token`) and `numbers` (tracking numbers
        in the request) are only reported to the observer."""
        limits = self.limits
        last_problem = "no attempt made"
        last_kind = FailureKind.UNAVAILABLE
        last_retry_after: float | None = None
        for attempt in range(limits.max_attempts):
            retry_after: float | None = None
            try:
                response = await self._send_once(method, url, endpoint, numbers, **kwargs)
            except httpx.TransportError as exc:  # timeouts included
                last_kind, last_problem = FailureKind.UNAVAILABLE, self._problem(exc, url)
            else:
                if not _retryable_status(response.status_code):
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                last_problem = _describe(response)
                last_retry_after = retry_after
                last_kind = (
                    FailureKind.RATE_LIMITED
                    if response.status_code == 429
                    else FailureKind.UNAVAILABLE
                )
                if retry_after is not None and retry_after > limits.retry_after_cap:
                    raise CarrierCallError(
                        last_kind,
                        f"{self.carrier}: {last_problem} (Retry-After {retry_after:.0f} s)",
                        retry_after,
                    )
            if attempt + 1 >= limits.max_attempts:
                break
            delay = backoff_delay(
                attempt,
                base=limits.backoff_base,
                cap=limits.backoff_cap,
                rand=self._rand(),
                retry_after=retry_after,
            )
            log.warning(
                "%s %s %s failed (%s); retry %d in %.2f s",
                self.carrier,
                method,
                url,
                last_problem,
                attempt + 1,
                delay,
            )
            await self._sleep(delay)
        raise CarrierCallError(
            last_kind,
            f"{self.carrier}: {last_problem} (after {limits.max_attempts} attempts)",
            last_retry_after,
        )

    def _problem(self, exc: httpx.TransportError, url: str) -> str:
        """`transport_problem` naming the base URL and its setting when the call went there."""
        if self.base_url and url.startswith(self.base_url.rstrip("/")):
            target = self.base_url.rstrip("/")
            if self.base_url_setting:
                target += f" (set by {self.base_url_setting})"
        else:
            target = url
        return transport_problem(exc, target)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def decode_json(response: httpx.Response) -> object:
    """The JSON body, or `CarrierCallError(bad_response)` when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CarrierCallError(
            FailureKind.BAD_RESPONSE,
            f"HTTP {response.status_code} body is not JSON: {exc}",
        ) from exc


def join_url(base_url: str, path: str) -> str:
    """`base_url` (which may carry a path prefix) + an absolute API path."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")
