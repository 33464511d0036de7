"""Every carrier call counted in `carrier_calls`, and the usage summary read back from it.

`SqlCallRecorder` is the carriers' `CallObserver`: `record` only appends to a bounded buffer in
memory (it runs inside `CarrierHttp`, between a carrier's answer and its caller, where a
database write per call would cost the simulated carrier's 2,000 calls a second a round trip
each), and `flush` writes what was buffered in one insert of its own transaction, never inside
a request's or a job's. Every process that calls carriers has its own buffer, so flushing is
process upkeep: `start` runs a small task beside the scheduler's jobs that flushes every
`TRACKING_CARRIER_USAGE_FLUSH_SECONDS` (and deletes past rate windows), and `close` stops it and
flushes the rest, so the table lags the calls by that interval at most.
When the database cannot take a batch, it goes back to the buffer for the next flush; past
`max_buffered` records the oldest are dropped (counted in `dropped`, logged): counting must
never grow a process without bound or fail a call.

`usage_summary` is what `GET /v1/carriers/usage` shows per carrier: calls and errors of a UTC
day (real time: carrier accounts count real days whatever the service clock's speed), the day's
quota spent against the daily limit, the last call, and the poll lag (the age of the oldest due
shipment, on the service clock the shipments are scheduled by).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from tracking_service.carrier_quotas import SqlCallGate
from tracking_service.carriers.config import CarrierConfig
from tracking_service.carriers.usage import NOT_ERRORS, CallRecord
from tracking_service.models import CarrierCall, CarrierQuota, Shipment

log = logging.getLogger(__name__)

_CALLS: sa.Table = CarrierCall.__table__  # type: ignore[attr-defined]
_QUOTAS: sa.Table = CarrierQuota.__table__  # type: ignore[attr-defined]
_SHIPMENTS: sa.Table = Shipment.__table__  # type: ignore[attr-defined]
MAX_BUFFERED = 100_000


def real_now() -> datetime:
    """The wall clock carrier accounts count days by (never the scaled service clock)."""
    return datetime.now(UTC)


class SqlCallRecorder:
    """`carriers.usage.CallObserver` buffering into `carrier_calls` (see the module)."""

    def __init__(self, engine: AsyncEngine, *, max_buffered: int = MAX_BUFFERED) -> None:
        self._engine = engine
        self._buffer: deque[CallRecord] = deque()
        self._max = max_buffered
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self, every_seconds: float, gate: SqlCallGate | None = None) -> None:
        """Flush every `every_seconds` until `close` (and prune `gate`'s past windows)."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._flush_every(every_seconds, gate), name="flush carrier usage"
            )

    async def _flush_every(self, every_seconds: float, gate: SqlCallGate | None) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            await self.flush()
            if gate is not None:
                try:
                    await gate.prune()
                except Exception:
                    log.exception("carrier usage: could not prune rate windows")

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def record(self, call: CallRecord) -> None:
        self._buffer.append(call)
        if len(self._buffer) > self._max:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("carrier usage: %d call records dropped (buffer full)", self.dropped)

    async def flush(self) -> int:
        """Write the buffered records in one transaction; how many were written."""
        async with self._lock:
            if not self._buffer:
                return 0
            batch = list(self._buffer)
            self._buffer.clear()
            rows = [
                {
                    "carrier": c.carrier,
                    "endpoint": c.endpoint,
                    "outcome": c.outcome,
                    "latency_ms": c.latency_ms,
                    "numbers": c.numbers,
                    "at": c.at,
                }
                for c in batch
            ]
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(sa.insert(_CALLS), rows)
            except Exception:
                log.exception("carrier usage: could not write %d call records", len(batch))
                for call in reversed(batch):  # back in front, in order, for the next flush
                    self._buffer.appendleft(call)
                while len(self._buffer) > self._max:
                    self._buffer.popleft()
                    self.dropped += 1
                return 0
            return len(batch)

    async def close(self) -> None:
        """Stop the flushing task and write what is left."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()


# ---- the usage summary ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CarrierUsage:
    """One carrier's usage of one UTC day and its polling state now."""

    carrier: str
    day: date
    calls: int
    errors: int
    outcomes: dict[str, int] = field(default_factory=dict)
    daily_limit: int | None = None
    daily_used: int = 0  # calls taken from the daily quota (counted before each call)
    requests_per_second: float = 0.0
    last_call_at: datetime | None = None
    last_outcome: str | None = None
    due_shipments: int = 0
    poll_lag_seconds: float = 0.0

    @property
    def daily_remaining(self) -> int | None:
        if self.daily_limit is None:
            return None
        return max(0, self.daily_limit - self.daily_used)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


async def usage_summary(
    session: AsyncSession,
    configs: Mapping[str, CarrierConfig],
    *,
    day: date,
    now: datetime,
) -> list[CarrierUsage]:
    """Usage per carrier of `configs` (in their order) on UTC `day`; `now` is the service
    clock's instant the poll lag is measured at."""
    conn = await session.connection()  # plain rows, in the caller's transaction
    codes = list(configs)
    start, end = _day_bounds(day)
    outcomes: dict[str, dict[str, int]] = {code: {} for code in codes}
    counted = await conn.execute(
        sa.select(_CALLS.c.carrier, _CALLS.c.outcome, sa.func.count())
        .where(_CALLS.c.carrier.in_(codes), _CALLS.c.at >= start, _CALLS.c.at < end)
        .group_by(_CALLS.c.carrier, _CALLS.c.outcome)
    )
    for carrier, outcome, count in counted.all():
        outcomes[carrier][outcome] = int(count)
    used = dict(
        (
            await conn.execute(
                sa.select(_QUOTAS.c.carrier, _QUOTAS.c.calls).where(
                    _QUOTAS.c.day == day, _QUOTAS.c.carrier.in_(codes)
                )
            )
        ).all()
    )
    due = {
        carrier: (int(count), oldest)
        for carrier, count, oldest in (
            await conn.execute(
                sa.select(
                    _SHIPMENTS.c.carrier, sa.func.count(), sa.func.min(_SHIPMENTS.c.next_poll_at)
                )
                .where(_SHIPMENTS.c.next_poll_at <= now, _SHIPMENTS.c.carrier.in_(codes))
                .group_by(_SHIPMENTS.c.carrier)
            )
        ).all()
    }
    usages = []
    for code in codes:
        last = (
            await conn.execute(
                sa.select(_CALLS.c.at, _CALLS.c.outcome)
                .where(_CALLS.c.carrier == code)
                .order_by(_CALLS.c.at.desc())
                .limit(1)
            )
        ).first()
        count, oldest = due.get(code, (0, None))
        if oldest is not None and oldest.tzinfo is None:  # min() skips the column's type
            oldest = oldest.replace(tzinfo=UTC)
        by_outcome = outcomes[code]
        config = configs[code]
        usages.append(
            CarrierUsage(
                carrier=code,
                day=day,
                calls=sum(by_outcome.values()),
                errors=sum(n for o, n in by_outcome.items() if o not in NOT_ERRORS),
                outcomes=by_outcome,
                daily_limit=config.daily_limit,
                daily_used=int(used.get(code, 0)),
                requests_per_second=config.limits.requests_per_second,
                last_call_at=_aware(last.at) if last is not None else None,
                last_outcome=last.outcome if last is not None else None,
                due_shipments=count,
                poll_lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            )
        )
    return usages


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
