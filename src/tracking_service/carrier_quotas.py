"""The carriers' `CallGate` in the database: limits per day and per second for all processes.

A carrier account's limits (DHL: 250 calls a day, 1 a second on the starter plan) bind the
deployment, not one process, so every process asks the database before a call. Nothing here
holds a lock or a transaction across a carrier call: each step is one atomic statement in a
transaction of its own.

**Per day** (`carrier_quotas`, one row per carrier and UTC day): before each call one upsert
adds the call to the day's count only while the count stays within the limit
(`INSERT ... ON CONFLICT DO UPDATE SET calls = calls + 1 WHERE calls + 1 <= limit RETURNING`).
No row back means the day is spent: the call is refused with the seconds until the next UTC
midnight, and this process remembers that until then instead of asking again. The count is
exact: a call is counted once it may be sent, whichever process sends it.

**Per second** (`carrier_rate_windows`): time is cut into windows of one second (or of 1/rate
seconds, whole, when the rate is under one a second), each allowing `capacity` calls. A
process takes permits in batches: one upsert adds the batch size `k` to the window's
`requested` counter and returns the new total `T`; the positions `T-k+1 .. T` are this
process's, and those up to `capacity` are permits, the rest refusals. The counter only grows,
so concurrent processes get disjoint positions and the permits of a window never exceed its
capacity, whatever the number of processes, with one round trip per batch. Permits are spent
only within their window (unused ones lapse at its end), so a process that asks for too many
only idles them briefly; batches are a tenth of the capacity (at most 200: the simulated
carrier's 2,000 a second cost ten round trips a second in a busy process) and 1 for slow
carriers. Refused, the process sleeps until the next window.

Why not a lease on a share of the rate per process: a share needs the live processes counted
(heartbeats) and idles the share of a process with nothing to poll; the windows give a busy
process whatever the idle ones leave. The price is the fixed window: calls at the end of one
window and the start of the next can come closer together than 1/rate (at most `capacity`
per window, so at most twice the rate over an arbitrary second); the per-process token bucket
in `CarrierHttp` smooths one process's calls within the window. Processes on different
machines cut windows on their own clocks, so clock skew shifts, but does not multiply, the
allowance. Rows of past windows are deleted by `prune` (the usage flush job).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracking_service.models import CarrierQuota, CarrierRateWindow

log = logging.getLogger(__name__)

_QUOTAS: sa.Table = CarrierQuota.__table__  # type: ignore[attr-defined]
_WINDOWS: sa.Table = CarrierRateWindow.__table__  # type: ignore[attr-defined]
MAX_BATCH = 200
KEEP_WINDOWS_SECONDS = 120  # rows of windows older than this are deleted


def _utc_now() -> datetime:
    return datetime.now(UTC)


def seconds_to_next_day(now: datetime) -> float:
    """Seconds from `now` (aware) to the next UTC midnight, when daily quotas renew."""
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    return (midnight - now).total_seconds()


@dataclass(frozen=True, slots=True)
class RateWindows:
    """How a rate is cut into windows: `seconds` long, `capacity` calls each, taken `batch`
    at a time."""

    seconds: int
    capacity: int
    batch: int

    @classmethod
    def of(cls, per_second: float) -> RateWindows:
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        seconds = 1 if per_second >= 1 else math.ceil(1 / per_second)
        capacity = max(1, math.floor(per_second * seconds))
        batch = max(1, min(MAX_BATCH, capacity // 10))
        return cls(seconds, capacity, batch)

    def start(self, epoch: float) -> int:
        """The epoch second the window holding `epoch` starts."""
        return int(epoch // self.seconds) * self.seconds


def granted(capacity: int, total: int, asked: int) -> int:
    """Permits among positions `total - asked + 1 .. total` of a window of `capacity`."""
    return max(0, min(asked, capacity - (total - asked)))


def _insert(conn: AsyncConnection) -> Callable[..., sqlite.Insert | postgresql.Insert]:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


@dataclass(slots=True)
class _Pool:
    window: int
    left: int


class SqlCallGate:
    """`carriers.usage.CallGate` over `carrier_quotas` and `carrier_rate_windows`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._engine = engine
        self._now = now
        self._sleep = sleep
        self._pools: dict[str, _Pool] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._spent: dict[str, datetime] = {}  # carrier -> when its spent day ends

    async def admit(
        self, carrier: str, *, per_second: float, daily_limit: int | None
    ) -> float | None:
        if daily_limit is not None:
            refused = await self._spend_day(carrier, daily_limit)
            if refused is not None:
                return refused
        await self._permit(carrier, RateWindows.of(per_second))
        return None

    # ---- per day ----------------------------------------------------------------------------

    async def _spend_day(self, carrier: str, limit: int) -> float | None:
        now = self._now()
        until = self._spent.get(carrier)
        if until is not None and now < until:
            return (until - now).total_seconds()
        if await self.take_daily(carrier, now.astimezone(UTC).date(), 1, limit):
            return None
        wait = seconds_to_next_day(now)
        self._spent[carrier] = now + timedelta(seconds=wait)
        log.warning("%s: the daily limit of %d calls is spent until midnight UTC", carrier, limit)
        return wait

    async def take_daily(self, carrier: str, day: date, calls: int, limit: int) -> bool:
        """Add `calls` to `carrier`'s count of `day` if it stays within `limit`; True if so."""
        if calls > limit:
            return False
        async with self._engine.begin() as conn:
            insert = _insert(conn)(_QUOTAS).values(carrier=carrier, day=day, calls=calls)
            statement = insert.on_conflict_do_update(
                index_elements=["carrier", "day"],
                set_={"calls": _QUOTAS.c.calls + insert.excluded.calls},
                where=_QUOTAS.c.calls + insert.excluded.calls <= limit,
            ).returning(_QUOTAS.c.calls)
            return (await conn.execute(statement)).first() is not None

    # ---- per second -------------------------------------------------------------------------

    async def _permit(self, carrier: str, windows: RateWindows) -> None:
        """Wait for one permit of `carrier`'s shared rate, taking a batch when none is left."""
        lock = self._locks.setdefault(carrier, asyncio.Lock())
        async with lock:  # one refill at a time in this process; the others then draw from it
            while True:
                epoch = self._now().timestamp()
                window = windows.start(epoch)
                pool = self._pools.get(carrier)
                if pool is not None and pool.window == window and pool.left > 0:
                    pool.left -= 1
                    return
                got = await self.take_window(carrier, window, windows.batch, windows.capacity)
                if got > 0:
                    self._pools[carrier] = _Pool(window, got - 1)
                    return
                await self._sleep(max(0.001, window + windows.seconds - epoch))

    async def take_window(self, carrier: str, window: int, asked: int, capacity: int) -> int:
        """Ask for `asked` permits of `carrier`'s window starting at epoch second `window`;
        the number granted (0 when the window is full)."""
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # A window lives one second: its count need not wait for the disk (a crash
                # forgets at most the last instants' permits, harmless), which takes the
                # commit's flush, most of the round trip, off the calls' path.
                await conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
            insert = _insert(conn)(_WINDOWS).values(
                carrier=carrier, window_start=window, requested=asked
            )
            statement = insert.on_conflict_do_update(
                index_elements=["carrier", "window_start"],
                set_={"requested": _WINDOWS.c.requested + insert.excluded.requested},
            ).returning(_WINDOWS.c.requested)
            total = (await conn.execute(statement)).scalar_one()
        return granted(capacity, int(total), asked)

    async def prune(self) -> int:
        """Delete the rows of windows long past; how many."""
        cutoff = int(self._now().timestamp()) - KEEP_WINDOWS_SECONDS
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(_WINDOWS).where(_WINDOWS.c.window_start < cutoff))
        return int(result.rowcount or 0)
