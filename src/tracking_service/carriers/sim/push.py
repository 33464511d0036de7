"""The simulated carrier pushing scans, as real carriers' push subscriptions do.

With `sim-carrier --push-url URL`, every number the simulated carrier minted or was asked about
is watched, and each scan that happens to it afterwards (as simulated time passes) is POSTed to
URL: the body is the carrier's own `POST /v1/track` answer for the numbers that have something
new (`{"results": [...]}`, up to 100 a request), with the shared secret in `X-Push-Secret`.
The service's `POST /v1/carriers/simulated/events` takes exactly that.

A parcel's whole life is a pure function of its number (`timeline.plan`), so the only state is
how many scans of each watched number were pushed already, bounded by `max_watched` (the
oldest watched numbers are forgotten first) and dropped once a parcel has no scan left to
come. A push that fails is tried again at the next tick with whatever is new by then, waiting
longer after each failure (up to a minute); the receiver deduplicates scans, and its polling
catches up on anything a push never delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import httpx

from tracking_service.carriers.sim.number import SimNumberError, decode
from tracking_service.carriers.sim.timeline import Plan, plan

log = logging.getLogger(__name__)

MAX_PUSH_BATCH = 100
MAX_WATCHED = 10_000
MAX_BACKOFF_SECONDS = 60.0


@dataclass(slots=True)
class _Watched:
    parcel: Plan
    pushed: int  # scans already pushed (or known to the asker)


class Pusher:
    """Watches numbers and pushes their new scans to `url` every `every` real seconds."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        every: float = 1.0,
        max_watched: int = MAX_WATCHED,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if every <= 0:
            raise ValueError("every must be positive")
        self.url = url
        self.every = every
        self.max_watched = max_watched
        self._headers = {"X-Push-Secret": secret} if secret else {}
        self._transport = transport
        self._watched: OrderedDict[str, _Watched] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.pushed_scans = 0
        self.failures = 0

    @property
    def watched(self) -> int:
        return len(self._watched)

    def watch(self, numbers: Iterable[object], now: datetime, speed: float) -> None:
        """Push the scans of `numbers` that happen after `now` (invalid numbers are skipped)."""
        for number in numbers:
            if not isinstance(number, str) or number in self._watched:
                continue
            try:
                parcel = plan(decode(number), speed)
            except SimNumberError:
                continue
            seen = sum(1 for at in parcel.instants if at <= now)
            if seen < len(parcel.instants):
                self._watched[number] = _Watched(parcel, seen)
                if len(self._watched) > self.max_watched:
                    self._watched.popitem(last=False)

    def due(self, now: datetime) -> list[str]:
        """Watched numbers with scans not pushed yet at `now`."""
        return [
            number
            for number, w in self._watched.items()
            if w.pushed < len(w.parcel.instants) and w.parcel.instants[w.pushed] <= now
        ]

    async def tick(self, now: datetime, render: Callable[[str, datetime], str]) -> int:
        """Push what is new at `now` (`render` is the carrier's JSON for one number); the
        number of scans pushed. Raises `httpx.HTTPError` when a push fails."""
        numbers = self.due(now)
        sent = 0
        for start in range(0, len(numbers), MAX_PUSH_BATCH):
            batch = numbers[start : start + MAX_PUSH_BATCH]
            body = '{"results":[' + ",".join(render(n, now) for n in batch) + "]}"
            response = await self._http().post(
                self.url,
                content=body.encode(),
                headers={**self._headers, "Content-Type": "application/json"},
            )
            response.raise_for_status()
            for number in batch:
                watched = self._watched.get(number)
                if watched is None:
                    continue
                seen = sum(1 for at in watched.parcel.instants if at <= now)
                sent += seen - watched.pushed
                watched.pushed = seen
                if seen >= len(watched.parcel.instants):
                    del self._watched[number]  # its last scan is out: nothing more to come
        self.pushed_scans += sent
        return sent

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=10.0)
        return self._client

    def start(self, clock: Callable[[], datetime], render: Callable[[str, datetime], str]) -> None:
        """Push every `every` seconds in the background until `stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(clock, render), name="sim push")
            log.info("pushing new scans to %s every %g s", self.url, self.every)

    async def _run(
        self, clock: Callable[[], datetime], render: Callable[[str, datetime], str]
    ) -> None:
        wait = self.every
        while True:
            await asyncio.sleep(wait)
            try:
                await self.tick(clock(), render)
            except httpx.HTTPError as exc:
                self.failures += 1
                wait = min(MAX_BACKOFF_SECONDS, wait * 2)
                log.warning("push to %s failed (%s); next try in %g s", self.url, exc, wait)
            else:
                wait = self.every

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
